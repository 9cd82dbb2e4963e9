"""Partial evaluation of the typed IR: everything about the principal, the context, the
action and the known resource attributes is computed; what depends on the rest of the
resource is left as a residual tree (engine.plan's nodes), simplified so that no
subtree of it is constant.

Known values are computed exactly as the generated code computes them (same runtime
functions, same representations), which is what makes a plan agree with `check`.
"""

from __future__ import annotations

from ..language.checked import ActionName, Const, Read
from ..language.planning import KeyedLookup
from ..language.schema import EntitySchema
from .partial_rel import RelationPartial, Via, resolve, through
from .residual import UNKNOWN, Attr, Expr, Node, Value, conj, disj, negate
from .runtime import (
    NonFinite,
    all_of,
    any_of,
    finite,
    hour,
    ip_in,
    ip_in_any,
    like,
    set_eq,
    set_len,
    weekday,
)

_ABSENT = object()  # a map key no map holds: how a keyed lookup decides absent keys
_MIRROR = {"eq": "eq", "ne": "ne", "lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}
_COMPARE = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "lt": lambda a, b: a < b,
            "le": lambda a, b: a <= b, "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b}
_KNOWN = {  # operator -> its value on known operands (as codegen writes it)
    **_COMPARE,
    "add": lambda a, b: finite(float(a) + b), "sub": lambda a, b: finite(float(a) - b),
    "mul": lambda a, b: finite(float(a) * b), "neg": lambda a: -a,
    "set_eq": set_eq, "set_ne": lambda a, b: not set_eq(a, b),
    "ip_in": ip_in, "ip_in_any": ip_in_any, "hour": hour, "weekday": weekday,
    "lower": str.lower, "len": len, "set_len": set_len,
    "in": lambda x, s: x in s, "any_of": any_of, "all_of": all_of,
    "index": lambda m, k: m[k], "index_or_empty": lambda m, k: m.get(k, ()),
    "has_key": lambda k, m: k in m,
}
_RENAMED = {"any_of": "contains_any", "all_of": "contains_all", "index": "get",
            "index_or_empty": "get_or_empty", "set_len": "set_len"}


_ARITH = ("add", "sub", "mul")


def _known(op: str):
    """An operator on known operands; arithmetic with no finite result is UNKNOWN."""
    f = _KNOWN[op]
    if op not in _ARITH:
        return f

    def arithmetic(a, b):
        try:
            return f(a, b)
        except NonFinite:
            return UNKNOWN
    return arithmetic


def _node(value, t: str) -> Node:
    """A known operand of a residual as a literal of type `t` (sets as frozensets)."""
    if type(value) in (list, tuple, set):
        value = frozenset(value)
    return Value(value, t)


class Env:
    """What one plan knows: the principal, the context, the action, and of the resource
    its type, its id (or None) and the attributes `R` given (or stored)."""

    __slots__ = ("pid", "P", "C", "ptype", "rtype", "rid", "R", "action", "bound", "g",
                 "guards")

    def __init__(self, pid, P, C, ptype, rtype, rid, R, action, g=None):
        self.pid, self.P, self.C, self.ptype = pid, P, C, ptype
        self.rtype, self.rid, self.R, self.action = rtype, rid, R, action
        self.bound = None  # path -> value: a keyed lookup trying one key
        self.g = g  # the entity data (1.2: the hierarchy, reads through references)
        self.guards: list | None = None  # residuals every selected row must also meet

    def guard(self, node) -> None:
        if self.guards is None:
            self.guards = []
        if node not in self.guards:
            self.guards.append(node)

    def key_known(self, path) -> bool:
        return (self.bound is not None and path in self.bound) or path[0] in self.R or \
            path == ("type",) or (path == ("id",) and self.rid is not None)


def _walk(value, path):
    for step in path:
        value = value[step]
    return value


class Compiler(RelationPartial):
    """The IR of one resource type's rules as closures `f(env) -> value | residual`,
    built once per policy set: no dispatch on node types while planning."""

    def __init__(self, res: EntitySchema, records: dict, keyed: dict, runtime=None):
        self.res, self.records, self.keyed = res, records, keyed
        # rows whose parents are not all in the data carry the direct one in a column
        self.parent_column = bool(res.parents) and not res.whole and "parent" not in res.by_name
        # a reference's column holds its id: residual nodes carry the runtime type
        self.runtime = runtime or (lambda t: t)
        self.cache: dict = {}  # IR (by value) -> closure: equal conditions share one
        self.fallible = False  # whether any condition reads arithmetic (may be UNKNOWN)

    def fn(self, ir):
        found = self.cache.get(ir)
        if found is None:
            found = self._build(ir)
            keyed = self.keyed.get(id(ir))
            if keyed is not None:
                found = self._keyed(found, keyed)
            self.cache[ir] = found
        return found

    def _build(self, ir):
        t = type(ir)
        if t is Const:
            v = ir.value
            return lambda e: v
        if t is ActionName:
            return lambda e: e.action
        if t is Read:
            return self._read(ir)
        return getattr(self, "op_" + ir.op, self.op_plain)(ir)

    # ---- reads ------------------------------------------------------------------

    def _read(self, ir: Read):
        path = ir.path
        if ir.entity != "resource":
            if ir.entity == "principal" and path in (("id",), ("type",)):
                return (lambda e: e.pid) if path == ("id",) else (lambda e: e.ptype)
            if len(path) == 1:
                name = path[0]
                return (lambda e: e.P[name]) if ir.entity == "principal" else \
                    (lambda e: e.C[name])
            return (lambda e: _walk(e.P, path)) if ir.entity == "principal" else \
                (lambda e: _walk(e.C, path))
        if path == ("type",):
            return lambda e: e.rtype
        node, head = Attr(path, self.runtime(ir.type)), path[0]

        def read(e):
            bound = e.bound
            if bound is not None and path in bound:
                return bound[path]
            if head in e.R:
                return _walk(e.R, path)
            if path == ("id",) and e.rid is not None:
                return e.rid
            return node
        return read

    def _keyed(self, inner, keyed: KeyedLookup):
        path, maps = keyed.path, tuple(self.fn(m) for m in keyed.maps)
        attr = Attr(path, "string")

        def lookup(e):
            if e.key_known(path):
                return inner(e)
            return _enumerate(e, inner, path, maps, attr)
        return lookup

    # ---- operators ----------------------------------------------------------------

    def op_plain(self, ir):
        known, name = _known(ir.op), _RENAMED.get(ir.op, ir.op)
        self.fallible = self.fallible or ir.op in _ARITH
        if len(ir.args) == 1:
            f0 = self.fn(ir.args[0])

            def unary(e):
                a = f0(e)
                if a is UNKNOWN:
                    return a
                if type(a) is Via:  # through a reference: the value for each entity
                    get = a.get
                    return Via(a.node, a.type, lambda g, j: known(get(g, j)))
                return Expr(name, (a,)) if isinstance(a, Node) else known(a)
            return unary
        (f0, f1), (t0, t1) = (self.fn(a) for a in ir.args), (a.type for a in ir.args)
        mirror, negated = _MIRROR.get(ir.op), ir.op == "set_ne"
        if negated:
            name = "set_eq"

        def binary(e):
            a, b = f0(e), f1(e)
            if a is UNKNOWN or b is UNKNOWN:  # unknown in, unknown out (kleene.py)
                return UNKNOWN
            if type(a) is Via or type(b) is Via:
                return through(e, a, b, known)
            an, bn = isinstance(a, Node), isinstance(b, Node)
            if not an and not bn:
                return known(a, b)
            a, b = a if an else _node(a, t0), b if bn else _node(b, t1)
            if mirror is not None and not an:
                return Expr(mirror, (b, a))
            out = Expr(name, (a, b))
            return Expr("not", (out,)) if negated else out
        return binary

    def op_and(self, ir):
        fs = tuple(self.fn(a) for a in ir.args)

        def and_(e):
            parts = []
            for f in fs:
                v = f(e)
                if v is False:
                    return False
                parts.append(v)
            return conj(parts)
        return and_

    def op_or(self, ir):
        fs = tuple(self.fn(a) for a in ir.args)

        def or_(e):
            parts = []
            for f in fs:
                v = f(e)
                if v is True:
                    return True
                parts.append(v)
            return disj(parts)
        return or_

    def op_not(self, ir):
        f0 = self.fn(ir.args[0])
        return lambda e: negate(f0(e))

    def op_like(self, ir):
        f0, parts = self.fn(ir.args[0]), ir.data
        pattern = Value("*".join(parts), "string")

        def like_(e):
            s = f0(e)
            if type(s) is Via:
                return resolve(e, s, lambda v: like(v, parts))
            return Expr("like", (s, pattern)) if isinstance(s, Node) else like(s, parts)
        return like_

    def op_has(self, ir):
        entity, name = ir.data
        if entity != "resource":
            return (lambda e: name in e.P) if entity == "principal" else \
                (lambda e: name in e.C)
        test = Expr("has", (Attr((name,), self.res.by_name[name].type),))
        return lambda e: True if name in e.R else test

    def op_has_attr(self, ir):
        f0, name, records = self.fn(ir.args[0]), ir.data, self.records

        def has_attr(e):
            obj = f0(e)
            if not isinstance(obj, Node):
                return name in obj
            if isinstance(obj, Attr):
                t = records[obj.type].by_name[name].type
                return Expr("has", (Attr(obj.path + (name,), t),))
            return Expr("has", (obj, Value(name, "string")))
        return has_attr

    def op_attr(self, ir):
        f0, name = self.fn(ir.args[0]), ir.data
        label = Value(name, "string")

        def attr(e):
            obj = f0(e)
            return Expr("field", (obj, label)) if isinstance(obj, Node) else obj[name]
        return attr

    def op_is(self, ir):
        roles = ir.data
        if not ir.args:
            return lambda e: not roles.isdisjoint(e.P.get("roles", ()))
        f0, listed = self.fn(ir.args[0]), Value(roles, "set<string>")

        def is_(e):
            s = f0(e)
            return Expr("contains_any", (s, listed)) if isinstance(s, Node) else \
                not roles.isdisjoint(s)
        return is_

    def op_owns(self, ir):
        name, is_set_owner, typed = ir.data
        node = Attr((name,), self.runtime(self.res.by_name[name].type))
        op = "contains" if is_set_owner else "eq"

        def owns(e):
            if typed is not None and e.ptype != typed:  # a typed owner: that type only
                return False
            R = e.R
            if name in R:
                return e.pid in R[name] if is_set_owner else R[name] == e.pid
            return Expr(op, (node, Value(e.pid, "string")))
        return owns

    def op_in(self, ir):
        (f0, f1), (t0, t1) = (self.fn(a) for a in ir.args), (a.type for a in ir.args)

        def in_(e):
            x, s = f0(e), f1(e)
            if x is UNKNOWN:
                return x
            if type(x) is Via or type(s) is Via:
                return through(e, x, s, lambda a, b: a in b)
            xn, sn = isinstance(x, Node), isinstance(s, Node)
            if not xn and not sn:
                return x in s
            if not sn:
                return Expr("in", (x, _node(s, t1))) if s else False
            return Expr("contains", (s, x if xn else _node(x, t0)))
        return in_

    def op_any_of(self, ir):
        (f0, f1), t = (self.fn(a) for a in ir.args), ir.args[0].type

        def any_of_(e):
            a, b = f0(e), f1(e)
            if type(a) is Via or type(b) is Via:
                return through(e, a, b, any_of)
            an, bn = isinstance(a, Node), isinstance(b, Node)
            if not an and not bn:
                return any_of(a, b)
            if not an:  # symmetric: the residual side first
                a, b, bn = b, a, an
            if not bn and not b:
                return False  # no set holds any of nothing
            return Expr("contains_any", (a, b if bn else _node(b, t)))
        return any_of_

    def op_all_of(self, ir):
        (f0, f1), (t0, t1) = (self.fn(a) for a in ir.args), (a.type for a in ir.args)

        def all_of_(e):
            a, b = f0(e), f1(e)
            if type(a) is Via or type(b) is Via:
                return through(e, a, b, all_of)
            an, bn = isinstance(a, Node), isinstance(b, Node)
            if not an and not bn:
                return all_of(a, b)
            if not bn and not b:
                return True  # every set holds all of nothing
            return Expr("contains_all", (a if an else _node(a, t0), b if bn else _node(b, t1)))
        return all_of_

    def op_has_key(self, ir):
        (fk, fm), (tk, tm) = (self.fn(a) for a in ir.args), (a.type for a in ir.args)

        def has_key(e):
            k, m = fk(e), fm(e)
            if type(k) is Via or type(m) is Via:
                return through(e, k, m, lambda a, b: a in b)
            kn, mn = isinstance(k, Node), isinstance(m, Node)
            if not kn and not mn:
                return k in m
            return Expr("has_key", (m if mn else _node(m, tm), k if kn else _node(k, tk)))
        return has_key


def _enumerate(e: Env, inner, path, maps, attr: Attr):
    """Try the condition on each key the maps hold and on one they lack: the residual is
    then `key in {keys where it holds}` (or its negation)."""
    keys = set()
    for m in maps:
        try:
            keys.update(m(e))
        except KeyError:  # an optional map the condition guards (`principal has m`)
            continue
    held, failed, saved, result = [], [], e.bound, False
    try:
        for key in sorted(keys):
            e.bound = {**(saved or {}), path: key}
            result = inner(e)
            if type(result) is not bool:
                break
            (held if result else failed).append(key)
        else:
            e.bound = {**(saved or {}), path: _ABSENT}
            try:
                result = inner(e)
            except KeyError:  # a guarded read: the guard excludes absent keys anyway
                result = False
    finally:
        e.bound = saved
    if type(result) is not bool:  # not decided by the key alone after all: no shortcut
        return inner(e)
    if not result:
        return Expr("in", (attr, Value(frozenset(held), "set<string>"))) if held else False
    return Expr("not", (Expr("in", (attr, Value(frozenset(failed), "set<string>"))),)) \
        if failed else True
