"""The one diagnostic type for policy errors and warnings, and its rendering.

Policy errors are values: checking collects them all and a `PolicyError`
carries them to the caller. Codes are stable (documented in docs/language.md).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from .codes import CODES

ERROR = "error"
WARNING = "warning"


class Located(Protocol):
    """Anything with a position: a span, a checked rule, a declaration's schema."""

    file: str
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    message: str
    file: str
    line: int
    column: int
    hint: str | None = None
    severity: str = ERROR

    @classmethod
    def at(cls, where: Located, code: str, message: str, hint: str | None = None,
           severity: str = ERROR) -> Diagnostic:
        """The one way to build a diagnostic: its code must be in the table (codes.py)."""
        if code not in CODES:
            raise KeyError(f"diagnostic code {code} is not in policyd.language.codes")
        return cls(code, message, where.file, where.line, where.column, hint, severity)

    @classmethod
    def for_path(cls, path: str, code: str, message: str) -> Diagnostic:
        """A problem with a whole file or directory: no line, no column (line 0)."""
        if code not in CODES:
            raise KeyError(f"diagnostic code {code} is not in policyd.language.codes")
        return cls(code, message, path, 0, 0)

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def sort_key(self) -> tuple:
        return (self.file, self.line, self.column, self.code, self.message)

    def headline(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        return f"{where}: {self.severity}[{self.code}]: {self.message}"

    def render(self, sources: Mapping[str, str] | None = None) -> str:
        """`file:line:col: error[code]: message`, then the source line and a caret."""
        out = [self.headline()]
        text = (sources or {}).get(self.file)
        if text is not None and self.line >= 1:
            lines = text.splitlines()
            if self.line <= len(lines):
                src = lines[self.line - 1].expandtabs(1)
                gutter = f"{self.line} | "
                out.append(gutter + src)
                out.append(" " * (len(gutter) + max(self.column - 1, 0)) + "^")
        if self.hint:
            out.append(f"  hint: {self.hint}")
        return "\n".join(out)

    def to_dict(self) -> dict:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "hint": self.hint,
        }


class PolicyError(Exception):
    """A policy set that does not parse or check; `.diagnostics` holds every error."""

    def __init__(self, diagnostics: Iterable[Diagnostic], sources: Mapping[str, str] | None = None):
        self.diagnostics = sorted(diagnostics, key=Diagnostic.sort_key)
        self.sources = dict(sources or {})
        errors = [d for d in self.diagnostics if d.is_error]
        first = errors[0].headline() if errors else "policy error"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(first + more)

    def render(self) -> str:
        return "\n".join(d.render(self.sources) for d in self.diagnostics)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A "did you mean" hint when a declared name is close to the one written, or is the
    only one that the name begins (a whole word of it: `hiv` for `hiv_status`)."""
    names = sorted(set(candidates))
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if not close and len(name) >= 3:
        close = [c for c in names if name in c.split("_") or c.startswith(name)]
        close = close if len(close) == 1 else []
    return f"did you mean `{close[0]}`?" if close else None
