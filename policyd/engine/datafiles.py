"""Entity data files: `*.data.json` (a list of entries) and `*.data.jsonl` (one entry a
line), decoded in large C-speed pieces, with the line of any entry found again only
when it has a problem. Every problem is a diagnostic with the file and line.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from ..language.diagnostics import Diagnostic
from ..language.nodes import Span
from ..language.sources import as_text


def _line_of(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


def parse_file(path: str, text: str, report: Callable[[Diagnostic], None]) -> list[tuple]:
    """(value, Span) per entry; a JSON syntax error is one diagnostic for the file."""
    out = []
    if path.endswith(".jsonl"):
        for number, line in enumerate(text.split("\n"), 1):  # not splitlines: see _pieces
            if line.strip():
                try:
                    out.append((json.loads(line), Span(path, number, 1)))
                except (json.JSONDecodeError, RecursionError, ValueError) as exc:
                    report(Diagnostic.at(Span(path, number, getattr(exc, "colno", 1)), "E501",
                                         f"not valid JSON: {getattr(exc, 'msg', exc)}"))
        return out
    decoder, pos = json.JSONDecoder(), 0
    try:
        pos = len(text) - len(text.lstrip())
        if text[pos:pos + 1] != "[":
            report(Diagnostic.at(Span(path, *_line_of(text, pos)), "E501", "a .data.json file "
                                 "holds a JSON list of entries", "write [{\"type\": ..., "
                                 "\"id\": ..., \"attrs\": {...}}, ...], or use .data.jsonl"))
            return []
        pos += 1
        while True:
            while text[pos:pos + 1].isspace():
                pos += 1
            if text[pos:pos + 1] == "]":
                return out
            value, end = decoder.raw_decode(text, pos)
            out.append((value, Span(path, *_line_of(text, pos))))
            pos = end
            while text[pos:pos + 1].isspace():
                pos += 1
            if text[pos:pos + 1] == ",":
                pos += 1
            elif text[pos:pos + 1] != "]":
                raise json.JSONDecodeError("expected `,` or `]`", text, pos)
    except json.JSONDecodeError as exc:
        report(Diagnostic.at(Span(path, exc.lineno, exc.colno), "E501",
                             f"not valid JSON: {exc.msg}"))
    except RecursionError:
        report(Diagnostic.at(Span(path, *_line_of(text, pos)), "E501", "nested too deeply"))
    return out


PIECE = 1 << 20  # characters of .jsonl decoded at once: fast, and never a long GIL hold


def _nth_line(path: str, part: list[str], start: int, i: int) -> Span:
    """The line of the i-th entry of a chunk (blank lines hold none)."""
    seen = -1
    for n, line in enumerate(part):
        if line.strip():
            seen += 1
            if seen == i:
                return Span(path, start + n + 1, 1)
    return Span(path, start + 1, 1)


def _pieces(text):
    """(first line number - 1, lines) of a .jsonl text (a str or a DataText's pieces)."""
    start = 0
    for piece in getattr(text, "pieces", (text,)):
        for first, lines in _piece_lines(piece):
            yield start + first, lines
        start += piece.count("\n") + (not piece.endswith("\n"))


def _piece_lines(text: str):
    """(first line number - 1, lines) of a .jsonl text, about PIECE characters at a time:
    no call holds the GIL for long on a 200 MB file (decisions keep flowing while a
    reload reads it). Lines split on "\n" only: str.splitlines() also splits at U+2028,
    U+2029, U+0085 and others, which JSON strings may hold unescaped, and the halves would
    be joined back with a comma (`"eng\u2028"` read as `"eng,"`)."""
    pos, start, size = 0, 0, len(text)
    while pos < size:
        end = text.find("\n", min(pos + PIECE, size - 1))
        end = size if end < 0 else end + 1
        lines = text[pos:end].split("\n")
        if not lines[-1]:
            lines.pop()  # the newline that ends the piece
        yield start, lines
        start, pos = start + len(lines), end


def chunks(path: str, text: str, report):
    """(entries, where) pieces of a file, each decoded in one C-speed parse; `where(i)`
    finds entry i's line when it has a problem. A syntax error is reported with its line
    and, in .jsonl, the other lines still count."""
    if path.endswith(".jsonl"):
        for start, part in _pieces(text):
            try:
                try:  # blank lines are rare: join first, filter only when needed
                    values = json.loads("[" + ",".join(part) + "]")
                except json.JSONDecodeError:
                    values = json.loads("[" + ",".join(x for x in part if x.strip()) + "]")
            except (json.JSONDecodeError, RecursionError, ValueError):
                good = parse_file(path, "\n" * start + "\n".join(part), report)
                yield [v for v, _ in good], lambda i, good=good: good[i][1]
                continue
            yield values, lambda i, part=part, start=start: _nth_line(path, part, start, i)
        return
    text = as_text(text)  # one JSON document: parsed whole
    try:
        values = json.loads(text)
    except (json.JSONDecodeError, RecursionError, ValueError):
        values = None
    if not isinstance(values, list):
        parse_file(path, text, report)
        return
    spans: list = []

    def where(i: int) -> Span:
        if not spans:
            spans.extend(span for _, span in parse_file(path, text, lambda d: None))
        return spans[i]

    yield values, where


