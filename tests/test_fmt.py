"""`policyd fmt`: idempotent and meaning-preserving (the checked IR of the formatted set
equals the original's; a test file parses to the same tests), comments kept, over
every example and a generated corpus printed with random spacing, comments and
redundant parentheses; a file that does not parse is left untouched."""

from __future__ import annotations

import dataclasses
import random
import re
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policyd.cli.fmt import format_text
from policyd.language.checker import check
from policyd.language.diagnostics import PolicyError
from policyd.language.parser import parse
from policyd.language.sources import policy_files
from policyd.testing.parse import parse_tests

from .conftest import EXAMPLES, ROOT
from .strategies import policies, policies11

_POSITIONS = {"file", "line", "column", "span", "path_span", "sources", "version", "warnings"}


def meaning(obj):
    """A value with every position left out: what the formatter must not change."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return (type(obj).__name__, tuple(
            (f.name, meaning(getattr(obj, f.name))) for f in dataclasses.fields(obj)
            if f.name not in _POSITIONS))
    if isinstance(obj, dict):
        return tuple(sorted((repr(k), meaning(v)) for k, v in obj.items()))
    if isinstance(obj, list | tuple):
        return tuple(meaning(v) for v in obj)
    if isinstance(obj, frozenset | set):
        return tuple(sorted(repr(meaning(v)) for v in obj))
    if hasattr(obj, "items") and not isinstance(obj, str):  # the role graph
        return tuple(sorted((k, tuple(sorted(v))) for k, v in obj.items()))
    return obj


def checked(sources: dict[str, str]):
    files = [parse(text, name) for name, text in sources.items()]
    return meaning(check(files, sources, "v"))


def comments(text: str) -> list[str]:
    found = []
    for line in text.splitlines():
        inside, out = False, None
        for i, c in enumerate(line):  # a `#` inside a string is not a comment
            if c == '"' and (i == 0 or line[i - 1] != "\\"):
                inside = not inside
            elif c == "#" and not inside:
                out = line[i:].rstrip()
                break
        if out:
            found.append(out)
    return sorted(found)


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir()))
def test_every_example_is_formatted_and_keeps_its_meaning(example):
    files = policy_files(EXAMPLES / example, include_tests=True)
    before = {str(p): p.read_text() for p in files}
    after = {name: format_text(text, name) for name, text in before.items()}
    for name, text in after.items():
        assert format_text(text, name) == text, f"not idempotent: {name}"
        assert comments(text) == comments(before[name]), name
        assert all(len(line) <= 100 or "{" in line for line in text.splitlines()), name
    policies_only = {k: v for k, v in before.items() if not k.endswith(".test.policy")}
    assert checked({k: after[k] for k in policies_only}) == checked(policies_only)
    for name in before:
        if name.endswith(".test.policy"):
            assert meaning(parse_tests(after[name], name)) == \
                meaning(parse_tests(before[name], name))


def test_the_examples_are_formatted():
    """CI runs `policyd fmt --check policies/examples`: the bundled sets are canonical."""
    for path in policy_files(EXAMPLES, include_tests=True):
        text = path.read_text()
        assert format_text(text, str(path)) == text, path


def _messy(text: str, seed: int) -> str:
    """The same policy, written carelessly: random spaces and line breaks between tokens,
    comments at line ends and on lines of their own, extra blank lines."""
    rnd = random.Random(seed)
    parts = text.split('"')
    for i in range(0, len(parts), 2):  # outside string literals only
        parts[i] = re.sub(r" ", lambda m: rnd.choice([" ", "  ", "\t", "\n      ", " "]),
                          parts[i])
    lines = '"'.join(parts).split("\n")
    out = []
    for k, line in enumerate(lines):
        roll = rnd.random()
        if roll < 0.1:
            out.append(f"# note {k}")
        elif roll < 0.15:
            out += ["", ""]
        if rnd.random() < 0.15 and line.strip():
            line += f"   # end {k}"
        out.append(line)
    return "\n".join(out)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(policies(), policies11()), st.integers(0, 10**6))
def test_a_generated_corpus_is_formatted_without_changing_its_meaning(text, seed):
    messy = _messy(text, seed)
    try:
        original = checked({"p.policy": messy})
    except PolicyError:
        return  # the generator made an invalid set: nothing to format the same way
    out = format_text(messy, "p.policy")
    assert format_text(out, "p.policy") == out
    assert checked({"p.policy": out}) == original
    assert comments(out) == comments(messy)
    assert "\n\n\n" not in out and not out.startswith("\n")


def test_parentheses_are_kept_exactly_where_the_tree_needs_them():
    text = ("resource D { a: bool  b: bool  c: bool  n: number  actions r }\n"
            "policy p for D {\n"
            "  allow r when ((resource.a or resource.b)) and resource.c\n"
            "  allow r when resource.a or (resource.b or resource.c)\n"
            "  allow r when (resource.a and resource.b) or not (resource.n + 1 > 2 * 3)\n"
            "  allow r when resource.n - (1 - 2) > -(-1) and resource.n * 0.00001 < 1.0\n"
            "}\n")
    out = format_text(text, "p.policy")
    assert "allow r when (resource.a or resource.b) and resource.c" in out
    assert "allow r when resource.a or (resource.b or resource.c)" in out
    assert "allow r when resource.a and resource.b or not resource.n + 1 > 2 * 3" in out
    assert "resource.n - (1 - 2) > --1 and resource.n * 0.00001 < 1.0" in out
    assert checked({"p": out}) == checked({"p": text})


def test_long_conditions_break_before_and_or_with_a_fixed_indent():
    cond = " and ".join(f"resource.f{i} == \"{'v' * 8}{i}\"" for i in range(6))
    attrs = "  ".join(f"f{i}: string" for i in range(6))
    text = f"resource D {{ {attrs}  actions r }}\npolicy p for D {{\n  allow r when {cond}\n}}\n"
    out = format_text(text, "p.policy").splitlines()
    rule = out[out.index("policy p for D {") + 1:-1]
    assert rule[0] == '  allow r when resource.f0 == "vvvvvvvv0"'
    assert all(line.startswith("      and resource.f") for line in rule[1:])
    assert len(rule) == 6


def test_comments_stay_with_what_they_precede_or_end():
    text = ("# the file\n\nrole a   # first\n\n\n\n# about b\nrole b extends a\n"
            "resource D {\n  x: string # x\n  # before actions\n  actions r\n  # last in D\n}\n"
            "# the end\n")
    assert format_text(text, "p.policy") == (
        "# the file\n\nrole a  # first\n\n# about b\nrole b extends a\nresource D {\n"
        "  x: string  # x\n  # before actions\n  actions r\n  # last in D\n}\n# the end\n")


def test_fmt_check_diff_and_write(tmp_path):
    good = tmp_path / "good.policy"
    good.write_text("role viewer\n")
    messy = tmp_path / "messy.policy"
    messy.write_text("role   viewer2\nrole admin   extends viewer2\n")
    broken = tmp_path / "broken.policy"
    broken.write_text("role\n")

    def run(*args):
        return subprocess.run([sys.executable, "-m", "policyd", "fmt", *args],
                              capture_output=True, text=True, cwd=ROOT)
    r = run("--check", str(tmp_path))
    assert r.returncode == 1 and f"would reformat {messy}" in r.stdout
    assert "good.policy" not in r.stdout and "E004" in r.stderr  # the broken one, named
    r = run("--diff", str(messy))
    assert r.returncode == 0 and "-role   viewer2" in r.stdout and "+role viewer2" in r.stdout
    assert messy.read_text().startswith("role   viewer2")  # --diff changes nothing
    r = run(str(tmp_path))
    assert r.returncode == 1  # the broken file
    assert messy.read_text() == "role viewer2\nrole admin extends viewer2\n"
    assert broken.read_text() == "role\n"  # left as it was
    assert run("--check", str(messy), str(good)).returncode == 0
    assert run("--check", str(tmp_path / "missing")).returncode == 1
