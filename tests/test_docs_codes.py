"""docs/language.md lists every diagnostic code policyd emits, and no other."""

from __future__ import annotations

import re
from pathlib import Path

from policyd.language.codes import CODES

ROOT = Path(__file__).resolve().parent.parent
SOURCE_CODE = re.compile(r"""["']([EW]\d{3})["']""")


def _documented() -> dict[str, str]:
    text = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    return dict(re.findall(r"^\| ([EW]\d{3}) \| (.+) \|$", text, flags=re.M))


def test_the_reference_lists_every_code_with_its_title():
    assert _documented() == CODES


def test_every_code_in_the_source_is_in_the_table():
    used = {code for path in (ROOT / "policyd").rglob("*.py") if "_proto" not in path.parts
            for code in SOURCE_CODE.findall(path.read_text(encoding="utf-8"))}
    assert used and used <= set(CODES), sorted(used - set(CODES))
