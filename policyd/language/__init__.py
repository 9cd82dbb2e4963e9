"""The language stage: policy text to a checked set (parser, checker, code generator).

Nothing here decides a request or imports the runtime; the compiled set is made
from this stage's output by `policyd.engine.compiler`.
"""

from __future__ import annotations

from collections.abc import Callable

from .checked import CheckedSet
from .checker import check
from .diagnostics import Diagnostic, PolicyError
from .parser import parse


def parse_each(sources: dict[str, str], parse_one: Callable) -> tuple[list, list[Diagnostic]]:
    """Every file parsed, and every file's syntax error (one per file), not just the first."""
    parsed, errors = [], []
    for path, text in sources.items():
        try:
            parsed.append(parse_one(text, path))
        except PolicyError as exc:
            errors.extend(exc.diagnostics)
    return parsed, errors


def check_sources(sources: dict[str, str], version: str) -> CheckedSet:
    """Parse every file (reporting every syntax error) and check the set."""
    files, errors = parse_each(sources, parse)
    if errors:
        raise PolicyError(errors, sources)
    return check(files, sources, version)
