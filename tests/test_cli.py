"""The policyd command: output and exit codes (0 ok, 1 policy errors, 2 usage errors)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from policyd.cli import main

from .conftest import EXAMPLES, ROOT

ORDERS = str(EXAMPLES / "orders")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_ok(capsys):
    code, out, err = run(capsys, "check", ORDERS)
    assert code == 0 and out.startswith("ok: 5 files loaded (3 policy, 2 test), 1 resource type, 16 rules, "
                                      "10 tests, 0 warnings")


def test_check_reports_every_error_with_caret(capsys, tmp_path):
    bad = tmp_path / "bad.policy"
    bad.write_text("resource R { x: string actions read }\npolicy p for R {\n"
                   "  allow read when resource.y == 1\n  allow raed\n}\n")
    code, out, err = run(capsys, "check", str(bad))
    assert code == 1
    assert f"{bad}:3:28: error[E311]: `R` declares no attribute `y`" in err
    assert "3 |   allow read when resource.y == 1\n" + " " * 31 + "^\n" in err
    assert f"{bad}:4:9: error[E118]: `R` declares no action `raed`" in err
    assert "hint: did you mean `read`?" in err
    assert "W201" not in err  # no lint noise about a rule whose only action is a typo
    assert err.rstrip().endswith("2 errors, 1 warning")


def test_check_json(capsys, tmp_path):
    bad = tmp_path / "bad.policy"
    bad.write_text("role a extends a\n")
    code, out, _ = run(capsys, "check", "--format", "json", str(bad))
    data = json.loads(out)
    assert code == 1 and data["ok"] is False
    assert data["diagnostics"][0]["code"] == "E112" and data["diagnostics"][0]["line"] == 1


def test_check_prints_warnings_and_succeeds(capsys, tmp_path):
    p = tmp_path / "w.policy"
    p.write_text("resource R { x: string actions read }\npolicy p for R { allow read }\n")
    code, out, err = run(capsys, "check", str(p))
    assert code == 0 and "warning[W201]" in err and "2 warnings" in out


def test_eval_prints_the_decision(capsys):
    code, out, _ = run(capsys, "eval", ORDERS, str(EXAMPLES / "orders/requests/owner-reads.json"))
    decision = json.loads(out)
    assert code == 0 and decision["allowed"] is True
    assert decision["visible_fields"] == ["id", "status", "total", "card_last4"]


def test_eval_explain_and_lists(capsys, tmp_path):
    one = json.loads((EXAMPLES / "orders/requests/owner-reads.json").read_text())
    many = tmp_path / "many.json"
    many.write_text(json.dumps([one, {**one, "action": "delete"}]))
    code, out, _ = run(capsys, "eval", "--explain", ORDERS, str(many))
    explained = json.loads(out)
    assert code == 0 and [e["decision"]["allowed"] for e in explained] == [True, False]
    rules = {r["rule"]: r for r in explained[0]["rules"]}
    assert rules["orders.owner_access"]["held"] is True
    assert rules["orders.tenant_isolation"]["because"]["values"] == {
        "principal.tenant": "t1", "resource.tenant": "t1"}
    code, text, _ = run(capsys, "eval", "--explain", "--format", "text", ORDERS, str(many))
    assert text.startswith("ALLOW (orders#2)")
    assert "held     deny  orders.no_delete: not (principal is admin)" in text


@pytest.mark.parametrize("content,message", [
    ("{not json", "is not valid JSON"),
    ('{"principal": {"type": "User", "id": "a"}}', "the request needs `resource`"),
    ('"read"', "a request must be an object"),
])
def test_eval_bad_requests_are_usage_errors(capsys, tmp_path, content, message):
    f = tmp_path / "r.json"
    f.write_text(content)
    code, out, err = run(capsys, "eval", ORDERS, str(f))
    assert code == 2 and out == "" and message in err and "Traceback" not in err


def test_eval_from_stdin():
    request = (EXAMPLES / "orders/requests/shadow-endpoint.json").read_text()
    proc = subprocess.run([sys.executable, "-m", "policyd", "eval", ORDERS, "-"], input=request,
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and json.loads(proc.stdout)["reasons"] == ["unknown_action"]


def test_compile_prints_generated_source(capsys):
    code, out, _ = run(capsys, "compile", ORDERS)
    assert code == 0 and out.startswith("# policyd: generated code for")
    compile(out, "generated", "exec")


def test_policy_errors_exit_1_everywhere(capsys, tmp_path):
    bad = tmp_path / "b.policy"
    bad.write_text("policy p for Missing {}\n")
    for argv in (("check", str(bad)), ("compile", str(bad)), ("eval", str(bad), "-")):
        assert run(capsys, *argv)[0] == 1


def test_missing_path_is_a_policy_error(capsys, tmp_path):
    code, _, err = run(capsys, "check", str(tmp_path / "nope"))
    assert code == 1 and "no such policy file or directory" in err


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["eval", ORDERS]])
def test_usage_errors_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2


def test_check_and_serve_without_a_path_are_usage_errors(capsys):
    for command in ("check", "serve"):
        code, _, err = run(capsys, command)
        assert code == 2 and "give the policy PATH" in err


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == "policyd 0.1.0"


@pytest.mark.parametrize("command", ["check", "eval", "compile", "test", "serve"])
def test_every_command_says_the_same_about_a_missing_path(command, tmp_path):
    missing = tmp_path / "nope"
    argv = [command, str(missing)] + (["-"] if command == "eval" else [])
    proc = subprocess.run([sys.executable, "-m", "policyd", *argv], capture_output=True,
                          text=True, cwd=ROOT, input="{}")
    assert proc.returncode == 1
    assert proc.stderr == f"policyd {command}: no such policy file or directory: {missing}\n"


def test_a_closed_pipe_ends_quietly(tmp_path):
    """`policyd compile ... | head -1`: the reader leaves early; no BrokenPipeError."""
    rules = "\n".join(f"allow read when resource.n == {i}" for i in range(2000))
    (tmp_path / "big.policy").write_text("principal U { roles: set<string> }\n"
                                         "resource R { n: number  actions read }\n"
                                         f"policy p for R {{\n{rules}\n}}\n")
    proc = subprocess.run(f"{sys.executable} -m policyd compile {tmp_path} | head -1",
                          shell=True, capture_output=True, text=True, cwd=ROOT)
    assert proc.stdout.startswith("# policyd: generated code")
    assert proc.stderr == ""


def test_eval_of_a_list_decides_the_good_items_and_names_the_bad(capsys, tmp_path):
    good = json.loads((EXAMPLES / "orders/requests/shadow-endpoint.json").read_text())
    bad = {**good, "resource": {"type": "Order", "id": "o1", "attrs": {"total": "x"}}}
    f = tmp_path / "list.json"
    f.write_text(json.dumps([good, bad, good]))
    code, out, err = run(capsys, "eval", ORDERS, str(f))
    decisions = json.loads(out)
    assert code == 2 and len(decisions) == 3
    assert decisions[0]["reasons"] == decisions[2]["reasons"] == ["unknown_action"]
    assert decisions[1]["error"].startswith("invalid request: resource.attrs.")
    assert err.startswith("policyd eval: item 1: invalid request: resource.attrs.")


def test_undeclared_roles_in_fixtures_are_warnings_in_check_and_test(capsys, tmp_path):
    (tmp_path / "s.policy").write_text(
        "principal U { roles: set<string> }\nrole viewer\nresource R { actions read }\n"
        "policy p for R { allow read when principal is viewer  show * }\n")
    (tmp_path / "s.test.policy").write_text(
        'fixture u = principal U "u" { roles: ["veiwer"] }\n'
        'fixture r = resource R "r" { }\n'
        'test "t" {\n  given u, r\n  expect deny read by default_deny\n}\n')
    code, out, err = run(capsys, "check", str(tmp_path))
    assert code == 0 and "1 warning" in out
    assert "warning[W206]: role `veiwer` is not declared, so it grants nothing" in err
    assert "hint: did you mean `viewer`?" in err
    code, out, err = run(capsys, "check", str(tmp_path), "--format", "json")
    assert [d["code"] for d in json.loads(out)["diagnostics"]] == ["W206"]
    code, out, err = run(capsys, "test", str(tmp_path))
    assert code == 0 and "warning[W206]" in err
    code, out, err = run(capsys, "test", str(tmp_path), "--format", "json")
    assert [d["code"] for d in json.loads(out)["sets"][0]["diagnostics"]] == ["W206"]


PLAN_REQUEST = EXAMPLES / "orders/plans/alice-update.json"


def test_plan_prints_the_plan_as_json(capsys):
    code, out, _ = run(capsys, "plan", ORDERS, str(PLAN_REQUEST))
    plan = json.loads(out)
    assert code == 0 and plan["kind"] == "conditional"
    assert plan["condition"]["op"] == "and" and plan["resource_type"] == "Order"


def test_plan_prints_sql_with_bound_parameters(capsys):
    code, out, _ = run(capsys, "plan", ORDERS, str(PLAN_REQUEST), "--sql", "postgresql",
                       "--columns", "id=o.id,tenant=o.tenant,owner=o.owner,status=o.status")
    assert code == 0
    assert "WHERE ((o.tenant = %s) AND (o.owner = %s))" in out
    assert '-- params: ["t1", "alice"]' in out
    assert "SELECT o.id AS id, o.status AS status" in out and "card_last4" not in out


def test_plan_without_a_column_names_the_attribute_and_rule(capsys):
    code, out, err = run(capsys, "plan", ORDERS, str(PLAN_REQUEST), "--sql", "sqlite",
                         "--columns", "tenant=tenant")
    assert code == 1 and out == ""
    assert "`owner` has no column" in err and "orders.owner_access" in err


def test_plan_refuses_a_bad_request_by_name(capsys, tmp_path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps({**json.loads(PLAN_REQUEST.read_text()), "write_fields": []}))
    code, out, err = run(capsys, "plan", ORDERS, str(f))
    assert code == 2 and out == "" and "`write_fields` is not part of a plan request" in err
