"""Test-file text to the test AST: the same grammar with its `test_file` start symbol, and
the policy transformer extended by the test forms."""

from __future__ import annotations

import functools
import json
import re

from lark import Token, v_args

from ..language.frontend import Frontend, Malformed
from ..language.nodes import Name
from ..language.parser import ToAst, nodes
from . import nodes as t

MAX_REPEAT = 10_000
_REPEAT = re.compile(r"x([1-9][0-9]*)")


@functools.cache
def test_frontend() -> Frontend:
    return Frontend("test_file", _TestAst, "test")


def parse_tests(text: str, file: str = "<tests>") -> t.TestFile:
    """Parse one `*.test.policy` file; raises PolicyError with the syntax error."""
    items = test_frontend().parse(text, file)
    fixtures = tuple(i for i in items if isinstance(i, t.FixtureDecl))
    tests = tuple(i for i in items if isinstance(i, t.TestDecl))
    return t.TestFile(file, fixtures, tests)


def _repeat(tok: Token | None, span) -> int:
    if tok is None:
        return 1
    match = _REPEAT.fullmatch(tok.value)
    if match is None:
        raise Malformed(span, "E401", f"expected a repeat count such as `x5`, found "
                        f"`{tok.value}`", "actions are separated by commas: `read, update`")
    count = int(match.group(1))
    if count > MAX_REPEAT:
        raise Malformed(span, "E401", f"a repeat count is at most x{MAX_REPEAT}, "
                        f"found `{tok.value}`")
    return count


@v_args(inline=True)
class _TestAst(ToAst):
    """The test forms; expressions and names come from the policy transformer."""

    def test_file(self, *items):
        return tuple(items)

    def attr_value(self, name, value):
        key = json.loads(name.value) if name.type == "STRING" else name.value
        return t.AttrValue(Name(key, self.span_of(name)), value, self.span_of(name))

    def attr_values(self, *values):
        return nodes(values)

    def entity_lit(self, kind, type_name, ident, _in, parents, attrs):
        return t.EntityLit(kind.value, self.name_of(type_name), json.loads(ident.value), attrs,
                           self.span_of(kind), parents or ())

    def fixture_parents(self, *parents):
        return tuple(parents)

    def fixture_parent(self, type_name, ident):
        return t.ParentRef(self.name_of(type_name), json.loads(ident.value),
                           self.span_of(type_name))

    def output_pair(self, name, value):
        return self.attr_value(name, value)

    def expect_output(self, _kw, *pairs):
        return tuple(pairs)

    def context_lit(self, kind, attrs):
        return t.EntityLit("context", None, None, attrs, self.span_of(kind))

    def fixture_decl(self, _kw, name, value):
        return t.FixtureDecl(self.name_of(name), value, self.span_of(name))

    def fixture_ref(self, name, _with, overrides):
        return t.FixtureRef(self.name_of(name), overrides, self.span_of(name))

    def given(self, kw, *parts):
        return t.Given(tuple(parts), self.span_of(kw))

    def test_names(self, *names):
        return tuple(self.name_of(tok) for tok in names)

    def writing(self, _kw, names):
        return names

    def reason(self, first, label=None):
        if first.type == "STRING":
            return t.Reason(json.loads(first.value), self.span_of(first))
        value = first.value if label is None else f"{first.value}.{label.value}"
        return t.Reason(value, self.span_of(first))

    def reasons(self, *reasons):
        return tuple(reasons)

    def decision_tail(self, first, second):
        """(reasons, repeat token), whichever order they were written in."""
        return (second, first) if isinstance(first, Token) else (first, second)

    def expect_decision(self, kw, effect, actions, writing, tail, outputs):
        reasons, repeat = tail if tail is not None else (None, None)
        return t.ExpectDecision(effect.value == "allow", actions, writing or (), reasons or (),
                                _repeat(repeat, None if repeat is None else self.span_of(repeat)),
                                self.span_of(kw), outputs or ())

    def expect_visible(self, kw, _visible, action, fields):
        return t.ExpectVisible(self.name_of(action), fields, self.span_of(kw))

    def after(self, kw, duration):
        return t.After(self.seconds_of(duration), duration.value, self.span_of(kw))

    def test_decl(self, kw, name, *steps):
        return t.TestDecl(json.loads(name.value), nodes(steps), self.span_of(kw))
