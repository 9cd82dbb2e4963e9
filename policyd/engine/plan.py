"""Query plans: what is decided about a resource type before its rows are read, and the
residual condition (engine/residual.py) over the resource's attributes for the rest.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from .models import RequestError
from .residual import Attr, Expr, Node, Value, to_json
from .runtime import NonFinite, finite, hour, ip, ip_in, ip_in_any, like, time, weekday

ALWAYS_ALLOWED, ALWAYS_DENIED, CONDITIONAL = "always_allowed", "always_denied", "conditional"


# ---- evaluation on one resource ---------------------------------------------------


def _read(attrs: dict, node: Attr, rid: str | None) -> Any:
    if node.path == ("id",):
        if rid is None:
            raise RequestError("this plan tests the resource id: pass matches(attrs, id=...)")
        return rid
    value: Any = attrs
    for step in node.path:
        if not isinstance(value, dict) or step not in value:
            raise RequestError(f"resource attribute `{node.name}` is missing")
        value = value[step]
    return _runtime(value, node.type)


def _read_stored(attrs: dict, node: Attr, rid: str | None) -> Any:
    """As _read, for attributes already in the runtime representation (entity data)."""
    if node.path == ("id",):
        return rid
    value: Any = attrs
    for step in node.path:
        if not isinstance(value, dict) or step not in value:
            raise RequestError(f"resource attribute `{node.name}` is missing")
        value = value[step]
    return value


def _runtime(value: Any, t: str) -> Any:
    """A request-form value (ip and time as text) in the runtime representation."""
    if t == "ip":
        return ip(value)
    if t == "time":
        return time(value)
    if t in ("set<ip>", "set<time>"):
        return [_runtime(v, t[4:-1]) for v in value]
    return value


def _has(attrs: dict, node: Attr) -> bool:
    value: Any = attrs
    for step in node.path:
        if not isinstance(value, dict) or step not in value:
            return False
        value = value[step]
    return True


_BINARY = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b, "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b,
    "in": lambda x, s: x in s, "contains": lambda s, x: x in s,
    "contains_any": lambda a, b: not set(a).isdisjoint(b),
    "contains_all": lambda a, b: set(a).issuperset(b),
    "set_eq": lambda a, b: set(a) == set(b),
    "like": lambda s, p: like(s, tuple(p.split("*"))),
    "has_key": lambda m, k: k in m, "get": lambda m, k: m[k],
    "get_or_empty": lambda m, k: m.get(k, ()), "field": lambda r, name: r[name],
    "add": lambda a, b: finite(float(a) + b), "sub": lambda a, b: finite(float(a) - b),
    "mul": lambda a, b: finite(float(a) * b), "ip_in": ip_in, "ip_in_any": ip_in_any,
}
_UNARY = {"neg": lambda a: -a, "len": len, "set_len": lambda s: len(set(s)),
          "lower": str.lower, "hour": hour, "weekday": weekday}


def _kleene_and(values) -> bool | None:
    """`and` over True, False and None (unknown): false wins, then unknown."""
    out = True
    for v in values:
        if v is False:
            return False
        if v is None:
            out = None
    return out


def _kleene_or(values) -> bool | None:
    out = False
    for v in values:
        if v is True:
            return True
        if v is None:
            out = None
    return out


def _kleene(op: str, fn, values):
    """An operator over values that may be unknown (None): unknown in, unknown out;
    arithmetic with no finite result gives unknown."""
    if any(v is None for v in values):
        return None
    try:
        return fn(*values)
    except NonFinite:
        return None


def evaluate(node: Node, attrs: dict, rid: str | None = None) -> Any:
    """The value of a residual on one resource's attributes (as a request sends them):
    True, False, or None where arithmetic gave no finite number (Kleene's unknown)."""
    if isinstance(node, Value):
        return node.value
    if isinstance(node, Attr):
        return _read(attrs, node, rid)
    op, args = node.op, node.args
    if op == "and":
        return _kleene_and(evaluate(a, attrs, rid) for a in args)
    if op == "or":
        return _kleene_or(evaluate(a, attrs, rid) for a in args)
    if op == "not":
        v = evaluate(args[0], attrs, rid)
        return None if v is None else not v
    if op == "has":
        if isinstance(args[0], Attr):
            return _has(attrs, args[0])
        return args[1].value in evaluate(args[0], attrs, rid)
    values = [evaluate(a, attrs, rid) for a in args]
    return _kleene(op, _UNARY[op] if op in _UNARY else _BINARY[op], values)


def compiled(node: Node, stored: bool = False):
    """`evaluate` as closures, built once per plan: a list endpoint masks every row it
    returns by the plan, and walking the nodes per row cost more than the query. With
    `stored`, attributes come in the runtime representation (entity data's rows)."""
    if isinstance(node, Value):
        value = node.value
        return lambda a, r: value
    if isinstance(node, Attr) and stored:
        return lambda a, r: _read_stored(a, node, r)
    if isinstance(node, Attr):
        name = node.path[0]
        if len(node.path) > 1 or name == "id" or node.type in ("ip", "time", "set<ip>",
                                                                 "set<time>"):
            return lambda a, r: _read(a, node, r)

        def read(a, r):
            try:
                return a[name]
            except (KeyError, TypeError):
                return _read(a, node, r)  # raises the error `evaluate` raises
        return read
    op, args = node.op, node.args
    if op == "has" and isinstance(args[0], Attr):
        return lambda a, r: _has(a, args[0])
    fs = [compiled(x, stored) for x in args]
    unknowable = any(_fallible(x) for x in args)  # else two-valued, as fast as before
    if op == "and":
        return (lambda a, r: _kleene_and(f(a, r) for f in fs)) if unknowable else \
            (lambda a, r: all(f(a, r) for f in fs))
    if op == "or":
        return (lambda a, r: _kleene_or(f(a, r) for f in fs)) if unknowable else \
            (lambda a, r: any(f(a, r) for f in fs))
    if op == "not":
        def not_(a, r):
            v = fs[0](a, r)
            return None if v is None else not v
        return not_
    if op == "has":
        key = args[1].value
        return lambda a, r: key in fs[0](a, r)
    g = _UNARY[op] if op in _UNARY else _BINARY[op]
    if op in _ARITH or unknowable:  # three-valued (kleene.py)
        return lambda a, r: _kleene(op, g, [f(a, r) for f in fs])
    if op in _UNARY:
        f = fs[0]
        return lambda a, r: g(f(a, r))
    if len(fs) == 2:
        f0, f1 = fs
        return lambda a, r: g(f0(a, r), f1(a, r))
    return lambda a, r: g(*[f(a, r) for f in fs])


_ARITH = ("add", "sub", "mul")


def _fallible(node: Node) -> bool:
    """Whether a residual node reads arithmetic (its value may be unknown)."""
    return isinstance(node, Expr) and (node.op in _ARITH or any(map(_fallible, node.args)))


# ---- the plan ---------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What `engine.plan` decided for a principal, an action and a resource type."""

    kind: str
    residual: Node | None  # the condition as nodes; None unless conditional
    visible: dict  # field -> True, or the residual under which it is visible
    reasons: tuple[str, ...]
    policy_version: str
    resource_type: str = ""
    action: str = ""
    warnings: tuple[str, ...] = ()
    origins: tuple = ()  # (rule name, the residual term it gave): errors name the rule
    # the attribute paths that may be absent (None: not known, as for a plan received
    # over gRPC): the SQL guard refuses NULL in every other column (plans/columns.py)
    optional: frozenset | None = None

    @functools.cached_property
    def condition(self) -> dict | None:
        """The residual as its JSON tree (docs/plans.md), None unless conditional."""
        return None if self.residual is None else to_json(self.residual)

    @functools.cached_property
    def visible_fields(self) -> dict:
        """Each field that may be visible: True, or the condition (JSON) it is visible under."""
        return {f: True if v is True else to_json(v) for f, v in self.visible.items()}

    @functools.cached_property
    def attributes(self) -> frozenset[str]:
        """The top-level attribute names the residual and the visible conditions read: all
        `matches` and `visible_for` need of a row."""
        found, todo = set(), [self.residual, *self.visible.values()]
        while todo:
            node = todo.pop()
            if isinstance(node, Attr):
                found.add(node.path[0])
            elif isinstance(node, Expr):
                todo.extend(node.args)
        return frozenset(found)

    def matches(self, attrs: dict, id: str | None = None) -> bool:  # noqa: A002
        """Whether one resource with these attributes is allowed (`check`'s answer for it,
        rate limits and write fields aside). Raises RequestError for a missing attribute."""
        if self.kind != CONDITIONAL:
            return self.kind == ALWAYS_ALLOWED
        try:
            return self._compiled[0](attrs, id) is True
        except RequestError:
            raise
        except Exception:  # a value of the wrong kind, arithmetic overflow: fail closed
            return False

    def visible_for(self, attrs: dict, id: str | None = None) -> list[str]:
        """The fields visible on one matching resource, in declaration order."""
        if not self.matches(attrs, id):
            return []
        return [f for f, v in self._compiled[1] if v is True or v(attrs, id) is True]

    @functools.cached_property
    def stored_matcher(self):
        """`matches` for a resource whose attributes are entity data's rows (runtime
        values: ips and times already converted): f(attrs, id) -> bool, never raising."""
        if self.kind != CONDITIONAL:
            allowed = self.kind == ALWAYS_ALLOWED
            return lambda attrs, rid: allowed
        f = compiled(self.residual, stored=True)

        def match(attrs, rid) -> bool:
            try:
                return f(attrs, rid) is True
            except Exception:  # a missing attribute, arithmetic overflow: fail closed
                return False
        return match

    @functools.cached_property
    def _compiled(self) -> tuple:
        """(the residual, [(field, True or its condition)]) as closures (`compiled`)."""
        residual = compiled(self.residual) if self.residual is not None else None
        return residual, [(f, True if v is True else compiled(v))
                          for f, v in self.visible.items()]

    def to_dict(self) -> dict:
        out = {"kind": self.kind, "condition": self.condition,
               "visible_fields": self.visible_fields, "reasons": list(self.reasons),
               "policy_version": self.policy_version, "resource_type": self.resource_type,
               "action": self.action}
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out


_new, _set = object.__new__, object.__setattr__


def make_plan(kind: str, residual, visible: dict, reasons: tuple, version: str, rtype: str,
              action: str, warnings: tuple = (), origins: tuple = (),
              optional: frozenset | None = None) -> Plan:
    """A Plan without the frozen dataclass's per-field setattr cost (plans are hot)."""
    p = _new(Plan)
    _set(p, "__dict__", {"kind": kind, "residual": residual, "visible": visible,
                         "reasons": reasons, "policy_version": version, "resource_type": rtype,
                         "action": action, "warnings": warnings, "origins": origins,
                         "optional": optional})
    return p
