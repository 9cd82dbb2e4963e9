"""Turns lark's parse exceptions into sentences a policy author can act on.

Context-specific phrases come from small broken examples (lark's
`match_examples`); everything else reads "expected X, found Y".
"""

from __future__ import annotations

import functools

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
        char = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        shown = repr(char)[1:-1] if not char.isprintable() else char
        return f"unexpected character `{shown}`", _CHAR_HINTS.get(char)
    token = getattr(exc, "token", None)
    found = "the end of the file" if token is None or token.type == "$END" else f"`{token.value}`"
    expected = set(getattr(exc, "expected", None) or getattr(exc, "accepts", None) or ())
    label = _label(exc, parser, kind)
    hint = _TOKEN_HINTS.get(token.value) if token is not None and token.type != "$END" else None
    if label:
        return f"{label}, found {found}", hint
    if token is not None and token.type in _COMPARISONS and not expected & _COMPARISONS:
        return f"unexpected {found} after a comparison", hint
    if token is not None and "NAME" in expected and token.value.isidentifier() \
            and token.type != "NAME" and token.type != "$END":
        return (f"`{token.value}` is a keyword and cannot be used as a name",
                "rename it; docs/language.md lists the keywords")
    if expected:
        return f"expected {_alternatives(expected, parser)}, found {found}", hint
    return f"unexpected {found}", hint
