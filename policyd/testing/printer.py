"""`policyd fmt` for `*.test.policy` files: fixtures and tests in one canonical layout
(expressions, comments and blank lines as in policy files: language.printer, layout)."""

from __future__ import annotations

import json
import re

from ..language.layout import INDENT, WIDTH, Entry, fits, render, scan
from ..language.printer import (
    NAME_WORDS,
    _brace_lines,
    expr,
    format_policy,
    key_text,
    keywords,
)
from ..language.sources import TEST_SUFFIX
from . import nodes as t
from .parse import parse_tests, test_frontend

TEST_WORDS = {"fixture", "test", "given", "expect", "after", "with", "visible", "writing",
              "output", "entity"}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _reason(value: str) -> str:
    first, _, label = value.partition(".")
    bare = _IDENT.fullmatch(first) and first not in keywords() and (
        not label or _IDENT.fullmatch(label) and
        (label not in keywords() or label in NAME_WORDS | TEST_WORDS))
    return value if bare else json.dumps(value, ensure_ascii=False)


def _values(values: tuple[t.AttrValue, ...], indent: int, head: str) -> list[str]:
    """`head { a: 1, b: 2 }` on one line if it fits, else one value per line."""
    items = [f"{key_text(v.name.value, NAME_WORDS | TEST_WORDS)}: {expr(v.value)}"
             for v in values]
    one = f"{head} {{ {', '.join(items)} }}" if items else f"{head} {{}}"
    if fits(indent, one):
        return [one]
    pad = INDENT * (indent + 1)
    return [f"{head} {{", *(f"{pad}{i}," for i in items), INDENT * indent + "}"]


def _entity(e: t.EntityLit, indent: int, head: str) -> list[str]:
    if e.kind == "context":
        return _values(e.attrs, indent, f"{head}context")
    parents = "".join(
        (" in " if i == 0 else ", ") + f"{p.type.value}({json.dumps(p.id, ensure_ascii=False)})"
        for i, p in enumerate(e.parents))
    return _values(e.attrs, indent, f"{head}{e.kind} {e.type.value} "
                   f"{json.dumps(e.id, ensure_ascii=False)}{parents}")


def _given(g: t.Given, indent: int) -> list[str]:
    """`given a, b with { ... }, c`: parts joined on the line while they fit; a part
    that does not goes on a continuation line; an entity too long for one line opens a
    block whose values are one per line."""
    parts = []
    for p in g.parts:
        if isinstance(p, t.FixtureRef):
            parts.append([p.name.value] if p.overrides is None else
                         _values(p.overrides, indent, f"{p.name.value} with"))
        else:
            parts.append(_entity(p, indent, ""))
    pad = INDENT * (indent + 2)
    lines = ["given " + parts[0][0], *parts[0][1:]]
    for p in parts[1:]:
        width = len(INDENT * indent) if len(lines) == 1 else 0
        if width + len(lines[-1]) + 2 + len(p[0]) <= WIDTH:
            lines[-1] += ", " + p[0]
        else:
            lines[-1] += ","
            lines.append(pad + p[0])
        lines += p[1:]
    return lines


def _wrapped(head: str, items: list[str], indent: int) -> list[str]:
    """`head a, b, c` filled up to the width, continued at a fixed indent."""
    lines, pad = [head + items[0]], INDENT * (indent + 2)
    for item in items[1:]:
        width = len(INDENT * indent) if len(lines) == 1 else 0
        if width + len(lines[-1]) + 2 + len(item) <= WIDTH:
            lines[-1] += ", " + item
        else:
            lines[-1] += ","
            lines.append(pad + item)
    return lines


def _names(names) -> str:
    return ", ".join(x.value for x in names)


def _step(s, indent: int) -> list[str]:
    if isinstance(s, t.Given):
        return _given(s, indent)
    if isinstance(s, t.ExpectDecision):
        text = f"expect {'allow' if s.allowed else 'deny'} {_names(s.actions)}"
        if s.writing:
            text += f" writing {_names(s.writing)}"
        if s.reasons:
            text += " by " + ", ".join(_reason(r.value) for r in s.reasons)
        if s.repeat != 1:
            text += f" x{s.repeat}"
        if s.outputs:
            items = [f"{key_text(o.name.value, NAME_WORDS | TEST_WORDS)}: {expr(o.value)}"
                     for o in s.outputs]
            return _wrapped(text + " output ", items, indent)
        return [text]
    if isinstance(s, t.ExpectVisible):
        return _wrapped(f"expect visible {s.action.value}: ", [f.value for f in s.fields],
                        indent)
    return [f"after {s.text}"]


def format_tests(text: str, file: str = "<tests>") -> str:
    """The canonical layout of a test file; raises PolicyError for text that does not
    parse (and changes nothing)."""
    tree = parse_tests(text, file)
    comments, closes = scan(test_frontend().lark, text)
    by_line = _brace_lines(closes)
    items = sorted([*tree.fixtures, *tree.tests], key=lambda i: (i.span.line, i.span.column))
    entries: list[Entry] = []
    for item in items:
        if isinstance(item, t.FixtureDecl):
            entries.append(Entry(item.span.line, 0, _entity(item.value, 0,
                                                             f"fixture {item.name.value} = ")))
            continue
        name = json.dumps(item.name, ensure_ascii=False)
        if not item.steps:
            entries.append(Entry(item.span.line, 0, [f"test {name} {{}}"]))
            continue
        entries.append(Entry(item.span.line, 0, [f"test {name} {{"], "open"))
        entries += [Entry(s.span.line, 1, _step(s, 1)) for s in item.steps]
        entries.append(Entry(by_line.get(item.span.line, item.steps[-1].span.line), 0, ["}"],
                             "close"))
    if not entries:
        return "".join(f"{c.text}\n" for c in comments)
    return render(entries, comments, text)


def format_text(text: str, file: str) -> str:
    """The canonical layout of one file's text (a test file by its name)."""
    return format_tests(text, file) if file.endswith(TEST_SUFFIX) else \
        format_policy(text, file)
