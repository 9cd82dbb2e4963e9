"""Policy text to AST: the grammar shapes the tree, this thin transformer builds nodes.

Syntax errors become `Diagnostic`s with readable expectations (frontend.py);
lark's own exception text never reaches a policy author.
"""

from __future__ import annotations

import functools
import json

from lark import Token, v_args

from . import nodes as n
from .frontend import Frontend, SpanTransformer


@v_args(inline=True)
class ToAst(SpanTransformer):
    """Thin: each method builds one node from its children; spans come from tokens."""

    # declarations
    def start(self, *decls):
        return tuple(decls)

    def principal_decl(self, _kw, name, parents, stored, *attrs):
        return n.PrincipalDecl(self.name_of(name), nodes(attrs), self.span_of(name),
                               parents or (), stored is not None)

    def entity_decl(self, _kw, name, parents, _stored, body):
        return n.EntityDecl(self.name_of(name), parents or (), body or (), self.span_of(name))

    def entity_body(self, *attrs):
        return nodes(attrs)

    def parents(self, _kw, names):
        return names

    def condition_decl(self, _kw, name, value):
        return n.ConditionDecl(self.name_of(name), value, self.span_of(name))

    def context_decl(self, kw, *attrs):
        return n.ContextDecl(nodes(attrs), self.span_of(kw))

    def attr_decl(self, name, optional, type_ref, *flags):
        words = [f.value for f in flags]
        return n.AttrDecl(self.name_of(name), type_ref, optional is not None,
                          "sensitive" in words, self.span_of(name), "stored" in words)

    def attr_flag(self, word):
        return word

    def type_ref(self, name, _lt=None, *args):
        args = tuple(a for a in args if isinstance(a, n.TypeRef))
        return n.TypeRef(self.name_of(name), args, self.span_of(name))

    def record_decl(self, _kw, name, *attrs):
        return n.RecordDecl(self.name_of(name), nodes(attrs), self.span_of(name))

    def route(self, method, path, _arrow, action):
        return n.Route(self.name_of(method), path.value, self.span_of(path),
                       self.name_of(action), self.span_of(method))

    def routes_decl(self, kw, resource, *routes):
        return n.RoutesDecl(self.name_of(resource), nodes(routes), self.span_of(kw))

    def role_decl(self, name, parents):
        return n.RoleDecl(self.name_of(name), parents or (), self.span_of(name))

    def name_list(self, *names):
        return tuple(self.name_of(t) for t in names)

    def owner(self, name):
        return self.name_of(name)

    def actions_decl(self, names):
        return ("actions", names)

    def resource_decl(self, _kw, name, parents, owner, stored, *members):
        attrs = tuple(m for m in members if isinstance(m, n.AttrDecl))
        actions = tuple(a for m in members if isinstance(m, tuple) for a in m[1])
        return n.ResourceDecl(self.name_of(name), owner, attrs, actions, self.span_of(name),
                              parents or (), stored is not None)

    def const_decl(self, name, value):
        return n.ConstDecl(self.name_of(name), value, self.span_of(name))

    def policy_decl(self, name, resource, *members):
        members = nodes(members)
        return n.PolicyDecl(self.name_of(name), self.name_of(resource),
                            tuple(m for m in members if isinstance(m, n.Rule)),
                            self.span_of(name),
                            tuple(m for m in members if isinstance(m, n.ConditionDecl)))

    # rules
    def label(self, name):
        return self.name_of(name)

    def targets(self, item):
        return None if isinstance(item, Token) else item

    def target_list(self, *targets):
        return targets

    def target(self, *names):
        first = self.name_of(names[0])
        return first if len(names) == 1 else \
            n.Name(".".join(str(t) for t in names), first.span)

    def when(self, expr):
        return expr

    def unless(self, expr):
        return expr

    def condition(self, when, unless):
        return (when, unless)

    def effect_rule(self, effect, targets, condition, output):
        return (effect.value, targets, condition, None, effect, output or ())

    def output(self, _kw, *fields):
        return nodes(fields)

    def output_field(self, key, value):
        return n.OutputField(self.name_of(key), value)

    def burst(self, number):
        return self.number_of(number)

    def expr_list(self, *exprs):
        return tuple(exprs)

    def limit_rule(self, limit, targets, count, duration, burst, keys, condition):
        spec = n.LimitSpec(self.number_of(count), self.seconds_of(duration), duration.value, burst, keys)
        return ("limit", targets, condition, spec, limit, ())

    def rule(self, label, body):
        effect, targets, (when, unless), spec, keyword, output = body
        span = label.span if label is not None else self.span_of(keyword)
        return n.Rule(label, effect, targets, when, unless, spec, span, output)

    # expressions
    def string(self, tok):
        return n.Literal(json.loads(tok.value), self.span_of(tok))

    def number(self, tok):
        return n.Literal(self.number_of(tok), self.span_of(tok))

    def true(self, tok):
        return n.Literal(True, self.span_of(tok))

    def false(self, tok):
        return n.Literal(False, self.span_of(tok))

    def root(self, tok):
        return n.Root(tok.value, self.span_of(tok))

    def name(self, tok):
        name = self.name_of(tok)
        return n.ConstRef(name, name.span)

    def call(self, func, *args):
        args = tuple(a for a in args if a is not None)
        return self.nested(n.Call(self.name_of(func), args, self.span_of(func)), *args)

    def set_lit(self, bracket, *items):
        items = tuple(i for i in items if i is not None)
        return self.nested(n.SetLit(items, self.span_of(bracket)), *items)

    def record_lit(self, brace, *fields):
        fields = nodes(fields)
        return self.nested(n.RecordLit(fields, self.span_of(brace)), *(f.value for f in fields))

    def record_field(self, name, value):
        key = json.loads(name.value) if name.type == "STRING" else name.value
        return n.RecordField(key, value, self.span_of(name))

    def index(self, obj, _bracket, key):
        return self.nested(n.Index(obj, key, obj.span), obj, key)

    def attr(self, obj, name):
        return self.nested(n.Attr(obj, self.name_of(name), obj.span), obj)

    def or_op(self, left, right):
        return self.nested(n.Binary("or", left, right, left.span), left, right)

    def and_op(self, left, right):
        return self.nested(n.Binary("and", left, right, left.span), left, right)

    def not_op(self, kw, operand):
        return self.nested(n.Unary("not", operand, self.span_of(kw)), operand)

    def neg_op(self, minus, operand):
        return self.nested(n.Unary("-", operand, self.span_of(minus)), operand)

    def compare(self, left, op, right):
        return self.nested(n.Binary(op.value, left, right, self.span_of(op)), left, right)

    set_op = compare
    arith = compare

    def like_op(self, left, right):
        return self.nested(n.Binary("like", left, right, left.span), left, right)

    def has_op(self, obj, name):
        return self.nested(n.Has(obj, self.name_of(name), obj.span), obj)

    def is_op(self, obj, role):
        return self.nested(n.Is(obj, self.name_of(role), obj.span), obj)

    def owns_op(self, left, right):
        return self.nested(n.Owns(left, right, left.span), left, right)


def nodes(items) -> tuple:
    """Children without the tokens lark keeps for named terminals (the `{` of a block)."""
    return tuple(i for i in items if i is not None and not isinstance(i, Token))


@functools.cache
def policy_frontend() -> Frontend:
    """The shared parser of policy files."""
    return Frontend("start", ToAst, "policy")


def parse(text: str, file: str = "<policy>") -> n.PolicyFile:
    """Parse one policy file; raises PolicyError with one diagnostic on a syntax error."""
    return n.PolicyFile(file, policy_frontend().parse(text, file))
