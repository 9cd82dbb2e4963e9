"""Partial evaluation of relationships (1.2): a mixin of partial.Compiler.

With the principal known, `principal in resource.readers` is `readers IN (the ids of
every RepoPermission the principal is in)`; with the resource unknown,
`resource in principal.owned_folders` is `id IN (every resource below an owned folder)`,
from the entity data. A read through a reference whose id is a residual
(`resource.owner.admins`) is a `Via`: an operator that meets one is decided for each
entity of that type in the data, giving `owner IN (ids where it holds)`; and the plan
then never selects a row whose reference the data does not hold (check denies it with
`missing_data`), so a plan returns no row that check would refuse.
"""

from __future__ import annotations

from .graph import EMPTY_ANCESTORS
from .residual import Attr, Expr, Node, Value
from .runtime import ANCESTORS, MissingData

PARENT = ("parent",)  # a plan's column for the direct parent of a row (not an attribute)


class Via:
    """A value read through a reference that is still a residual: `node` (the reference
    column) and, for each entity id of `type` in the data, `get(g, id)` its value."""

    __slots__ = ("node", "type", "get")

    def __init__(self, node: Node, t: str, get):
        self.node, self.type, self.get = node, t, get


def resolve(e, via: Via, test) -> object:
    """`via.node IN (ids whose value passes test)`, guarded so a dangling reference is
    never selected."""
    rows = e.g.rows.get(via.type, EMPTY_ANCESTORS)
    held = []
    for i in rows:
        try:
            if test(via.get(e.g, i)) is True:
                held.append(i)
        except (MissingData, KeyError):
            continue
    e.guard(Expr("in", (via.node, Value(frozenset(rows), "set<string>"))))
    return Expr("in", (via.node, Value(frozenset(held), "set<string>"))) if held else False


def through(e, a, b, known):
    """A binary operator with an operand read through an unknown reference (partial_rel):
    decided for each entity of the reference's type."""
    if type(a) is Via and not isinstance(b, Node | Via):
        return resolve(e, a, lambda v: known(v, b))
    if type(b) is Via and not isinstance(a, Node | Via):
        return resolve(e, b, lambda v: known(a, v))
    raise ValueError("an operator between two unknown values read through references")


def entity_type(ir, e) -> str:
    if getattr(ir, "op", None) == "self":
        return e.ptype if ir.data == "principal" else e.rtype
    return ir.type


def own(ir, e):
    if getattr(ir, "op", None) == "self":
        return e.P if ir.data == "principal" else e.R
    return None


def ancestors_or_self(e, t: str, i, mine, target: str) -> frozenset:
    found = (mine or {}).get(ANCESTORS) or e.g.ancestors(t, i)
    ids = found.get(target, frozenset())
    return ids | {i} if t == target else ids


