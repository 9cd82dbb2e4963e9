"""Turns lark's parse exceptions into sentences a policy author can act on.

Context-specific phrases come from small broken examples (lark's
`match_examples`); everything else reads "expected X, found Y".
"""

from __future__ import annotations

import functools
import re

from lark import Lark, UnexpectedInput
from lark.exceptions import UnexpectedCharacters

_FRIENDLY = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a string",
    "DURATION": "a duration such as `1m`",
    "$END": "the end of the file",
}

# label -> broken snippets that fail in the same parser state, per kind of file
_POLICY_EXAMPLES = {
    "expected `for` after the policy name": ["policy p {", "policy p Order {}", "policy p"],
    "expected the resource type after `for`": ["policy p for {", "policy p for"],
    "expected `{` to open the policy's rules": ["policy p for Order allow", "policy p for O"],
    "expected the actions (or `*`) that the rule covers": [
        "policy p for T { allow when", "policy p for T { deny }", "policy p for T { allow unless",
    ],
    "expected `:` and a type after the attribute name": [
        "principal U { a string }", "resource R { a string }", "context { a }",
    ],
    "expected an expression after `when`": ["policy p for T { allow * when }"],
    "expected an expression after `unless`": ["policy p for T { allow * unless }"],
    "expected `=` after the constant name": ["const a 5", "const a"],
    "expected a role name after `extends`": ["role a extends", "role a extends }"],
    "expected `{` after the resource type name": ["resource R actions", "resource R owned by o actions"],
    "expected `by` and the ownership attribute after `owned`": ["resource R owned o {"],
    "attributes are separated by spaces or new lines, not commas": [
        "principal U { a: string,", "resource R { a: string,", "context { a: ip,",
        "record X { a: string,"],
    "`actions` lists the actions without a colon": ["resource R { actions:"],
}
_TEST_EXAMPLES = {
    "expected `principal`, `resource` or `context` after `=`": ["fixture a = User"],
    "expected `allow`, `deny` or `visible` after `expect`": ['test "t" { expect read'],
    "expected the test's name as a string": ["test t {"],
    "expected a duration such as `12s` after `after`": ['test "t" { after 12 }'],
    "expected the actions that the expectation is about": ['test "t" { expect allow by'],
    "expected `:` and the fields after the action": ['test "t" { expect visible read id'],
    "expected the next step (`given`, `expect`, `after`) or `}`": [
        'test "t" { expect allow read x5 x', 'test "t" { expect allow read by a x5 x'],
}
_EXAMPLES = {"policy": _POLICY_EXAMPLES, "test": _TEST_EXAMPLES}

_COMPARISONS = {"EQ", "NE", "LT", "LE", "GT", "GE"}
_LABEL_HINTS = {
    "attributes are separated by spaces or new lines, not commas":
        "write `principal User { roles: set<string>  tenant: string }`",
    "`actions` lists the actions without a colon": "write `actions read, update`",
}
# a declaration keyword where a block's `}` could close: the block before it is open
_DECLARATION_STARTS = {"PRINCIPAL", "RESOURCE", "CONTEXT", "RECORD", "ROUTES", "ROLE", "CONST",
                       "POLICY"}
# tokens that start a condition: after a rule head they mean a missing `when`
_CONDITION_STARTS = {"PRINCIPAL", "RESOURCE", "CONTEXT", "ACTION", "NOT", "TRUE", "FALSE",
                     "LSQB", "STRING", "NUMBER", "LPAR"}
_BAD_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?[A-Za-z_][A-Za-z0-9_]*")
_CHAR_HINTS = {
    "'": "strings use double quotes: \"like this\"",
    "&": "use `and`",
    "|": "use `or`",
    "!": "use `not`, or `!=` to compare",
    "=": "use `==` to compare",
    ";": "rules and declarations need no separator",
}
_TOKEN_HINTS = {
    "=": "use `==` to compare",
    "&&": "use `and`",
    **{op: "comparisons do not chain: join them with `and`"
       for op in ("==", "!=", "<", "<=", ">", ">=")},
    "||": "use `or`",
}


def _terminal_text(name: str, parser: Lark) -> str:
    if name in _FRIENDLY:
        return _FRIENDLY[name]
    try:
        term = parser.get_terminal(name)
    except KeyError:
        return name.lower()
    if term.pattern.type == "str":
        return f"`{term.pattern.value}`"
    return name.lower()


