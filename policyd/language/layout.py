"""The formatter's page: printed entries anchored to source lines, with the source's
comments put back where they were (before what they preceded, after what they ended)
and its blank-line paragraphs kept (at most one, never just inside braces).

The printers (language.printer, testing.printer) say what goes on the page; this
module owns where comments and blank lines go, for both kinds of file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

INDENT = "  "
WIDTH = 100


@dataclass
class Entry:
    """Printed lines (the first at `indent`, the rest as given), from source `line`.
    `kind`: item, open (a line ending in `{`) or close (`}`)."""

    line: int
    indent: int
    lines: list[str]
    kind: str = "item"
    leading: list[tuple[int, str]] = field(default_factory=list)  # (line, comment)
    trailing: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Comment:
    line: int
    text: str
    alone: bool  # on a line of its own (else it ends a line of code)


def scan(lark, text: str) -> tuple[list[Comment], dict[int, int]]:
    """The comments of `text`, and for each `{` (by its line and column) the line of the
    `}` that closes it."""
    comments, closes, stack, code_line = [], {}, [], 0
    for tok in lark.lex(text, dont_ignore=True):
        if tok.type == "COMMENT":  # alone unless code came before it on its line
            comments.append(Comment(tok.line, tok.value.rstrip(), code_line != tok.line))
        elif tok.value.strip():
            code_line = tok.end_line
            if tok.type == "LBRACE":
                stack.append((tok.line, tok.column))
            elif tok.value == "}" and stack:
                closes[stack.pop()] = tok.line
    return comments, closes


def render(entries: list[Entry], comments: list[Comment], source: str) -> str:
    """The page: entries in order, comments attached, blank lines as the source had."""
    _attach(entries, comments)
    rows: list[tuple[int | None, str, str]] = []  # (source line, text, kind)
    for e in entries:
        pad = INDENT * (e.indent + (1 if e.kind == "close" else 0))
        rows.extend((line, pad + text, "comment") for line, text in e.leading)
        body = [INDENT * e.indent + e.lines[0], *e.lines[1:]]
        if e.trailing:  # the first ends the line; more (lines joined) follow it, alone
            body[-1] += "  " + e.trailing[0]
            extra = INDENT * (e.indent + (1 if e.kind == "open" else 0))
            body += [extra + c for c in e.trailing[1:]]
        rows.append((e.line, body[0], e.kind))
        rows.extend((None, text, "cont") for text in body[1:])
    lines, out = source.splitlines(), []
    prev, prev_kind = None, None
    for line, text, kind in rows:
        if line is None:
            out.append(text)
            continue
        if prev is not None and prev_kind != "open" and kind != "close" and \
                _blank_between(lines, prev, line):
            out.append("")
        out.append(text)
        prev, prev_kind = max(prev or 0, line), kind
    return "\n".join(out).rstrip() + "\n"


def _attach(entries: list[Entry], comments: list[Comment]) -> None:
    for c in comments:
        if c.alone:
            target = next((e for e in entries if e.line > c.line), None)
            if target is None:  # after everything: comments ending the file
                target = Entry(1 << 30, 0, [""])
                entries.append(target)
            target.leading.append((c.line, c.text))
        else:
            target = entries[0]
            for e in entries:
                if e.line <= c.line:
                    target = e
            target.trailing.append(c.text)


def _blank_between(lines: list[str], after: int, before: int) -> bool:
    return any(not lines[i - 1].strip()
               for i in range(max(after + 1, 1), min(before, len(lines) + 1)))


def fits(indent: int, text: str) -> bool:
    return len(INDENT * indent) + len(text) <= WIDTH