class RelationPartial:
    def op_self(self, ir):
        if ir.data == "principal":
            return lambda e: e.pid
        node = Attr(("id",), "string")
        return lambda e: e.rid if e.rid is not None else node

    def op_ref_id(self, ir):
        return self.fn(ir.args[0])

    def _ref_compare(self, ir, negated: bool):
        (x, y), (fx, fy) = ir.args, tuple(self.fn(a) for a in ir.args)

        def compare(e):
            a, b = fx(e), fy(e)
            if entity_type(x, e) != entity_type(y, e):
                return negated
            if isinstance(a, Via) or isinstance(b, Via):
                via, other = (a, b) if isinstance(a, Via) else (b, a)
                if isinstance(other, Node | Via):
                    raise ValueError("a comparison of two unknown references")
                found = resolve(e, via, lambda v: v == other)
            elif isinstance(a, Node) or isinstance(b, Node):
                node, other = (a, b) if isinstance(a, Node) else (b, a)
                if isinstance(other, Node):
                    found = Expr("eq", (a, b))
                else:
                    found = Expr("eq", (node, Value(other, "string")))
            else:
                found = a == b
            return (not found if type(found) is bool else Expr("not", (found,))) \
                if negated else found
        return compare

    def op_ref_eq(self, ir):
        return self._ref_compare(ir, False)

    def op_ref_ne(self, ir):
        return self._ref_compare(ir, True)

    def op_ref_member(self, ir):
        (x, s), (fx, fs) = ir.args, tuple(self.fn(a) for a in ir.args)
        element = s.type[4:-1]

        def member(e):
            a, found = fx(e), fs(e)
            if entity_type(x, e) != element:
                return False
            if isinstance(found, Via) or isinstance(a, Via):
                raise ValueError("a set read through an unknown reference")
            if isinstance(found, Node):
                if isinstance(a, Node):
                    return Expr("contains", (found, a))
                return Expr("contains", (found, Value(a, "string")))
            if isinstance(a, Node):
                return Expr("in", (a, Value(frozenset(found), "set<string>"))) if found \
                    else False
            return a in found
        return member

    def op_within(self, ir):
        return self._within(ir, False)

    def op_within_any(self, ir):
        return self._within(ir, True)

    def _within(self, ir, many: bool):
        (x, y), (fx, fy) = ir.args, tuple(self.fn(a) for a in ir.args)
        target = y.type[4:-1] if many else None

        def within(e):
            a, b = fx(e), fy(e)
            ta, tb = entity_type(x, e), target or entity_type(y, e)
            if isinstance(a, Node | Via):  # the resource (or its reference) unknown
                if isinstance(b, Node | Via) or isinstance(a, Via):
                    raise ValueError("`in` between two unknown entities")
                return self._below(e, a, ta, tb, b if many else (b,))
            ids = ancestors_or_self(e, ta, a, own(x, e), tb)
            if isinstance(b, Via):
                test = (lambda v: not ids.isdisjoint(v)) if many else (lambda v: v in ids)
                return resolve(e, b, test)
            if isinstance(b, Node):
                if not ids:
                    return False
                listed = Value(ids, "set<string>")
                return Expr("contains_any", (b, listed)) if many else Expr("in", (b, listed))
            return not ids.isdisjoint(b) if many else b in ids
        return within

    def _below(self, e, node: Node, ta: str, tb: str, targets) -> object:
        """`resource in B` with the resource unknown: its id among the entities of its
        type in the data that are B or below B; and for a type whose rows carry their
        parent (not stored as a whole), or a `parent` column among B and what is below B
        (a row without one is in nothing but itself)."""
        found: set = set()
        for b in targets:
            if ta == tb:
                found.add(b)
            found.update(e.g.descendants(tb, b).get(ta, ()))
        by_id = Expr("in", (node, Value(frozenset(found), "set<string>"))) if found else False
        if not self.parent_column or node != Attr(("id",), "string"):
            return by_id
        parents: set = set()
        for b in targets:
            below = e.g.descendants(tb, b)
            for pt in self.res.parents:
                parents.update(below.get(pt, ()))
                if pt == tb:
                    parents.add(b)
        if not parents:
            return by_id
        column = Attr(PARENT, "string")
        by_parent = Expr("and", (Expr("has", (column,)),
                                 Expr("in", (column, Value(frozenset(parents), "set<string>")))))
        return by_parent if by_id is False else Expr("or", (by_id, by_parent))

    def op_deref(self, ir):
        f0 = self.fn(ir.args[0])
        t, attr, path = ir.data
        condition = ir.type == "bool"  # a bool read through a reference stands alone

        def deref(e):
            i = f0(e)
            if isinstance(i, Via):
                inner = i.get
                found = Via(i.node, i.type, lambda g, j: g.entity(t, inner(g, j), path)[attr])
            elif isinstance(i, Node):
                found = Via(i, t, lambda g, j: g.entity(t, j, path)[attr])
            else:
                return e.g.entity(t, i, path)[attr]
            return resolve(e, found, lambda v: v is True) if condition else found
        return deref

    def op_deref_has(self, ir):
        f0 = self.fn(ir.args[0])
        t, attr, path = ir.data

        def deref_has(e):
            i = f0(e)
            if isinstance(i, Via):
                inner = i.get
                return resolve(e, Via(i.node, i.type, lambda g, j: g.entity(
                    t, inner(g, j), path)), lambda row: attr in row)
            if isinstance(i, Node):
                return resolve(e, Via(i, t, lambda g, j: g.entity(t, j, path)),
                               lambda row: attr in row)
            return attr in e.g.entity(t, i, path)
        return deref_has
