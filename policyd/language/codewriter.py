"""A small writer of Python source that remembers which policy line each generated
line came from (as Jinja2's compiler does), so failures map back to the policy."""

from __future__ import annotations

from contextlib import contextmanager


def safe_comment(text: str) -> str:
    """Comment text that cannot end the comment: control characters are escaped."""
    return "".join(c if c.isprintable() and c not in "\r\n" else repr(c)[1:-1] for c in text)


class CodeWriter:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.linemap: dict[int, tuple[str, int]] = {}  # generated line -> (policy file, line)
        self._indent = 0
        self._origin: tuple[str, int] | None = None

    def line(self, code: str = "") -> None:
        self.lines.append(("    " * self._indent + code) if code else "")
        if self._origin is not None:
            self.linemap[len(self.lines)] = self._origin

    def comment(self, text: str) -> None:
        self.line("# " + safe_comment(text))

    @contextmanager
    def indent(self, levels: int = 1):
        self._indent += levels
        try:
            yield
        finally:
            self._indent -= levels

    @contextmanager
    def origin(self, file: str, line: int):
        """Lines written inside come from this policy location."""
        previous, self._origin = self._origin, (file, line)
        try:
            yield
        finally:
            self._origin = previous

    def source(self) -> str:
        return "\n".join(self.lines) + "\n"
