"""Type checking of expressions and their lowering to the typed IR.

`has` guards are flow-sensitive: a read of an optional attribute checks only
when a `has` test guards it on every path (through and, or, not, unless).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .. import values
from . import nodes as n
from .checked import IR, ActionName, Const, Op, Read
from .diagnostics import Diagnostic, did_you_mean
from .schema import (
    BOOL,
    EMPTY_SET,
    ERROR,
    IP,
    NUMBER,
    STRING,
    TIME,
    EntitySchema,
    compatible,
    is_set,
    set_of,
)

Facts = frozenset  # of (entity, attr) pairs known to be present
IMPLICIT = {"id": STRING, "type": STRING}
_COMPARE = {"==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
_ARITH = {"+": "add", "-": "sub", "*": "mul"}


@dataclass
class Scope:
    """What names mean inside one rule (or one constant, where nothing is in scope)."""

    principals: dict[str, EntitySchema]
    resource: EntitySchema | None
    context: EntitySchema | None
    roles: dict[str, frozenset[str]]
    constants: dict[str, Const]
    report: Callable[..., None]
    const_only: bool = False
    warned: set = field(default_factory=set)


def literal_value(value) -> Const:
    if isinstance(value, bool):
        return Const(value, BOOL)
    if isinstance(value, int | float):
        return Const(value, NUMBER)
    return Const(value, STRING)


class ExprChecker:
    def __init__(self, scope: Scope):
        self.s = scope

    def error(self, span: n.Span, code: str, message: str, hint: str | None = None) -> IR:
        self.s.report(Diagnostic.at(span, code, message, hint))
        return Const(None, ERROR)

    # ---- entry points ----------------------------------------------------------

    def condition(self, when: n.Expr | None, unless: n.Expr | None) -> IR | None:
        """`when W unless U` is `W and not U`; U is checked knowing W held."""
        parts, facts = [], Facts()
        if when is not None:
            w = self.bool_expr(when, facts)
            parts.append(w)
            facts = facts | self.pos(when)
        if unless is not None:
            parts.append(Op("not", (self.bool_expr(unless, facts),), BOOL))
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else Op("and", tuple(parts), BOOL)

    def bool_expr(self, e: n.Expr, facts: Facts) -> IR:
        ir = self.expr(e, facts)
        if ir.type not in (BOOL, ERROR):
            return self.error(e.span, "E301", f"a condition must be a bool, found {ir.type}")
        return ir

    # ---- guard facts -----------------------------------------------------------

    def pos(self, e: n.Expr) -> Facts:
        """Attributes known present when `e` is true."""
        if isinstance(e, n.Has) and isinstance(e.obj, n.Root):
            return Facts({(e.obj.name, e.name.value)})
        if isinstance(e, n.Binary) and e.op == "and":
            return self.pos(e.left) | self.pos(e.right)
        if isinstance(e, n.Binary) and e.op == "or":
            return self.pos(e.left) & self.pos(e.right)
        if isinstance(e, n.Unary) and e.op == "not":
            return self.neg(e.operand)
        return Facts()

    def neg(self, e: n.Expr) -> Facts:
        """Attributes known present when `e` is false."""
        if isinstance(e, n.Binary) and e.op == "and":
            return self.neg(e.left) & self.neg(e.right)
        if isinstance(e, n.Binary) and e.op == "or":
            return self.neg(e.left) | self.neg(e.right)
        if isinstance(e, n.Unary) and e.op == "not":
            return self.pos(e.operand)
        return Facts()

    # ---- expressions -----------------------------------------------------------

    def expr(self, e: n.Expr, facts: Facts) -> IR:
        method = getattr(self, "_" + type(e).__name__.lower())
        return method(e, facts)

    def _literal(self, e: n.Literal, facts) -> IR:
        return literal_value(e.value)

    def _setlit(self, e: n.SetLit, facts) -> IR:
        items = [self.expr(i, facts) for i in e.items]
        if any(i.type == ERROR for i in items):
            return Const(None, ERROR)
        for item, node in zip(items, e.items, strict=True):
            if not isinstance(item, Const) or is_set(item.type):
                return self.error(node.span, "E302", "set items must be literal values",
                                  "sets are written as literals: [\"a\", \"b\"]")
        types = {i.type for i in items}
        if len(types) > 1:
            return self.error(e.span, "E303", "set items must all have one type, found "
                              + " and ".join(sorted(types)))
        elem = types.pop() if types else None
        return Const(frozenset(i.value for i in items), set_of(elem) if elem else EMPTY_SET)

    def _root(self, e: n.Root, facts) -> IR:
        if self.s.const_only:
            return self.error(e.span, "E304", "a constant's value must be a literal")
        if e.name == "action":
            return ActionName()
        return self.error(e.span, "E305", f"`{e.name}` is not a value by itself",
                          f"read one of its attributes, like `{e.name}.id`")

    def _constref(self, e: n.ConstRef, facts) -> IR:
        name = e.name.value
        if name in self.s.constants:
            return self.s.constants[name]
        hint = did_you_mean(name, self.s.constants) or self._owner_hint(name)
        return self.error(e.span, "E306", f"unknown name `{name}`", hint)

    def _owner_hint(self, name: str) -> str | None:
        owner = None if self.s.const_only else self._attr_owner(name)
        return f"did you mean `{owner}.{name}`?" if owner else None

    def _attr_owner(self, name: str) -> str | None:
        if self.s.resource and name in self.s.resource.by_name:
            return "resource"
        if any(name in p.by_name for p in self.s.principals.values()):
            return "principal"
        if self.s.context and name in self.s.context.by_name:
            return "context"
        return None

    def _attr(self, e: n.Attr, facts) -> IR:
        if not isinstance(e.obj, n.Root) or e.obj.name == "action":
            return self.error(e.span, "E307", f"`.{e.name.value}`: only principal, resource "
                              "and context have attributes", self._owner_hint(e.name.value))
        if self.s.const_only:
            return self.error(e.span, "E304", "a constant's value must be a literal")
        entity, attr = e.obj.name, e.name.value
        found = self.lookup(entity, attr, e.name.span)
        if found is None:
            return Const(None, ERROR)
        typ, optional = found
        if optional and (entity, attr) not in facts:
            return self.error(e.span, "E308", f"`{entity}.{attr}` is optional and may be absent",
                              f"guard the read: `{entity} has {attr} and ...`")
        return Read(entity, attr, typ)

    def lookup(self, entity: str, attr: str, span: n.Span) -> tuple[str, bool] | None:
        """(type, optional) of an attribute read through principal/resource/context."""
        if attr in IMPLICIT and entity != "context":
            return IMPLICIT[attr], False
        if entity == "principal":
            specs = [(p.name, p.by_name.get(attr)) for p in self.s.principals.values()]
            declared = [(name, a) for name, a in specs if a is not None]
            if not declared:
                self._unknown_attr(entity, attr, span,
                                   {a for p in self.s.principals.values() for a in p.by_name})
                return None
            types = {a.type for _, a in declared}
            if len(types) > 1:
                listed = ", ".join(f"{name} ({a.type})" for name, a in declared)
                self.error(span, "E309", f"`principal.{attr}` has different types on different "
                           f"principal types: {listed}")
                return None
            optional = len(declared) < len(specs) or any(a.optional for _, a in declared)
            return types.pop(), optional
        schema = self.s.resource if entity == "resource" else self.s.context
        if schema is None:
            self.error(span, "E310", "no `context` block declares context attributes")
            return None
        spec = schema.by_name.get(attr)
        if spec is None:
            self._unknown_attr(entity, attr, span, schema.by_name)
            return None
        return spec.type, spec.optional

    def _unknown_attr(self, entity, attr, span, names) -> None:
        owner = self.s.resource.name if entity == "resource" and self.s.resource else entity
        self.error(span, "E311", f"`{owner}` declares no attribute `{attr}`",
                   did_you_mean(attr, names))

    def _call(self, e: n.Call, facts) -> IR:
        name = e.func.value
        arity = {"ip": 1, "time": 1, "hour": 1, "weekday": 1, "len": 1, "lower": 1}
        if name not in arity:
            return self.error(e.func.span, "E312", f"unknown function `{name}`",
                              did_you_mean(name, arity))
        if len(e.args) != arity[name]:
            return self.error(e.span, "E313", f"`{name}` takes {arity[name]} argument, "
                              f"found {len(e.args)}")
        if name in ("ip", "time"):
            return self._typed_literal(name, e.args[0])
        arg = self.expr(e.args[0], facts)
        if arg.type == ERROR:
            return arg
        want = {"hour": (TIME,), "weekday": (TIME,), "lower": (STRING,), "len": (STRING, "set")}
        ok = arg.type in want[name] or ("set" in want[name] and is_set(arg.type))
        if not ok:
            return self.error(e.args[0].span, "E314", f"`{name}` takes "
                              f"{' or '.join(want[name])}, found {arg.type}")
        op = "set_len" if name == "len" and is_set(arg.type) else name
        result = STRING if name == "lower" else NUMBER
        return Op(op, (arg,), result)

    def _typed_literal(self, name: str, arg: n.Expr) -> IR:
        if not isinstance(arg, n.Literal) or not isinstance(arg.value, str):
            return self.error(arg.span, "E315", f"`{name}(...)` takes a string literal")
        try:
            if name == "ip":
                return Const(values.parse_ip(arg.value), IP)
            return Const(values.parse_time(arg.value), TIME)
        except ValueError as exc:
            what = "an IPv4/IPv6 address or CIDR range" if name == "ip" else \
                "an RFC 3339 time such as \"2026-01-01T00:00:00Z\""
            return self.error(arg.span, "E316", f"invalid {name} literal {arg.value!r}: {exc}",
                              f"write {what}")

    def _unary(self, e: n.Unary, facts) -> IR:
        if e.op == "not":
            return Op("not", (self.bool_operand(e.operand, facts, "not"),), BOOL)
        arg = self.expr(e.operand, facts)
        if arg.type not in (NUMBER, ERROR):
            return self.error(e.span, "E317", f"`-` takes a number, found {arg.type}")
        if isinstance(arg, Const) and arg.type == NUMBER:
            return Const(-arg.value, NUMBER)
        return Op("neg", (arg,), NUMBER)

    def bool_operand(self, e: n.Expr, facts: Facts, op: str) -> IR:
        ir = self.expr(e, facts)
        if ir.type not in (BOOL, ERROR):
            return self.error(e.span, "E318", f"`{op}` takes bools, found {ir.type}")
        return ir

    def _binary(self, e: n.Binary, facts) -> IR:
        if e.op in ("and", "or"):
            left = self.bool_operand(e.left, facts, e.op)
            more = self.pos(e.left) if e.op == "and" else self.neg(e.left)
            right = self.bool_operand(e.right, facts | more, e.op)
            return Op(e.op, (left, right), BOOL)
        left, right = self.expr(e.left, facts), self.expr(e.right, facts)
        if ERROR in (left.type, right.type):
            return Const(None, ERROR)
        if e.op in _COMPARE:
            return self._compare(e, left, right)
        if e.op in _ARITH:
            if left.type != NUMBER or right.type != NUMBER:
                return self.error(e.span, "E319", f"`{e.op}` takes numbers, found "
                                  f"{left.type} and {right.type}")
            return Op(_ARITH[e.op], (left, right), NUMBER)
        if e.op == "like":
            return self._like(e, left, right)
        return self._set_test(e, left, right)

    def _compare(self, e: n.Binary, left: IR, right: IR) -> IR:
        op = _COMPARE[e.op]
        if op in ("eq", "ne"):
            if not compatible(left.type, right.type):
                return self.error(e.span, "E320", f"cannot compare {left.type} with {right.type}")
            self._check_action_literal(left, right, e.span)
            if is_set(left.type):
                op = "set_" + op
            return Op(op, (left, right), BOOL)
        if left.type != right.type or left.type not in (NUMBER, TIME):
            return self.error(e.span, "E321", f"`{e.op}` takes two numbers or two times, found "
                              f"{left.type} and {right.type}")
        return Op(op, (left, right), BOOL)

    def _check_action_literal(self, left: IR, right: IR, span: n.Span) -> None:
        """`action == "refnd"` can never hold: name the declared actions instead."""
        if not isinstance(left, ActionName) or self.s.resource is None:
            return
        values = right.value if isinstance(right, Const) and is_set(right.type) else \
            [right.value] if isinstance(right, Const) else []
        for value in values:
            if value not in self.s.resource.actions:
                self.error(span, "E322", f"`{self.s.resource.name}` declares no action "
                           f"{value!r}", did_you_mean(str(value), self.s.resource.actions))

    def _like(self, e: n.Binary, left: IR, right: IR) -> IR:
        if left.type != STRING:
            return self.error(e.left.span, "E323", f"`like` takes a string, found {left.type}")
        if not isinstance(right, Const) or right.type != STRING:
            return self.error(e.right.span, "E324", "the pattern of `like` must be a string "
                              "literal", "write the pattern in quotes: s like \"*.example.com\"")
        return Op("like", (left,), BOOL, tuple(right.value.split("*")))

    def _set_test(self, e: n.Binary, left: IR, right: IR) -> IR:
        if e.op == "contains":
            left, right = right, left  # S contains x  is  x in S
        if e.op in ("in", "contains"):
            if left.type == IP and right.type == IP:
                return Op("ip_in", (left, right), BOOL)
            if left.type == IP and right.type in (set_of(IP), EMPTY_SET):
                return Op("ip_in_any", (left, right), BOOL)
            if is_set(right.type) and compatible(set_of(left.type), right.type) \
                    and not is_set(left.type):
                self._check_action_literal(left, right, e.span)
                return Op("in", (left, right), BOOL)
            shown = f"{right.type} contains {left.type}" if e.op == "contains" else \
                f"{left.type} in {right.type}"
            return self.error(e.span, "E325", f"`{e.op}` needs an element and a set of that "
                              f"type, found {shown}")
        if is_set(left.type) and is_set(right.type) and compatible(left.type, right.type):
            return Op("any_of" if e.op == "contains_any" else "all_of", (left, right), BOOL)
        return self.error(e.span, "E326", f"`{e.op}` takes two sets of one type, found "
                          f"{left.type} and {right.type}")

    def _has(self, e: n.Has, facts) -> IR:
        if not isinstance(e.obj, n.Root) or e.obj.name == "action":
            return self.error(e.span, "E327", "`has` tests principal, resource or context")
        entity, attr = e.obj.name, e.name.value
        if self.lookup(entity, attr, e.name.span) is None:
            return Const(None, ERROR)
        if attr in IMPLICIT and entity != "context":
            return Const(True, BOOL)
        return Op("has", (), BOOL, (entity, attr))

    def _is(self, e: n.Is, facts) -> IR:
        if not (isinstance(e.obj, n.Root) and e.obj.name == "principal"):
            return self.error(e.span, "E328", "`is` tests a role of `principal`",
                              f"write `principal is {e.role.value}`")
        role = e.role.value
        if role not in self.s.roles:
            return self.error(e.role.span, "E329", f"unknown role `{role}`",
                              did_you_mean(role, self.s.roles))
        return Op("is", (), BOOL, self.s.roles[role])

    def _owns(self, e: n.Owns, facts) -> IR:
        ok = isinstance(e.left, n.Root) and e.left.name == "principal" and \
            isinstance(e.right, n.Root) and e.right.name == "resource"
        if not ok:
            return self.error(e.span, "E330", "ownership is written `principal owns resource`")
        res = self.s.resource
        if res is None or res.owner is None:
            name = res.name if res else "this type"
            return self.error(e.span, "E331", f"`{name}` has no owner",
                              f"declare one: `resource {name} owned by ATTR {{ ... }}`")
        owner_type = res.by_name[res.owner].type
        return Op("owns", (), BOOL, (res.owner, is_set(owner_type)))
