"""The parser's public front end: the grammar, one LALR parser per start symbol, and a
transformer base that gives every node its span.

The policy parser (parser.py), the test-file parser (testing/parse.py) and tools
such as a formatter build on these names only. Each parser is shared and runs the
transformer inside the parse (no tree, no recursion); a lock makes one parse at a
time per parser, which costs nothing under the GIL and lets per-file state (the
file name, expression depths) live on the transformer instance.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from lark import Lark, Token, Transformer, UnexpectedInput
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF

from ..values import MAX_INT
from . import nodes as n
from .diagnostics import Diagnostic, PolicyError
from .syntax_errors import describe_syntax_error

MAX_DEPTH = 100  # generated Python nests one level per AST level; CPython allows ~200
MAX_NUMBER_DIGITS = 100
DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def grammar_text() -> str:
    """The grammar from inside the wheel, or from the source tree in an editable install."""
    packaged = resources.files("policyd").joinpath("grammar").joinpath("policyd.lark")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (Path(__file__).resolve().parents[2] / "grammar" / "policyd.lark").read_text("utf-8")


class Malformed(Exception):
    """Raised by a transformer method for text that parses but cannot mean anything."""

    def __init__(self, span: n.Span, code: str, message: str, hint: str | None = None):
        super().__init__(message)
        self.diagnostic = Diagnostic.at(span, code, message, hint)


class SpanTransformer(Transformer):
    """Base of the grammar's transformers: the helpers that turn tokens into positioned
    names, numbers and durations, and the nesting guard. Subclasses decorated with
    `v_args(inline=True)` leave these inherited helpers alone (lark wraps only the
    methods a class defines itself)."""

    def __init__(self) -> None:
        super().__init__()
        self.file = "<policy>"
        self._depth: dict[int, int] = {}
        self._keep: list = []

    def begin(self, file: str) -> None:
        self.file, self._depth, self._keep = file, {}, []

    def end(self) -> None:
        self._depth, self._keep = {}, []

    def span_of(self, tok: Token) -> n.Span:
        return n.Span(self.file, tok.line or 1, tok.column or 1)

    def name_of(self, tok: Token) -> n.Name:
        return n.Name(tok.value, self.span_of(tok))

    def number_of(self, tok: Token) -> int | float:
        """A number literal, bounded: at most 100 digits and a finite double."""
        text = tok.value
        if sum(c.isdigit() for c in text) > MAX_NUMBER_DIGITS:
            raise Malformed(self.span_of(tok), "E005", f"number literal has more than "
                            f"{MAX_NUMBER_DIGITS} digits", "numbers are 64-bit doubles; write "
                            "a smaller value")
        value = float(text) if "." in text else int(text)
        if value - value != 0 or abs(value) > 1.7976931348623157e308:
            raise Malformed(self.span_of(tok), "E005", "number literal is out of range",
                            "numbers are finite 64-bit doubles")
        if type(value) is int and abs(value) > MAX_INT:
            raise Malformed(self.span_of(tok), "E005", "integer literal beyond +-2**53, "
                            "which a 64-bit double cannot hold exactly",
                            f"write it as a decimal ({text}.0) if its rounding is intended")
        return value

    def seconds_of(self, duration: Token) -> float:
        text = duration.value
        if sum(c.isdigit() for c in text) > MAX_NUMBER_DIGITS:
            raise Malformed(self.span_of(duration), "E005", "duration has too many digits")
        return float(text[:-1]) * DURATION_UNITS[text[-1]]

    def nested(self, node, *children):
        """Record an expression's depth; refuse what generated Python could not nest."""
        depth = 1 + max((self._depth.get(id(c), 1) for c in children), default=0)
        if depth > MAX_DEPTH:
            raise Malformed(node.span, "E002", f"expression nested too deeply (at most "
                            f"{MAX_DEPTH} levels)", "split the condition with a named constant "
                            "or several rules")
        if depth > 1:
            self._depth[id(node)] = depth
            self._keep.append(node)  # ids stay unique while the parse lasts
        return node


class Frontend:
    """One start symbol of the grammar and its transformer: text in, nodes out, syntax
    errors as diagnostics. `kind` ("policy" or "test") selects the error phrasebook."""

    def __init__(self, start: str, transformer: Callable[[], SpanTransformer], kind: str):
        self.start, self.kind = start, kind
        self.transformer = transformer()
        self.lark = Lark(grammar_text(), parser="lalr", lexer="basic", maybe_placeholders=True,
                         start=start, transformer=self.transformer)
        self._lock = threading.Lock()

    def parse(self, text: str, file: str):
        """The transformer's result for the whole text; raises PolicyError with one
        diagnostic for a syntax error or excessive nesting."""
        with self._lock:
            self.transformer.begin(file)
            try:
                return self.lark.parse(text)
            except UnexpectedInput as exc:
                raise PolicyError([self._syntax_diagnostic(exc, text, file)], {file: text}
                                  ) from None
            except Malformed as exc:
                raise PolicyError([exc.diagnostic], {file: text}) from None
            finally:
                self.transformer.end()

    def _syntax_diagnostic(self, exc: UnexpectedInput, text: str, file: str) -> Diagnostic:
        token = getattr(exc, "token", None)
        if isinstance(exc, UnexpectedEOF) or (token is not None and token.type == "$END"):
            lines = text.splitlines() or [""]
            line, column = len(lines), len(lines[-1]) + 1
        else:
            line, column = exc.line or 1, exc.column or 1
        message, hint = describe_syntax_error(exc, text, self.lark, self.kind)
        code = "E003" if isinstance(exc, UnexpectedCharacters) else "E004"
        return Diagnostic.at(n.Span(file, max(line, 1), max(column, 1)), code, message, hint)
