"""Policy text to AST: lark (LALR) with the grammar shaping the tree, a thin transformer.

Syntax errors become `Diagnostic`s with readable expectations; lark's own
exception text never reaches a policy author.
"""

from __future__ import annotations

import functools
import json
import threading
from importlib import resources
from pathlib import Path

from lark import Lark, Token, Transformer, UnexpectedInput, v_args
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
    """The LALR parser with the transformer applied at each reduction: no parse tree is
    built and nothing recurses, however deep the input nests."""
    return Lark(grammar_text(), parser="lalr", lexer="basic", maybe_placeholders=True,
                transformer=ToAst())


class Malformed(Exception):
    """Raised by a transformer method for text that parses but cannot mean anything."""

    def __init__(self, span: n.Span, code: str, message: str, hint: str | None = None):
        super().__init__(message)
        self.diagnostic = Diagnostic(code, message, span.file, span.line, span.column, hint)


_current = threading.local()  # the file being parsed: one parser is shared by all threads


def span_of(tok: Token) -> n.Span:
    return n.Span(_current.file, tok.line or 1, tok.column or 1)


def name_of(tok: Token) -> n.Name:
    return n.Name(tok.value, span_of(tok))


def number_of(tok: Token) -> int | float:
    return float(tok.value) if "." in tok.value else int(tok.value)


def seconds_of(duration: Token) -> float:
    text = duration.value
    return float(text[:-1]) * DURATION_UNITS[text[-1]]



def _depth(node) -> int:
    return _current.depth.get(id(node), 1)


def _nested(node, *children):
    """Record an expression's depth; refuse what generated Python could not nest."""
    depth = 1 + max((_depth(c) for c in children), default=0)
    if depth > MAX_DEPTH:
        raise Malformed(node.span, "E002", f"expression nested too deeply (at most {MAX_DEPTH} "
                        "levels)", "split the condition with a named constant or several rules")
    if depth > 1:
        _current.depth[id(node)] = depth
        _current.keep.append(node)  # ids stay unique while the parse lasts
    return node


@v_args(inline=True)
class ToAst(Transformer):
    """Thin: each method builds one node from its children; spans come from tokens."""

    # declarations
    def start(self, *decls):
        return tuple(decls)

    def principal_decl(self, _kw, name, *attrs):
        return n.PrincipalDecl(name_of(name), tuple(attrs), span_of(name))

    def context_decl(self, kw, *attrs):
        return n.ContextDecl(tuple(attrs), span_of(kw))

    def attr_decl(self, name, optional, type_ref, sensitive):
        return n.AttrDecl(name_of(name), type_ref, optional is not None, sensitive is not None,
                          span_of(name))

    def type_ref(self, name, _lt, arg, _gt):
        return n.TypeRef(name_of(name), name_of(arg) if arg is not None else None, span_of(name))

    def role_decl(self, name, parents):
        return n.RoleDecl(name_of(name), parents or (), span_of(name))

    def name_list(self, *names):
        return tuple(name_of(t) for t in names)

    def owner(self, name):
        return name_of(name)

    def actions_decl(self, names):
        return ("actions", names)

    def resource_decl(self, _kw, name, owner, *members):
        attrs = tuple(m for m in members if isinstance(m, n.AttrDecl))
        actions = tuple(a for m in members if isinstance(m, tuple) for a in m[1])
        return n.ResourceDecl(name_of(name), owner, attrs, actions, span_of(name))

    def const_decl(self, name, value):
        return n.ConstDecl(name_of(name), value, span_of(name))

    def policy_decl(self, name, resource, *rules):
        return n.PolicyDecl(name_of(name), name_of(resource), tuple(rules), span_of(name))

    # rules
    def label(self, name):
        return name_of(name)

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
        return number_of(number)

    def expr_list(self, *exprs):
        return tuple(exprs)

    def limit_rule(self, limit, targets, count, duration, burst, keys, condition):
        spec = n.LimitSpec(number_of(count), seconds_of(duration), duration.value, burst, keys)
        return ("limit", targets, condition, spec, limit)

    def rule(self, label, body):
        effect, targets, (when, unless), spec, keyword = body
        span = label.span if label is not None else span_of(keyword)
        return n.Rule(label, effect, targets, when, unless, spec, span)

    # expressions
    def string(self, tok):
        return n.Literal(json.loads(tok.value), span_of(tok))

    def number(self, tok):
        return n.Literal(number_of(tok), span_of(tok))

    def true(self, tok):
        return n.Literal(True, span_of(tok))

    def false(self, tok):
        return n.Literal(False, span_of(tok))

    def root(self, tok):
        return n.Root(tok.value, span_of(tok))

    def name(self, tok):
        name = name_of(tok)
        return n.ConstRef(name, name.span)

    def call(self, func, *args):
        args = tuple(a for a in args if a is not None)
        return _nested(n.Call(name_of(func), args, span_of(func)), *args)

    def set_lit(self, bracket, *items):
        items = tuple(i for i in items if i is not None)
        return _nested(n.SetLit(items, span_of(bracket)), *items)

    def attr(self, obj, name):
        return _nested(n.Attr(obj, name_of(name), obj.span), obj)

    def or_op(self, left, right):
        return _nested(n.Binary("or", left, right, left.span), left, right)

    def and_op(self, left, right):
        return _nested(n.Binary("and", left, right, left.span), left, right)

    def not_op(self, kw, operand):
        return _nested(n.Unary("not", operand, span_of(kw)), operand)

    def neg_op(self, minus, operand):
        return _nested(n.Unary("-", operand, span_of(minus)), operand)

    def compare(self, left, op, right):
        return _nested(n.Binary(op.value, left, right, span_of(op)), left, right)

    set_op = compare
    arith = compare

    def like_op(self, left, right):
        return _nested(n.Binary("like", left, right, left.span), left, right)

    def has_op(self, obj, name):
        return _nested(n.Has(obj, name_of(name), obj.span), obj)

    def is_op(self, obj, role):
        return _nested(n.Is(obj, name_of(role), obj.span), obj)

    def owns_op(self, left, right):
        return _nested(n.Owns(left, right, left.span), left, right)


def parse(text: str, file: str = "<policy>") -> n.PolicyFile:
    """Parse one policy file; raises PolicyError with one diagnostic on a syntax error."""
    return n.PolicyFile(file, run_parser(lark_parser(), text, file, "policy"))


def run_parser(parser: Lark, text: str, file: str, kind: str):
    """Run one of the grammar's parsers (policy or test files) with syntax errors and
    excessive nesting turned into diagnostics."""
    _current.file, _current.depth, _current.keep = file, {}, []
    try:
        return parser.parse(text)
    except UnexpectedInput as exc:
        raise PolicyError([_syntax_diagnostic(exc, text, file, parser, kind)], {file: text}
                          ) from None
    except Malformed as exc:
        raise PolicyError([exc.diagnostic], {file: text}) from None
    finally:
        _current.depth, _current.keep = {}, []


def _syntax_diagnostic(exc: UnexpectedInput, text: str, file: str, parser: Lark,
                       kind: str) -> Diagnostic:
    token = getattr(exc, "token", None)
    if isinstance(exc, UnexpectedEOF) or (token is not None and token.type == "$END"):
        lines = text.splitlines() or [""]
        line, column = len(lines), len(lines[-1]) + 1
    else:
        line, column = exc.line or 1, exc.column or 1
    message, hint = describe_syntax_error(exc, text, parser, kind)
    code = "E003" if isinstance(exc, UnexpectedCharacters) else "E004"
    return Diagnostic(code, message, file, max(line, 1), max(column, 1), hint)