def _alternatives(names: set[str], parser: Lark) -> str:
    texts = sorted({_terminal_text(t, parser) for t in names}, key=lambda t: (t[0] != "`", t))
    if len(texts) > 7:
        texts = texts[:7] + ["..."]
    if len(texts) == 1:
        return texts[0]
    return ", ".join(texts[:-1]) + " or " + texts[-1]


@functools.cache
def _label_table(parser: Lark, kind: str) -> dict[tuple[int, str | None], str]:
    """(LALR state, token type) -> label, from the broken examples; built once.
    Matching on the state number alone (not lark's stack depth) finds a mistake
    wherever in the file it happens."""
    table: dict[tuple[int, str | None], str] = {}
    for label, examples in _EXAMPLES[kind].items():
        for example in examples:
            try:
                parser.parse(example)
            except UnexpectedInput as ut:
                state = getattr(ut, "state", None)
                if state is None:
                    continue
                token = getattr(ut, "token", None)
                table.setdefault((state.position, getattr(token, "type", None)), label)
                table.setdefault((state.position, None), label)
    return table


def _label(exc: UnexpectedInput, parser: Lark, kind: str) -> str | None:
    state = getattr(exc, "state", None)
    if state is None:
        return None
    table = _label_table(parser, kind)
    token = getattr(exc, "token", None)
    return table.get((state.position, getattr(token, "type", None))) or \
        table.get((state.position, None))


def describe_syntax_error(exc: UnexpectedInput, text: str, parser: Lark,
                          kind: str = "policy") -> tuple[str, str | None]:
    """(message, hint) for one lark parse exception."""
    if isinstance(exc, UnexpectedCharacters):
        bad = _BAD_NUMBER.match(text, exc.pos_in_stream)
        if bad:
            return (f"`{bad.group()}` is neither a number nor a duration",
                    "a duration is a number and one of s, m, h, d: `30s`, `1m`, `15m`, `24h`")
        char = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        shown = repr(char)[1:-1] if not char.isprintable() else char
        return f"unexpected character `{shown}`", _CHAR_HINTS.get(char)
    token = getattr(exc, "token", None)
    found = "the end of the file" if token is None or token.type == "$END" else f"`{token.value}`"
    expected = set(getattr(exc, "expected", None) or getattr(exc, "accepts", None) or ())
    label = _label(exc, parser, kind)
    hint = _TOKEN_HINTS.get(token.value) if token is not None and token.type != "$END" else None
    if label:
        return f"{label}, found {found}", hint or _LABEL_HINTS.get(label)
    kind_of = getattr(token, "type", None)
    first_on_line = token is not None and token.type != "$END" and \
        not text[text.rfind("\n", 0, token.start_pos) + 1:token.start_pos].strip()
    if kind_of in _CONDITION_STARTS and "WHEN" in expected and not (
            first_on_line and kind_of in _DECLARATION_STARTS):
        return (f"expected `when` before the condition, found {found}",
                "a rule's condition follows `when` (or `unless`): `allow read when principal "
                "is viewer`")
    if kind_of in _DECLARATION_STARTS and "RBRACE" in expected:
        opened = _open_block(text, token.start_pos)
        if opened is not None:
            line, header = opened
            return (f"expected `}}` to close {header} (opened on line {line}), found {found}",
                    "every `{` needs its `}` before the next declaration")

    if token is not None and token.type in _COMPARISONS and not expected & _COMPARISONS:
        return f"unexpected {found} after a comparison", hint
    if token is not None and "NAME" in expected and token.value.isidentifier() \
            and token.type != "NAME" and token.type != "$END":
        return (f"`{token.value}` is a keyword and cannot be used as a name",
                "rename it; docs/language.md lists the keywords")
    if expected:
        return f"expected {_alternatives(expected, parser)}, found {found}", hint
    return f"unexpected {found}", hint


def _open_block(text: str, end: int) -> tuple[int, str] | None:
    """The innermost `{` still open before `end` (strings and comments skipped): its line,
    and the declaration it opens, as written (`principal User`)."""
    stack: list[int] = []
    i, in_string = 0, False
    while i < end:
        c = text[i]
        if in_string:
            if c == "\\":
                i += 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c == "#":
            nl = text.find("\n", i)
            i = end if nl < 0 else nl
            continue
        elif c == "{":
            stack.append(i)
        elif c == "}" and stack:
            stack.pop()
        i += 1
    if not stack:
        return None
    pos = stack[-1]
    start = text.rfind("\n", 0, pos) + 1
    header = " ".join(text[start:pos].split()) or "the block"
    return text.count("\n", 0, pos) + 1, f"the `{header}` block" if header != "the block" \
        else header
