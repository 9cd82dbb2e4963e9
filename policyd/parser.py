"""Policy text to AST: lark (LALR) with the grammar shaping the tree, a thin transformer.

Syntax errors become `Diagnostic`s with readable expectations; lark's own
exception text never reaches a policy author.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path

from lark import Lark, Token, Transformer, Tree, UnexpectedInput, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF

from . import nodes as n
from .diagnostics import Diagnostic, PolicyError
from .syntax_errors import describe_syntax_error

MAX_DEPTH = 100  # generated Python nests one level per AST level; CPython allows ~200
DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def grammar_text() -> str:
    """The grammar from inside the wheel, or from the source tree in an editable install."""
    packaged = resources.files("policyd").joinpath("grammar").joinpath("policyd.lark")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (Path(__file__).resolve().parent.parent / "grammar" / "policyd.lark").read_text("utf-8")


@functools.cache
def lark_parser() -> Lark:
    return Lark(grammar_text(), parser="lalr", lexer="basic", propagate_positions=True,
                maybe_placeholders=True)


@functools.cache
def reserved_words() -> frozenset[str]:
    """Every keyword of the grammar: none of them may be used as a name."""
    words = set()
    for term in lark_parser().terminals:
        if term.pattern.type == "str" and term.pattern.value.isidentifier():
            words.add(term.pattern.value)
    return frozenset(words)


def _span(file: str, item) -> n.Span:
    return n.Span(file, getattr(item, "line", 1) or 1, getattr(item, "column", 1) or 1)


@v_args(inline=True)
class _ToAst(Transformer):
    """Thin: each method builds one node; the grammar has already shaped the tree."""

    def __init__(self, file: str):
        super().__init__()
        self.file = file

    def _name(self, tok: Token) -> n.Name:
        return n.Name(tok.value, _span(self.file, tok))

    def _at(self, meta) -> n.Span:
        return n.Span(self.file, getattr(meta, "line", 1), getattr(meta, "column", 1))

    # declarations
    def start(self, *decls):
        return tuple(decls)

    @v_args(meta=True, inline=True)
    def principal_decl(self, meta, name, *attrs):
        return n.PrincipalDecl(self._name(name), tuple(attrs), self._at(meta))

    @v_args(meta=True, inline=True)
    def context_decl(self, meta, *attrs):
        return n.ContextDecl(tuple(attrs), self._at(meta))

    @v_args(meta=True, inline=True)
    def attr_decl(self, meta, name, optional, type_ref, sensitive):
        return n.AttrDecl(self._name(name), type_ref, optional is not None, sensitive is not None,
                          self._at(meta))

    @v_args(meta=True, inline=True)
    def type_ref(self, meta, name, _lt, arg, _gt):
        return n.TypeRef(n.Name(name.value, _span(self.file, name)),
                         n.Name(arg.value, _span(self.file, arg)) if arg is not None else None,
                         self._at(meta))

    @v_args(meta=True, inline=True)
    def role_decl(self, meta, name, parents):
        return n.RoleDecl(self._name(name), parents or (), self._at(meta))

    def name_list(self, *names):
        return tuple(self._name(t) for t in names)

    def owner(self, name):
        return self._name(name)

    def actions_decl(self, names):
        return ("actions", names)

    @v_args(meta=True, inline=True)
    def resource_decl(self, meta, name, owner, *members):
        attrs = tuple(m for m in members if isinstance(m, n.AttrDecl))
        actions = tuple(a for m in members if isinstance(m, tuple) for a in m[1])
        return n.ResourceDecl(self._name(name), owner, attrs, actions, self._at(meta))

    @v_args(meta=True, inline=True)
    def const_decl(self, meta, name, value):
        return n.ConstDecl(self._name(name), value, self._at(meta))

    @v_args(meta=True, inline=True)
    def policy_decl(self, meta, name, resource, *rules):
        return n.PolicyDecl(self._name(name), self._name(resource), tuple(rules), self._at(meta))

    # rules
    def label(self, name):
        return self._name(name)

    def targets(self, item):
        return None if isinstance(item, Token) else item

    def when(self, expr):
        return expr

    def unless(self, expr):
        return expr

    def condition(self, when, unless):
        return (when, unless)

    def effect_rule(self, effect, targets, condition):
        return (effect.value, targets, condition, None, effect)

    def burst(self, number):
        return self._number(number)

    def expr_list(self, *exprs):
        return tuple(exprs)

    def limit_rule(self, _limit, targets, count, duration, burst, keys, condition):
        text = duration.value
        period = float(text[:-1]) * DURATION_UNITS[text[-1]]
        spec = n.LimitSpec(self._number(count), period, text, burst, keys)
        return ("limit", targets, condition, spec, count)

    @v_args(meta=True, inline=True)
    def rule(self, meta, label, body):
        effect, targets, (when, unless), spec, _ = body
        return n.Rule(label, effect, targets, when, unless, spec, self._at(meta))

    # expressions
    def _number(self, tok: Token):
        return float(tok.value) if "." in tok.value else int(tok.value)

    def string(self, tok):
        return n.Literal(json.loads(tok.value), _span(self.file, tok))

    def number(self, tok):
        return n.Literal(self._number(tok), _span(self.file, tok))

    def true(self, tok):
        return n.Literal(True, _span(self.file, tok))

    def false(self, tok):
        return n.Literal(False, _span(self.file, tok))

    @v_args(meta=True, inline=True)
    def principal(self, meta):
        return n.Root("principal", self._at(meta))

    @v_args(meta=True, inline=True)
    def resource(self, meta):
        return n.Root("resource", self._at(meta))

    @v_args(meta=True, inline=True)
    def context(self, meta):
        return n.Root("context", self._at(meta))

    @v_args(meta=True, inline=True)
    def action(self, meta):
        return n.Root("action", self._at(meta))

    def name(self, tok):
        name = self._name(tok)
        return n.ConstRef(name, name.span)

    @v_args(meta=True, inline=True)
    def call(self, meta, func, *args):
        args = tuple(a for a in args if a is not None)
        return n.Call(n.Name(func.value, _span(self.file, func)), args, self._at(meta))

    @v_args(meta=True, inline=True)
    def set_lit(self, meta, *items):
        return n.SetLit(tuple(i for i in items if i is not None), self._at(meta))

    @v_args(meta=True, inline=True)
    def attr(self, meta, obj, name):
        return n.Attr(obj, self._name(name), self._at(meta))

    @v_args(meta=True, inline=True)
    def or_op(self, meta, left, right):
        return n.Binary("or", left, right, self._at(meta))

    @v_args(meta=True, inline=True)
    def and_op(self, meta, left, right):
        return n.Binary("and", left, right, self._at(meta))

    @v_args(meta=True, inline=True)
    def not_op(self, meta, operand):
        return n.Unary("not", operand, self._at(meta))

    @v_args(meta=True, inline=True)
    def neg_op(self, meta, _minus, operand):
        return n.Unary("-", operand, self._at(meta))

    @v_args(meta=True, inline=True)
    def compare(self, meta, left, op, right):
        return n.Binary(op.value, left, right, _span(self.file, op))

    @v_args(meta=True, inline=True)
    def set_op(self, meta, left, op, right):
        return n.Binary(op.value, left, right, _span(self.file, op))

    @v_args(meta=True, inline=True)
    def arith(self, meta, left, op, right):
        return n.Binary(op.value, left, right, _span(self.file, op))

    @v_args(meta=True, inline=True)
    def like_op(self, meta, left, right):
        return n.Binary("like", left, right, self._at(meta))

    @v_args(meta=True, inline=True)
    def has_op(self, meta, obj, name):
        return n.Has(obj, self._name(name), self._at(meta))

    @v_args(meta=True, inline=True)
    def is_op(self, meta, obj, role):
        return n.Is(obj, self._name(role), self._at(meta))

    @v_args(meta=True, inline=True)
    def owns_op(self, meta, left, right):
        return n.Owns(left, right, self._at(meta))


def _depth(tree: Tree) -> tuple[int, Tree | Token | None]:
    """The deepest nesting of the parse tree, found without recursion."""
    deepest, where, stack = 0, None, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > deepest:
            deepest, where = depth, node
        if isinstance(node, Tree):
            stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))
    return deepest, where


def parse(text: str, file: str = "<policy>") -> n.PolicyFile:
    """Parse one policy file; raises PolicyError with one diagnostic on a syntax error."""
    try:
        tree = lark_parser().parse(text)
    except UnexpectedInput as exc:
        raise PolicyError([_syntax_diagnostic(exc, text, file)], {file: text}) from None
    depth, where = _depth(tree)
    if depth > MAX_DEPTH + 8:  # declarations and rules take a few levels of their own
        meta = getattr(where, "meta", None)
        raise PolicyError([Diagnostic(
            "E002", f"expression nested too deeply (at most {MAX_DEPTH} levels)", file,
            getattr(meta, "line", 1), getattr(meta, "column", 1),
            "split the condition with a named constant or several rules")], {file: text})
    return n.PolicyFile(file, _ToAst(file).transform(tree))


def _syntax_diagnostic(exc: UnexpectedInput, text: str, file: str) -> Diagnostic:
    token = getattr(exc, "token", None)
    if isinstance(exc, UnexpectedEOF) or (token is not None and token.type == "$END"):
        lines = text.splitlines() or [""]
        line, column = len(lines), len(lines[-1]) + 1
    else:
        line, column = exc.line or 1, exc.column or 1
    message, hint = describe_syntax_error(exc, text, lark_parser())
    code = "E003" if isinstance(exc, UnexpectedCharacters) else "E004"
    return Diagnostic(code, message, file, max(line, 1), max(column, 1), hint)
