"""Parser: every form of LANGUAGE.md parses to the expected nodes; anything else is a
PolicyError with a position (never another exception, never a hang)."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policyd import PolicyError, compile_text
from policyd.language import nodes as n
from policyd.language.parser import parse

from .conftest import EXAMPLES

LANGUAGE_POLICY = """
policy orders for Order {
  tenant_isolation: deny * when principal.tenant != resource.tenant
  allow refund when principal is support and resource.total < refund_limit and principal.mfa
  no_delete: deny delete unless principal is admin
  show id, status, total when principal is viewer
  write total, internal_notes when principal is admin
  limit refund: 5 per 1m by principal.id
  limit *: 100 per 1s burst 20 by principal.id, context.ip when principal.mfa
}
"""


def test_rule_forms_and_spans():
    policy = parse(LANGUAGE_POLICY, "o.policy").decls[0]
    assert isinstance(policy, n.PolicyDecl) and policy.resource.value == "Order"
    fence, refund, no_delete, show, write, limit1, limit2 = policy.rules
    assert (fence.label.value, fence.effect, fence.targets) == ("tenant_isolation", "deny", None)
    assert fence.span == n.Span("o.policy", 3, 3)
    assert isinstance(fence.when, n.Binary) and fence.when.op == "!="
    assert refund.label is None and [t.value for t in refund.targets] == ["refund"]
    assert no_delete.when is None and isinstance(no_delete.unless, n.Is)
    assert [t.value for t in show.targets] == ["id", "status", "total"]
    assert write.effect == "write"
    assert (limit1.limit.count, limit1.limit.period, limit1.limit.burst) == (5, 60.0, None)
    assert (limit2.targets, limit2.limit.period, limit2.limit.burst) == (None, 1.0, 20)
    assert len(limit2.limit.keys) == 2 and limit2.when is not None


@pytest.mark.parametrize("text,expected", [
    ("a or b and c", ("or", "a", ("and", "b", "c"))),
    ("not a and b", ("and", ("not", "a"), "b")),
    ("a == 1 + 2 * 3", ("==", "a", ("+", 1, ("*", 2, 3)))),
    ("-x - -3", ("-", ("-", "x"), ("-", 3))),
    ("(a or b) and c", ("and", ("or", "a", "b"), "c")),
    ("1 - 2 - 3", ("-", ("-", 1, 2), 3)),
])
def test_precedence(text, expected):
    def shape(e):
        if isinstance(e, n.Binary):
            return (e.op, shape(e.left), shape(e.right))
        if isinstance(e, n.Unary):
            return (e.op, shape(e.operand))
        if isinstance(e, n.ConstRef):
            return e.name.value
        return e.value

    const = parse(f"const c = {text}").decls[0]
    assert shape(const.value) == expected


def test_literals():
    decls = parse('const a = "tab\\t\\u00e9\\"" const b = 12.5 const c = -3 const d = [true, false]'
                  ' const e = ip("10.0.0.0/8")').decls
    assert decls[0].value.value == 'tab\té"'
    assert decls[1].value.value == 12.5 and isinstance(decls[1].value.value, float)
    assert isinstance(decls[2].value, n.Unary)
    assert [i.value for i in decls[3].value.items] == [True, False]
    assert isinstance(decls[4].value, n.Call) and decls[4].value.func.value == "ip"


def test_comments_and_newlines_are_whitespace():
    text = "# head\nrole a # trailing\nrole\n  b\n  extends a   # rules span lines\n"
    roles = parse(text).decls
    assert [r.name.value for r in roles] == ["a", "b"] and roles[1].parents[0].value == "a"


@pytest.mark.parametrize("text,line,column,fragment", [
    ("policy p for R {\n  allow read when (a\n}", 3, 1, "found `}`"),
    ("role a\nrole 9", 2, 6, "expected a name"),
    ('const s = "unterminated', 1, 11, "unexpected character"),
    ("resource R { x: string actions read }\npolicy p for R { allow read when x ==}", 2, 38,
     "found `}`"),
    ("principal P { a: }", 1, 18, "found `}`"),
    ("", None, None, None),
])
def test_syntax_errors_have_positions(text, line, column, fragment):
    if fragment is None:
        assert parse(text).decls == ()
        return
    with pytest.raises(PolicyError) as exc:
        parse(text, "x.policy")
    d = exc.value.diagnostics[0]
    assert (d.file, d.line, d.column) == ("x.policy", line, column)
    assert fragment in d.message
    assert "Unexpected" not in d.message and "Token(" not in d.message


def test_redundant_parentheses_do_not_nest():
    assert compile_text("const c = " + "(" * 3000 + "1" + ")" * 3000)


@pytest.mark.parametrize("text", [
    "const c = " + "(1 + " * 3000 + "1" + ")" * 3000,
    "const c = " + "not " * 3000 + "true",
    "const c = " + " and ".join(["true"] * 3000),
    "const c = " + "-" * 3000 + "1",
], ids=["arith", "not", "and-chain", "minus"])
def test_pathological_nesting_is_a_diagnostic(text):
    with pytest.raises(PolicyError) as exc:
        compile_text(text)
    assert exc.value.diagnostics[0].code == "E002"


def _compiles_or_policy_error(text: str) -> None:
    start = time.perf_counter()
    try:
        compile_text(text, "fuzz.policy")
    except PolicyError as exc:
        assert exc.diagnostics and all(d.line >= 1 and d.column >= 1 for d in exc.diagnostics)
        exc.render()
    assert time.perf_counter() - start < 5


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_fuzz_arbitrary_text(text):
    _compiles_or_policy_error(text)


TOKENS = ["policy", "p", "for", "R", "{", "}", "allow", "deny", "show", "write", "read", "*",
          "when", "unless", "and", "or", "not", "(", ")", "principal", "resource", ".", "x",
          "==", "<", "in", "[", "]", '"s"', "1", ",", ":", "resource R { x: string actions read }",
          "has", "is", "owns", "like", "ip(", "time(", "const", "=", "role", "extends", "limit",
          "per", "1m", "by", "\n", "#"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=40))
def test_fuzz_token_soup(tokens):
    _compiles_or_policy_error(" ".join(tokens))


EXAMPLE_TEXT = "\n".join(p.read_text() for p in sorted((EXAMPLES / "orders").glob("*.policy"))
                         if not p.name.endswith(".test.policy"))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(EXAMPLE_TEXT)), st.integers(0, 8),
                          st.sampled_from(["", "x", "(", ")", '"', "{", "}", ",", "not ", "?",
                                           ".", "\\", "*", "é", "0"])), min_size=1, max_size=4))
def test_fuzz_mutated_example(edits):
    text = EXAMPLE_TEXT
    for pos, length, insert in edits:
        text = text[:pos] + insert + text[pos + length:]
    _compiles_or_policy_error(text)
