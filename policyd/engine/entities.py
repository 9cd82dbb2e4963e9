"""Entity data at decision time: the stored attributes of principals, resources and entity
types, looked up by (type, id) in one dict lookup, and the hierarchy (1.2) that `in`
walks, its ancestors computed once per entity and data version (graph.py).

Loading and checking the data files is dataload.py's; this module is what a decision
reads. Generated code reaches it as the module global `_g` (language/relcode.py).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from .graph import EMPTY_ANCESTORS, closure
from .runtime import ANCESTORS, MissingData


@dataclass(frozen=True)
class Tables:
    """One entity type's data: id -> stored attributes (converted), and the stored
    attributes every entity must have. Searches read it through `ids` and `index`, built
    on first use and kept with this data version (a reload brings new Tables)."""

    rows: dict[str, dict]
    required: tuple[str, ...]
    cache: dict = field(default_factory=dict, compare=False, repr=False)

    def ids(self) -> list[str]:
        """Every id, in order."""
        found = self.cache.get("ids")
        if found is None:
            found = self.cache["ids"] = sorted(self.rows)
        return found

    def index(self, attr: str) -> dict:
        """Value -> the ids, in order, of the entities whose `attr` holds it (scalar
        attributes; an entity without it is in no list)."""
        key = ("index", attr)
        found = self.cache.get(key)
        if found is None:
            groups: dict = {}
            rows = self.rows
            for eid in self.ids():
                value = rows[eid].get(attr)
                if type(value) in (str, int, float, bool):
                    groups.setdefault(value, []).append(eid)
            found = self.cache[key] = groups
        return found


@dataclass(frozen=True)
class EntityData:
    principals: dict[str, Tables] = field(default_factory=dict)
    resources: dict[str, Tables] = field(default_factory=dict)
    entities: dict[str, Tables] = field(default_factory=dict)  # `entity` types (1.2)
    parents: dict[str, dict[str, tuple]] = field(default_factory=dict)  # type -> id -> pairs
    memo: dict = field(default_factory=dict, compare=False, repr=False)  # type -> id -> anc

    def attach(self, ptype: str, pid: str, P: dict, rtype: str, rid: str, R):
        """(P, R) with their stored attributes, or the `missing_data:...` reason."""
        t = self.principals.get(ptype)
        if t is not None:
            P = _merged(P, t.rows.get(pid), t.required)
            if type(P) is str:
                return "missing_data:principal." + P
        if R is not None:
            t = self.resources.get(rtype)
            if t is not None:
                R = _merged(R, t.rows.get(rid), t.required)
                if type(R) is str:
                    return "missing_data:resource." + R
        return P, R

    def count(self) -> int:
        return sum(len(t.rows) for t in (*self.principals.values(), *self.resources.values(),
                                         *self.entities.values()))

    # ---- references and the hierarchy (called by generated code) ----------------------

    @functools.cached_property
    def rows(self) -> dict[str, dict]:
        """Type name -> its rows, for reads through references (names in a hierarchy or
        used as references are declared once)."""
        out = {name: t.rows for name, t in self.entities.items()}
        for tables in (self.resources, self.principals):
            for name, t in tables.items():
                out.setdefault(name, t.rows)
        return out

    def entity(self, t: str, i, path: str) -> dict:
        """The stored attributes of the entity a reference names; MissingData(path) when
        the data does not hold it (the decision denies with `missing_data:PATH`)."""
        found = self.rows.get(t, EMPTY_ANCESTORS).get(i)
        if found is None:
            raise MissingData(path)
        return found

    def ancestors(self, t: str, i) -> dict:
        """{type: frozenset(ids)} of every ancestor of (t, i) in the data, kept once
        computed; an entity the data lists no parents for has none (never kept, so ids
        from requests cannot grow the memory)."""
        known = self.memo.get(t)
        if known is not None:
            found = known.get(i)
            if found is not None:
                return found
        direct = self.parents.get(t, EMPTY_ANCESTORS).get(i)
        if not direct:
            return EMPTY_ANCESTORS
        found = closure(self.parents, direct, self.memo)
        self.memo.setdefault(t, {})[i] = found
        return found

    @functools.cached_property
    def children(self) -> dict:
        """The parent graph inverted, {type: {id: [(child type, child id), ...]}}: built
        on the first plan that needs it (`resource in B` with the resource unknown)."""
        out: dict = {}
        for t, table in self.parents.items():
            for i, pairs in table.items():
                for pt, pi in pairs:
                    out.setdefault(pt, {}).setdefault(pi, []).append((t, i))
        return out

    def descendants(self, t: str, i) -> dict:
        """{type: set(ids)} of every entity below (t, i) in the data."""
        return closure(self.children, self.children.get(t, EMPTY_ANCESTORS).get(i, ()))

    def sent(self, parents: tuple, t: str, i) -> dict:
        """The ancestors of an entity whose parents the request sent: those parents, their
        ancestors from the data, and its own parents in the data."""
        found = closure(self.parents, (*parents, *self.parents.get(t, EMPTY_ANCESTORS).get(
            i, ())), self.memo)
        found[None] = parents  # the parents sent, for explanations (graph.chain)
        return found

    def inside(self, ta: str, a, own, tb: str, b) -> bool:
        """`A in B`: A is B, or B is an ancestor of A. `own` is the request's principal or
        resource dict (it may carry the ancestors of parents the request sent)."""
        if a == b and ta == tb:
            return True
        found = own.get(ANCESTORS) if own else None
        if found is None:  # the memo inline: this is every `in` of every decision
            found = self.memo.get(ta, EMPTY_ANCESTORS).get(a)
            if found is None:
                found = self.ancestors(ta, a)
        ids = found.get(tb)
        return ids is not None and b in ids

    def inside_any(self, ta: str, a, own, tb: str, s) -> bool:
        """`A in S`: `A in B` for some B of the set S (all of type tb)."""
        if ta == tb and a in s:
            return True
        found = own.get(ANCESTORS) if own is not None else None
        if found is None:
            found = self.ancestors(ta, a)
        ids = found.get(tb)
        return ids is not None and not ids.isdisjoint(s)


def _merged(attrs: dict, stored: dict | None, required: tuple[str, ...]):
    if stored is None:
        return required[0] if required else attrs
    for name in required:
        if name not in stored:
            return name
    return {**attrs, **stored}
