"""Type checking of calls, operators, comparisons, `like` and set tests: a mixin of the
expression checker (exprs.py), lowering each to one typed IR operator."""

from __future__ import annotations

from .. import values
from . import guards
from . import nodes as n
from .checked import IR, ActionName, Const, Op, Read
from .diagnostics import did_you_mean
from .guards import Facts
from .schema import (
    BOOL,
    EMPTY_SET,
    ERROR,
    IP,
    NUMBER,
    STRING,
    TIME,
    compatible,
    is_map,
    is_set,
    set_of,
)

_COMPARE = {"==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
_ARITH = {"+": "add", "-": "sub", "*": "mul"}


class OperatorChecks:
    def _call(self, e: n.Call, facts) -> IR:
        name = e.func.value
        arity = {"ip": 1, "time": 1, "hour": 1, "weekday": 1, "len": 1, "lower": 1}
        if name not in arity:
            found = self.entity_literal(e)  # `Group("eng")`: where the scope knows the types
            return found if found is not None else self.unknown_call(e)
        if len(e.args) != arity[name]:
            return self.error(e.span, "E313", f"`{name}` takes {arity[name]} argument, "
                              f"found {len(e.args)}")
        if name in ("ip", "time"):
            return self._typed_literal(name, e.args[0])
        arg = self.expr(e.args[0], facts)
        if arg.type == ERROR:
            return arg
        want = {"hour": (TIME,), "weekday": (TIME,), "lower": (STRING,),
                "len": (STRING, "set", "map")}
        ok = arg.type in want[name] or ("set" in want[name] and is_set(arg.type)) or \
            ("map" in want[name] and is_map(arg.type))
        if not ok:
            return self.error(e.args[0].span, "E314", f"`{name}` takes "
                              f"{' or '.join(want[name])}, found {arg.type}")
        op = "set_len" if name == "len" and is_set(arg.type) else \
            "len" if name == "len" else name
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
        if op in ("eq", "ne") and self.is_entity(left.type) and self.is_entity(right.type):
            return self.entity_compare(e, op, left, right)
        if op in ("eq", "ne") and (self.is_entity(left.type) or self.is_entity(right.type)):
            entity = e.left if self.is_entity(left.type) else e.right
            return self.error(e.span, "E320", f"cannot compare {left.type} with {right.type}",
                              f"compare ids (`{guards.canon(entity)}.id`), or two entities")
        if op in ("eq", "ne"):
            if not compatible(left.type, right.type):
                return self.error(e.span, "E320", f"cannot compare {left.type} with {right.type}",
                                  self._role_hint(e, left, right))
            self._check_action_literal(left, right, e.span)
            self._check_type_literal(left, right, e.span)
            self._check_type_literal(right, left, e.span)
            if is_set(left.type):
                op = "set_" + op
            return Op(op, (left, right), BOOL)
        if left.type != right.type or left.type not in (NUMBER, TIME):
            return self.error(e.span, "E321", f"`{e.op}` takes two numbers or two times, found "
                              f"{left.type} and {right.type}")
        return Op(op, (left, right), BOOL)

    @staticmethod
    def _role_hint(e: n.Binary, left: IR, right: IR) -> str | None:
        """`principal.roles == "admin"` means a role test."""
        types = {left.type, right.type}
        if types != {"set<string>", STRING}:
            return None
        lit = e.right if isinstance(e.right, n.Literal) else e.left
        role = lit.value if isinstance(lit, n.Literal) and isinstance(lit.value, str) else "ROLE"
        subject = e.left if isinstance(e.right, n.Literal) else e.right
        path = guards.canon(subject)
        return f"to test a role, write `{'principal' if path == 'principal.roles' else path} " \
            f"is {role}`"

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

    def _check_type_literal(self, left: IR, right: IR, span: n.Span) -> None:
        """`principal.type == "Clincian"` can never hold: name the declared types (1.2)."""
        if not (isinstance(left, Read) and left.path == ("type",) and
                left.entity in ("principal", "resource") and isinstance(right, Const)):
            return
        declared = list(self.s.principals) if left.entity == "principal" else \
            list(self.s.resources_all or ())
        values = right.value if is_set(right.type) else [right.value]
        for value in values:
            if isinstance(value, str) and value not in declared:
                self.error(span, "E340", f"no {left.entity} type is named `{value}`",
                           did_you_mean(value, declared) or "declared: " + ", ".join(declared))

    def _like(self, e: n.Binary, left: IR, right: IR) -> IR:
        if left.type != STRING:
            return self.error(e.left.span, "E323", f"`like` takes a string, found {left.type}")
        if not isinstance(right, Const) or right.type != STRING:
            return self.error(e.right.span, "E324", "the pattern of `like` must be a string "
                              "literal", "write the pattern in quotes: s like \"*.example.com\"")
        return Op("like", (left,), BOOL, tuple(right.value.split("*")))

    def _set_test(self, e: n.Binary, left: IR, right: IR) -> IR:
        if e.op == "in" and (self.is_entity(left.type) or self.is_entity(right.type) or
                             is_set(right.type) and self.is_entity(right.type[4:-1])):
            return self.entity_in(e, left, right)
        if e.op == "contains":
            left, right = right, left  # S contains x  is  x in S
            if is_set(right.type) and self.is_entity(right.type[4:-1]) and \
                    self.is_entity(left.type):
                return self.entity_member(e, left, right)
        if e.op == "in" and is_map(right.type):
            if left.type != STRING:
                return self.error(e.left.span, "E333", f"a map key is a string, found "
                                  f"{left.type}")
            return Op("has_key", (left, right), BOOL)
        if e.op in ("in", "contains"):
            if left.type == IP and right.type == IP:
                return Op("ip_in", (left, right), BOOL)
            if left.type == IP and right.type in (set_of(IP), EMPTY_SET):
                return Op("ip_in_any", (left, right), BOOL)
            if is_set(right.type) and compatible(set_of(left.type), right.type) \
                    and not is_set(left.type):
                self._check_action_literal(left, right, e.span)
                self._check_type_literal(left, right, e.span)
                return Op("in", (left, right), BOOL)
            shown = f"{right.type} contains {left.type}" if e.op == "contains" else \
                f"{left.type} in {right.type}"
            return self.error(e.span, "E325", f"`{e.op}` needs an element and a set of that "
                              f"type, found {shown}")
        if is_set(left.type) and is_set(right.type) and compatible(left.type, right.type):
            return Op("any_of" if e.op == "contains_any" else "all_of", (left, right), BOOL)
        return self.error(e.span, "E326", f"`{e.op}` takes two sets of one type, found "
                          f"{left.type} and {right.type}")

