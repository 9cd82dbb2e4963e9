"""Golden diagnostics: each tests/diagnostics/NAME.policy is checked and its rendered
diagnostics (position, message, source line, caret, hint) must equal NAME.expected.

Regenerate after a deliberate change with POLICYD_UPDATE_GOLDEN=1, then review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from policyd import PolicyError, compile_text

CASES = Path(__file__).resolve().parent / "diagnostics"


def render(path: Path) -> str:
    name = path.name
    try:
        ps = compile_text(path.read_text(encoding="utf-8"), name)
    except PolicyError as exc:
        return exc.render() + "\n"
    return "".join(w.render(ps.checked.sources) + "\n" for w in ps.warnings) or "ok\n"


@pytest.mark.parametrize("case", sorted(CASES.glob("*.policy")), ids=lambda p: p.stem)
def test_golden(case: Path):
    expected = case.with_suffix(".expected")
    got = render(case)
    if os.environ.get("POLICYD_UPDATE_GOLDEN"):
        expected.write_text(got, encoding="utf-8")
    assert got == expected.read_text(encoding="utf-8")
