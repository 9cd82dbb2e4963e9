"""The policy test runner (`policyd test`): reports, expectations, fixtures, rates,
coverage, JUnit, diagnostics and exit codes, on the small set in tests/policy_tests."""

from __future__ import annotations

import dataclasses
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policyd import Engine
from policyd.cli import main
from policyd.testing import Coverage, Runner, discover, load
from policyd.testing.plan import Expectation

from .conftest import EXAMPLES

SET = Path(__file__).resolve().parent / "policy_tests"


def run(capsys, *argv):
    code = main(["test", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def suite_dir(tmp_path) -> Path:
    """A copy of the small set, so a test can add a failing test file to it."""
    target = tmp_path / "docs"
    shutil.copytree(SET, target)
    return target


def add_tests(directory: Path, text: str, name: str = "more.test.policy") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_passing_suite_exact_report(capsys):
    code, out, err = run(capsys, SET, "-v")
    assert code == 0 and err == ""
    assert out == (
        f"PASS owners read and update their documents ({SET}/docs.test.policy:3)\n"
        f"PASS teams are fenced ({SET}/docs.test.policy:12)\n"
        f"PASS admins delete twice a minute ({SET}/docs.test.policy:17)\n"
        "3 passed, 0 failed\n")


def test_without_verbose_only_failures_and_the_summary(capsys):
    code, out, _ = run(capsys, SET)
    assert code == 0 and out == "3 passed, 0 failed\n"


FAILING = """\
test "a wrong verdict" {
  given amy, doc, here
  expect allow read
  expect deny update by docs.team_only
}

test "wrong fields" {
  given amy, doc, here
  expect visible read: id, secret
}

test "a refused write" {
  given amy, doc, here
  expect allow update writing title, secret
}

test "the third delete" {
  given root, doc, here
  expect allow delete x3
}

test "a missing reason" {
  given root, doc, here
  expect allow read by docs.owners
}
"""


def test_failing_suite_exact_report(capsys, suite_dir):
    more = add_tests(suite_dir, FAILING)
    code, out, err = run(capsys, suite_dir)
    assert code == 1
    assert out == (
        f"FAIL a wrong verdict ({more}:4)\n"
        "  expected: deny update by docs.team_only\n"
        "  decision: allowed by docs.owners, docs#5, docs#7\n"
        f"FAIL wrong fields ({more}:9)\n"
        "  expected: visible read: id, secret\n"
        "  decision: visible id, title\n"
        "  missing: secret\n"
        "  extra: title\n"
        f"FAIL a refused write ({more}:14)\n"
        "  expected: allow update writing title, secret\n"
        "  decision: denied by not_writable:secret\n"
        "  refused writes: secret\n"
        f"FAIL the third delete ({more}:19)\n"
        "  expected: allow delete x3\n"
        "  decision: denied by rate_limited, docs#8 (retry after 30s)\n"
        "  at decision 3 of 3\n"
        f"FAIL a missing reason ({more}:24)\n"
        "  expected: allow read by docs.owners\n"
        "  decision: allowed by docs.readers, docs#5, docs#6\n"
        "  not named: docs.owners\n"
        "3 passed, 5 failed\n")


def test_each_action_of_an_expectation_is_decided(capsys, suite_dir):
    more = add_tests(suite_dir, 'test "each action" {\n  given amy, doc, here\n'
                     '  expect allow read, update, delete\n}\n')
    code, out, _ = run(capsys, suite_dir, "-k", "EACH ACTION")
    assert code == 1
    assert f"FAIL each action ({more}:3)\n  expected: allow read, update, delete\n  action: delete\n" \
           "  decision: denied by default_deny\n" in out
    assert out.endswith("0 passed, 1 failed, 3 skipped\n")


def test_k_selects_by_name_and_skips_the_rest(capsys):
    code, out, _ = run(capsys, SET, "-k", "FENCED", "-v")
    assert code == 0
    assert f"PASS teams are fenced ({SET}/docs.test.policy:12)\n" in out
    assert f"SKIP admins delete twice a minute ({SET}/docs.test.policy:17)\n" in out
    assert out.endswith("1 passed, 0 failed, 2 skipped\n")


def test_rate_sequences_refill_with_after_and_restart_per_test(capsys, suite_dir):
    add_tests(suite_dir, """\
test "first" {
  given root, doc, here
  expect allow delete x2
  expect deny delete by rate_limited
  after 29s
  expect deny delete by rate_limited
  after 1s
  expect allow delete
  expect deny delete by "docs#8"
}

test "second starts with full buckets" {
  given root, doc, here
  expect allow delete x2
}
""")
    code, out, _ = run(capsys, suite_dir)
    assert code == 0 and out == "5 passed, 0 failed\n"


def test_later_given_replaces_only_what_it_names(capsys, suite_dir):
    add_tests(suite_dir, """\
fixture bob = principal User "bob" { roles: [], team: "a" }

test "swap the principal, keep the resource and context" {
  given amy, doc with { title: "x" }, here
  expect allow update by docs.owners
  given bob
  expect deny update by default_deny
  given root with { team: "b" }
  expect deny read by docs.team_only
  given doc with { team: "b" }
  expect allow delete
  given context { ip: ip("10.9.9.9"), time: time("2026-01-01T00:00:00Z") }
  expect allow read by docs.readers
}
""")
    code, out, _ = run(capsys, suite_dir)
    assert code == 0, out


def test_coverage_numbers_and_uncovered_rules(capsys, suite_dir):
    for f in suite_dir.glob("docs.test.policy"):
        f.unlink()
    add_tests(suite_dir, 'test "only readers" {\n  given amy, doc with { owner: "zed" }, here\n'
              '  expect allow read by docs.readers\n}\n')
    code, out, _ = run(capsys, suite_dir, "--coverage", "--min-coverage", "25")
    schema = suite_dir / "schema.policy"
    assert code == 0
    assert out == (
        f"coverage {suite_dir}: 25.0% (2/8 rules)\n"
        f"  uncovered deny docs.team_only ({schema}:26)\n"
        f"  uncovered allow docs.owners ({schema}:28)\n"
        f"  uncovered allow docs#4 ({schema}:29)\n"
        f"  uncovered show docs#6 ({schema}:31)\n"
        f"  uncovered write docs#7 ({schema}:32)\n"
        f"  uncovered limit docs#8 ({schema}:33)\n"
        "1 passed, 0 failed\n")
    code, _, err = run(capsys, suite_dir, "--min-coverage", "25.1")
    assert code == 1
    assert f"policyd test: {suite_dir}: rule coverage 25.0% is under the minimum 25.1%" in err


def test_full_coverage_of_the_small_set_in_process():
    suite = load(discover(SET)[0])
    coverage = Coverage(suite.policy_set)
    results = list(Runner(suite.policy_set, coverage=coverage).run(suite.tests))
    assert [r.status for r in results] == ["passed"] * 3
    assert (coverage.covered, coverage.total, coverage.uncovered) == (8, 8, [])
    assert coverage.meets(100) and not Coverage(suite.policy_set).meets(0.1)


def test_json_report(capsys, suite_dir):
    add_tests(suite_dir, FAILING)
    code, out, _ = run(capsys, suite_dir, "--format", "json", "--coverage")
    data = json.loads(out)
    assert code == 1 and data["ok"] is False
    assert (data["passed"], data["failed"], data["skipped"]) == (3, 5, 0)
    (entry,) = data["sets"]
    assert entry["path"] == str(suite_dir) and entry["policy_version"].startswith("sha256:")
    failed = [t for t in entry["tests"] if t["status"] == "failed"]
    assert failed[0]["failure"] == {
        "file": str(suite_dir / "more.test.policy"), "line": 4,
        "expected": "expect deny update by docs.team_only",
        "details": ["decision: allowed by docs.owners, docs#5, docs#7"]}
    assert entry["coverage"]["total"] == 8 and entry["coverage"]["uncovered"] == []


def test_junit_is_valid_xml_with_one_testcase_per_test(capsys, suite_dir, tmp_path):
    add_tests(suite_dir, FAILING + 'test "odd \\u0001 name <&>" {\n  given amy, doc, here\n'
              '  expect allow read\n}\n')
    junit = tmp_path / "junit.xml"
    code, _, _ = run(capsys, suite_dir, "--junit", junit)
    assert code == 1
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites" and root.get("tests") == "9" and root.get("failures") == "5"
    (suite,) = root
    cases = suite.findall("testcase")
    assert len(cases) == 9
    by_name = {c.get("name"): c for c in cases}
    failure = by_name["a wrong verdict"].find("failure")
    assert failure.get("message") == "expected: deny update by docs.team_only"
    assert f"{suite_dir / 'more.test.policy'}:4" in failure.text
    assert by_name["teams are fenced"].find("failure") is None
    assert "odd \ufffd name <&>" in by_name


def test_junit_reports_a_set_that_does_not_check(capsys, suite_dir, tmp_path):
    add_tests(suite_dir, 'test "t" {\n  given nobody\n  expect allow read\n}\n')
    junit = tmp_path / "junit.xml"
    code, _, err = run(capsys, suite_dir, "--junit", junit)
    assert code == 1 and "error[E411]: unknown fixture `nobody`" in err
    error = ET.parse(junit).getroot().find("testsuite/testcase/error")
    assert error is not None and "E411" in error.text


def test_check_also_checks_test_files(capsys, suite_dir):
    add_tests(suite_dir, 'test "t" {\n  given amy, doc, here\n  expect allow raed\n}\n')
    code = main(["check", str(suite_dir)])
    _, err = capsys.readouterr()
    assert code == 1 and "error[E424]: `Doc` declares no action `raed`" in err
    assert "hint: did you mean `read`?" in err


def test_examples_are_three_sets_with_full_coverage(capsys):
    code, out, _ = run(capsys, EXAMPLES, "--coverage", "--min-coverage", "100")
    assert code == 0
    for name in ("admin", "documents", "orders"):
        assert f"coverage {EXAMPLES / name}: 100.0% (" in out
    assert out.endswith(" passed, 0 failed\n")


def test_one_test_file_runs_its_tests_with_its_sets_fixtures(capsys):
    code, out, _ = run(capsys, EXAMPLES / "orders" / "fraud.test.policy")
    assert code == 0 and out == "3 passed, 0 failed\n"


@pytest.mark.parametrize("argv, code, message", [
    (["nope"], 1, "no such policy file or directory"),
    ([SET, "--min-coverage", "101"], 2, "--min-coverage is a percentage"),
    ([SET / "schema.policy"], 1, "no tests found"),
])
def test_exit_codes(capsys, tmp_path, argv, code, message):
    got, _, err = run(capsys, *argv)
    assert got == code and message in err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["test", str(SET), "--format", "xml"])
    assert exc.value.code == 2


def test_broken_policy_is_reported_with_broken_tests(capsys, suite_dir):
    (suite_dir / "schema.policy").write_text(
        (suite_dir / "schema.policy").read_text().replace("actions read,", "actions read"))
    add_tests(suite_dir, 'test "t" { expect }\n')
    code, out, err = run(capsys, suite_dir)
    assert code == 1
    assert "schema.policy:22:" in err and "more.test.policy:1:19: error[E004]" in err
    assert out.startswith(f"ERROR {suite_dir}: the set or its tests do not check (2 errors)\n")


def expectations(test):
    return [i for i, s in enumerate(test.steps) if isinstance(s, Expectation)]


def mutated(e: Expectation) -> list[Expectation]:
    """Wrong versions of an expectation: each must make its test fail."""
    if e.visible is not None:
        return [dataclasses.replace(e, visible=e.visible[:-1]),
                dataclasses.replace(e, visible=(*e.visible, "zzz"))]
    out = [dataclasses.replace(e, allowed=not e.allowed)]
    if e.reasons:
        out.append(dataclasses.replace(e, reasons=(*e.reasons, "no_such_reason")))
    return out


@pytest.mark.parametrize("name", ["admin", "documents", "orders"])
def test_every_example_expectation_can_fail(name):
    """No example expectation is vacuous: flipping its verdict, adding a reason it does
    not name, or changing its fields makes its test fail."""
    suite = load(discover(EXAMPLES / name)[0])
    runner = Runner(suite.policy_set)
    checked = 0
    for test in suite.tests:
        for index in expectations(test):
            for wrong in mutated(test.steps[index]):
                steps = list(test.steps)
                steps[index] = wrong
                result = runner.run_one(dataclasses.replace(test, steps=tuple(steps)))
                assert result.status == "failed", (test.name, wrong.text)
                checked += 1
    assert checked > 20


def test_test_words_stay_names_in_policy_files():
    from policyd import compile_text

    words = ["fixture", "test", "given", "expect", "after", "with", "visible", "writing"]
    text = (f"principal U {{ {' '.join(w + ': string' for w in words)} }}\n"
            f"resource R {{ x: string actions {', '.join(words)} }}\n"
            f"policy p for R {{ allow {', '.join(words)} when principal.test == \"t\" }}\n")
    assert set(compile_text(text).deciders["R"]) == set(words)


def test_test_words_are_names_where_test_files_name_actions_and_fields(tmp_path):
    (tmp_path / "s.policy").write_text(
        "principal U { after: string }\nresource R { visible: string actions test, expect }\n"
        "policy p for R { allow test, expect when principal.after == \"a\"\n  show visible }\n")
    (tmp_path / "s.test.policy").write_text(
        'fixture u = principal U "u" { after: "a" }\n'
        'fixture r = resource R "r" { visible: "v" }\n'
        'test "t" {\n  given u, r\n  expect allow test, expect by "p#1"\n'
        '  expect visible test: id, visible\n}\n')
    suite = load(discover(tmp_path)[0])
    assert [r.status for r in Runner(suite.policy_set).run(suite.tests)] == ["passed"]


def test_pytest_collects_policy_tests_under_the_configured_path(tmp_path):
    import subprocess
    import sys

    shutil.copytree(SET, tmp_path / "policy")
    add_tests(tmp_path / "policy", 'test "breaks" {\n  given amy, doc, here\n'
              '  expect deny read\n}\n')
    (tmp_path / "pytest.ini").write_text("[pytest]\npolicyd_paths = policy\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    out = proc.stdout
    assert proc.returncode == 1, out
    assert "docs.test.policy::owners read and update their documents PASSED" in out
    assert "more.test.policy::breaks FAILED" in out
    assert "expected: deny read" in out and "decision: allowed by docs.readers, docs.owners" in out
    assert "1 failed, 3 passed" in out


def test_pytest_ignores_policy_tests_outside_the_configured_path(tmp_path):
    import subprocess
    import sys

    shutil.copytree(SET, tmp_path / "policy")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 5, proc.stdout  # pytest's "no tests collected"


def test_the_test_file_in_docs_runs_and_passes_on_the_orders_example(tmp_path):
    docs = (EXAMPLES.parent.parent / "docs" / "testing.md").read_text()
    example = docs.split("## A test file\n\n```\n", 1)[1].split("```", 1)[0]
    for f in (EXAMPLES / "orders").glob("*.policy"):
        if not f.name.endswith(".test.policy"):
            shutil.copy(f, tmp_path / f.name)
    add_tests(tmp_path, example, "docs.test.policy")
    suite = load(discover(tmp_path)[0])
    results = list(Runner(suite.policy_set).run(suite.tests))
    assert len(results) == 2 and all(r.status == "passed" for r in results)


# ---- bad test files: a diagnostic, never a traceback --------------------------------

ORDERS_SUITE = load(discover(EXAMPLES / "orders")[0])
ORDERS_SET = ORDERS_SUITE.policy_set
ORDERS_TESTS = (EXAMPLES / "orders" / "orders.test.policy").read_text()


def _checks_or_policy_error(text: str) -> None:
    from policyd import PolicyError
    from policyd.testing.checker import check_tests
    from policyd.testing.parse import parse_tests

    try:
        tests = check_tests(ORDERS_SUITE.checked, [parse_tests(text, "fuzz.test.policy")])
    except PolicyError as exc:
        assert exc.diagnostics and all(d.line >= 1 and d.column >= 1 for d in exc.diagnostics)
        PolicyError(exc.diagnostics, {"fuzz.test.policy": text}).render()
        return
    list(Runner(ORDERS_SET).run(tests))  # what checks also runs, failing or passing


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_fuzz_arbitrary_test_text(text):
    _checks_or_policy_error(text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(ORDERS_TESTS)), st.integers(0, 8),
                          st.sampled_from(["", "x", "(", ")", '"', "{", "}", ",", "with ",
                                           "given ", "expect ", "x3", "1", "-", ".", "é",
                                           "after 1s", "by ", "[", "]", ":"])),
                min_size=1, max_size=4))
def test_fuzz_mutated_example_tests(edits):
    text = ORDERS_TESTS
    for pos, length, insert in edits:
        text = text[:pos] + insert + text[pos + length:]
    _checks_or_policy_error(text)


def test_a_fast_path_that_disagrees_with_explain_fails_the_test():
    suite = load(discover(SET)[0])
    runner = Runner(suite.policy_set)

    class Lying(Engine):  # a decider bug the explained path does not share
        def _install(self, ps):
            super()._install(ps)  # also when the runner gives it a new rate store
            real = self.check

            def lying(request, explain=False):
                decision = real(request, explain)
                if not explain and decision.allowed:
                    return dataclasses.replace(decision, allowed=False, reasons=["default_deny"])
                return decision

            self.check = lying

    runner.engine = Lying(suite.policy_set, clock=runner.clock)
    result = runner.run_one(suite.tests[0])
    assert result.status == "failed"
    assert "engine error: the fast path decided denied by default_deny" in \
        result.failure.message
