"""Golden diagnostics: each tests/diagnostics/NAME.policy is checked and its rendered
diagnostics (position, message, source line, caret, hint) must equal NAME.expected.
NAME.test.policy files are test files, checked against tests/policy_tests/schema.policy.

Regenerate after a deliberate change with POLICYD_UPDATE_GOLDEN=1, then review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from policyd import PolicyError, compile_text
from policyd.language import check_sources
from policyd.language.sources import read_sources
from policyd.testing.checker import check_tests
from policyd.testing.parse import parse_tests

CASES = Path(__file__).resolve().parent / "diagnostics"
SCHEMA = Path(__file__).resolve().parent / "policy_tests" / "schema.policy"


def render_tests(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    try:
        check_tests(check_sources(read_sources(SCHEMA), "v"), [parse_tests(text, path.name)])
    except PolicyError as exc:
        return PolicyError(exc.diagnostics, {path.name: text}).render() + "\n"
    return "ok\n"


def render(path: Path) -> str:
    name = path.name
    if name.endswith(".test.policy"):
        return render_tests(path)
    try:
        ps = compile_text(path.read_text(encoding="utf-8"), name)
    except PolicyError as exc:
        return exc.render() + "\n"
    return "".join(w.render(ps.sources) + "\n" for w in ps.warnings) or "ok\n"


@pytest.mark.parametrize("case", sorted(CASES.glob("*.policy")), ids=lambda p: p.stem)
def test_golden(case: Path):
    expected = case.with_name(case.name.removesuffix(".test.policy").removesuffix(".policy")
                              + ".expected")
    got = render(case)
    if os.environ.get("POLICYD_UPDATE_GOLDEN"):
        expected.write_text(got, encoding="utf-8")
    assert got == expected.read_text(encoding="utf-8")
