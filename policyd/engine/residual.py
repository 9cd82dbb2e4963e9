"""Residual conditions: the tree a query plan leaves over a resource's attributes.

A residual is a tree of three node types: `Attr` (a resource attribute path), `Value`
(a literal, in the runtime representation) and `Expr` (a closed set of operators, see
docs/plans.md). The builders here (`conj`, `disj`, `negate`, `truthy`, `falsy`) keep
constant subtrees out of it; the JSON form is what a client gets over the wire.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

from ..values import format_ip, format_time, parse_ip, parse_time


class Node:
    """A residual node (Attr, Value or Expr)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Attr(Node):
    path: tuple[str, ...]
    type: str

    @property
    def name(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True, slots=True)
class Value(Node):
    value: Any  # runtime representation: ip tuple, epoch float, frozenset for sets
    type: str


@dataclass(frozen=True, slots=True)
class Expr(Node):
    op: str
    args: tuple


def _quick_init(cls, *names):
    """A frozen node's __init__ through its slots' own setters: the frozen dataclass's
    __init__ goes through object.__setattr__ per field, and plans build many nodes."""
    a, b = (cls.__dict__[n].__set__ for n in names)

    def __init__(self, x, y):
        a(self, x)
        b(self, y)
    cls.__init__ = __init__


_quick_init(Attr, "path", "type")
_quick_init(Value, "value", "type")
_quick_init(Expr, "op", "args")

OPERATORS = (
    "and", "or", "not", "eq", "ne", "lt", "le", "gt", "ge", "in", "contains",
    "contains_any", "contains_all", "set_eq", "like", "has", "has_key", "get",
    "get_or_empty", "field", "add", "sub", "mul", "neg", "len", "set_len", "lower", "hour",
    "weekday", "ip_in", "ip_in_any",
)


# ---- simplification: what keeps constant subtrees out of a residual -------------

# A condition whose arithmetic gave no finite number for every resource: Kleene's
# unknown (language/kleene.py). It never stays in a finished residual: `truthy` and
# `falsy` push it out (an unknown is never true, and never false).
UNKNOWN = Value(None, "bool")

def _joined(parts: list, op: str, unit: bool) -> object:
    """`op` over parts that are True, False or residuals: `unit` parts drop out, the
    other constant decides, nested same-op nodes are flattened."""
    out = []
    for p in parts:
        if p is unit or p is UNKNOWN and UNKNOWN in out:
            continue
        if p is (not unit):
            return not unit
        if isinstance(p, Expr) and p.op == op:
            out.extend(p.args)
        else:
            out.append(p)
    return unit if not out else out[0] if len(out) == 1 else Expr(op, tuple(out))


def conj(parts: list) -> object:
    return _joined(parts, "and", True)


def disj(parts: list) -> object:
    return _joined(parts, "or", False)


_OPPOSITE = {"eq": "ne", "ne": "eq", "lt": "ge", "ge": "lt", "gt": "le", "le": "gt"}


def negate(p) -> object:
    """`not p`; a negated comparison is the opposite comparison (values are never NaN;
    an unknown one stays unknown, as its negation is)."""
    if type(p) is bool:
        return not p
    if p is UNKNOWN:
        return p
    if isinstance(p, Expr):
        if p.op == "not":
            return p.args[0]
        if p.op in _OPPOSITE:
            return Expr(_OPPOSITE[p.op], p.args)
    return Expr("not", (p,))


def truthy(p) -> object:
    """A condition that is true exactly where `p` is true, with no UNKNOWN left in it:
    what a rule needs to hold, and what a residual must be for a row to be selected.
    A tree without UNKNOWN comes back as the same object (plans call this on each)."""
    if p is UNKNOWN:
        return False
    if type(p) is Expr:
        op = p.op
        if op == "and" or op == "or":
            args = p.args
            out = [truthy(a) for a in args]
            if all(map(operator.is_, out, args)):
                return p
            return conj(out) if op == "and" else disj(out)
        if op == "not":
            inner = p.args[0]
            f = falsy(inner)
            return p if type(f) is Expr and f.op == "not" and f.args[0] is inner else f
    return p


def falsy(p) -> object:
    """A condition that is true exactly where `p` is false (an unknown is not false)."""
    if p is UNKNOWN:
        return False
    if type(p) is bool:
        return not p
    if isinstance(p, Expr):
        if p.op == "and":
            return disj([falsy(a) for a in p.args])
        if p.op == "or":
            return conj([falsy(a) for a in p.args])
        if p.op == "not":
            return truthy(p.args[0])
    return negate(p)


# ---- the JSON form ---------------------------------------------------------------


def json_value(value: Any, t: str) -> Any:
    """A runtime value as JSON: ips and times as their text, sets as sorted lists."""
    if t == "ip":
        return format_ip(value)
    if t == "time":
        return format_time(value)
    if t.startswith("set<"):
        inner = t[4:-1] or "string"
        return sorted((json_value(v, inner) for v in value), key=lambda v: (str(type(v)), v))
    if t.startswith("map<"):
        inner = t[len("map<string, "):-1]
        return {k: json_value(v, inner) for k, v in sorted(value.items())}
    if isinstance(value, dict):
        return dict(value)
    return value


def to_json(node: Node) -> dict:
    if isinstance(node, Attr):
        return {"attr": node.name, "type": node.type}
    if isinstance(node, Value):
        return {"value": json_value(node.value, node.type), "type": node.type}
    return {"op": node.op, "args": [to_json(a) for a in node.args]}


def _from_json_value(value: Any, t: str) -> Any:
    if t == "ip":
        return parse_ip(value)
    if t == "time":
        return parse_time(value)
    if t.startswith("set<"):
        return frozenset(_from_json_value(v, t[4:-1] or "string") for v in value)
    if t.startswith("map<"):
        inner = t[len("map<string, "):-1]
        return {k: _from_json_value(v, inner) for k, v in value.items()}
    return value


def from_json(tree: dict) -> Node:
    """The nodes of a JSON tree (what a client gets over the wire); raises ValueError for
    anything that is not one."""
    if not isinstance(tree, dict):
        raise ValueError("a plan condition node is an object")
    if "attr" in tree:
        return Attr(tuple(str(tree["attr"]).split(".")), str(tree.get("type", "")))
    if "value" in tree:
        t = str(tree.get("type", ""))
        return Value(_from_json_value(tree["value"], t), t)
    if tree.get("op") not in OPERATORS:
        raise ValueError(f"unknown plan operator {tree.get('op')!r}")
    return Expr(tree["op"], tuple(from_json(a) for a in tree.get("args", ())))
