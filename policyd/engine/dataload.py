"""Loading entity data: every entry checked against its type's stored attributes and its
declared parent types (1.2), in one pass; the parent graph checked acyclic. Well-formed
entries take a short path; anything else is explained with its file and line.

An entry is `{"type": T, "id": ID, "attrs": {...}, "parents": [{"type", "id"}, ...]}`,
with `"kind": "principal"`, `"resource"` or `"entity"` where a principal type and a
resource type share the name T.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass

from ..language.diagnostics import Diagnostic, did_you_mean
from ..language.nodes import Span
from ..language.schema import EntitySchema, Schema
from ..language.sources import as_text
from .datafiles import chunks, parse_file
from .entities import EntityData, Tables
from .graph import ParentsInvalid, find_cycle, parents_of
from .validation import Explainer

_KEYS = {"type", "id", "attrs", "kind", "parents"}
_KINDS = ("principal", "resource", "entity")
_EMPTY_ROW: dict = {}  # the stored attributes of every entity that has none: one dict


@dataclass(frozen=True, slots=True)
class Entry:
    kind: str | None
    type: str
    id: str
    attrs: dict
    where: Span
    parents: object = None


def _no_attrs(attrs: dict, pool) -> dict:
    """The data validator of a type with parents but no stored attributes."""
    if attrs:
        raise ValueError
    return {}


def build(data: dict[str, str], schema: Schema, validators: dict,
          max_bytes: int) -> tuple[EntityData, list[Diagnostic]]:
    """Check every entry; the lookup tables and the parent graph."""
    diags: list[Diagnostic] = []
    # the data validators pool as they check: equal sets become one shared tuple, map
    # keys one string, so a million users with the same few roles hold them once
    loader = _Loader(schema, validators, max_bytes, diags.append)
    collecting = gc.isenabled()
    gc.disable()  # millions of new containers: the cycle collector would rescan them all
    try:
        for path, text in data.items():
            for values, where in chunks(path, text, diags.append):
                loader.load(values, where)
                if collecting:  # this piece's young objects now, in a few ms (untracking
                    gc.collect(1)  # most): never millions at once when it is enabled again
    finally:
        if collecting:
            gc.enable()
    parents = {name: table for name, table in loader.parents.items() if table}
    if not diags and not loader.ordered:  # in file order every parent came first: a DAG
        cycle = find_cycle(parents)
        if cycle is not None:
            diags.append(_cycle_diagnostic(cycle, data))
    return loader.tables(parents), diags


class _Loader:
    def __init__(self, schema: Schema, validators: dict, max_bytes: int, report):
        self.schema, self.validators, self.report = schema, validators, report
        self.explain, self.pool = Explainer(schema, max_bytes), {}.setdefault
        self.rows: dict[tuple[str, str], dict] = {}  # keyed by strings: schemas hash slowly
        self.parents: dict[str, dict] = {}
        # every parent pair, pooled; also every loaded entity of a type that may be a
        # parent. A parent new to it was not loaded before its child: the data is then
        # not in an order that proves it acyclic, and find_cycle runs.
        self.pairs: dict = {}
        self.ordered = True
        self.parent_types = {t for kind in _KINDS for s in self._declared(kind).values()
                             for t in s.parents}
        # (kind or None, type) -> (validator, rows, allowed parent types, parents table)
        self.slots: dict = {}
        for kind in _KINDS:
            for name, s in self._declared(kind).items():
                slot = self._slot(kind, s)
                if slot is not None:
                    self.slots[(kind, name)] = slot
                    shared = (None, name) in self.slots or any(
                        name in self._declared(k) for k in _KINDS if k != kind)
                    if not shared:
                        self.slots[(None, name)] = slot

    def _declared(self, kind: str) -> dict:
        return getattr(self.schema, {"principal": "principals", "resource": "resources",
                                     "entity": "entities"}[kind])

    def _slot(self, kind: str, s: EntitySchema):
        check = self.validators.get(f"data:{kind}:{s.name}")
        if check is None and not s.parents:
            return None
        rows = self.rows.setdefault((kind, s.name), {})
        table = self.parents.setdefault(s.name, {}) if s.parents else None
        return (check or _no_attrs, rows, s.parents, table, s.name in self.parent_types)

    def load(self, values: list, where: Callable[[int], Span]) -> None:
        slots, pool, ordered = self.slots, self.pool, self.ordered
        pairs_seen = self.pairs
        pair_pool = pairs_seen.setdefault
        for index, value in enumerate(values):
            # the short path: a well-formed entry of a known type whose attributes check
            if type(value) is dict and type(value.get("type")) is str and "id" in value and \
                    len(value) == 2 + ("attrs" in value) + ("kind" in value) + \
                    ("parents" in value) and type(value.get("kind", "")) is str:
                slot = slots.get((value.get("kind"), value["type"]))
                eid, attrs = value["id"], value.get("attrs", {})
                if slot is not None and type(eid) is str and eid and type(attrs) is dict \
                        and eid not in slot[1]:
                    try:
                        row = slot[0](attrs, pool)
                        found = value.get("parents")
                        if found is not None:
                            if slot[3] is None:
                                raise ParentsInvalid
                            seen = len(pairs_seen)
                            slot[3][eid] = parents_of(found, slot[2], pair_pool)
                            ordered = ordered and len(pairs_seen) == seen
                        if slot[4]:  # it may be a parent: its parents came first
                            pair = (value["type"], eid)
                            pair_pool(pair, pair)
                        slot[1][eid] = row or _EMPTY_ROW
                        continue
                    except Exception:
                        pass
            self._explain(value, where(index))
        self.ordered = ordered

    def tables(self, parents: dict) -> EntityData:
        out = []
        for kind in _KINDS:
            out.append({name: Tables(self.rows.get((kind, name), {}), tuple(
                a.name for a in s.stored if not a.optional))
                for name, s in self._declared(kind).items()
                if s.stored or s.whole or kind == "entity"})
        return EntityData(*out, parents)

    # ---- the slow path: say exactly what is wrong with one entry ---------------------

    def _explain(self, value, where: Span) -> None:
        entry = entry_of(value, where, self.report)
        target = entry and self._target(entry)
        if target is None:
            return
        if entry.id in self.rows.get((target.kind, target.name), {}):
            self.report(Diagnostic.at(where, "E506", f"{target.kind} {target.name} "
                                      f"{entry.id!r} is given twice"))
            return
        if entry.parents is not None and not self._parents_problem(entry, target):
            return
        self._attrs_problem(entry, target)

    def _target(self, entry: Entry) -> EntitySchema | None:
        kinds = [entry.kind] if entry.kind else list(_KINDS)
        found = [s for k in kinds if (s := self.schema.entity(k, entry.type)) is not None]
        if len(found) == 1:
            return found[0]
        if found:
            self.report(Diagnostic.at(entry.where, "E504", f"`{entry.type}` is both a "
                                      "principal and a resource type", 'say which with '
                                      '"kind": "principal" or "kind": "resource"'))
            return None
        names = [*self.schema.principals, *self.schema.resources, *self.schema.entities]
        self.report(Diagnostic.at(entry.where, "E503", f"unknown {entry.kind or 'entity'} "
                                  f"type `{entry.type}`", did_you_mean(entry.type, names)))
        return None

    def _parents_problem(self, entry: Entry, schema: EntitySchema) -> bool:
        """Report what is wrong with an entry's parents; True when nothing is."""
        where = f"{schema.kind} {schema.name} {entry.id!r}"
        if not schema.parents:
            self.report(Diagnostic.at(entry.where, "E509", f"{where}: `{schema.name}` "
                                      "declares no parent types, so its entries have no "
                                      "`parents`", f"declare them: `{schema.kind} "
                                      f"{schema.name} in TYPE, ...`"))
            return False
        try:
            parents_of(entry.parents, schema.parents, {}.setdefault)
        except ParentsInvalid as exc:
            self.report(Diagnostic.at(entry.where, "E507", f"{where}: {exc}"))
            return False
        return True

    def _attrs_problem(self, entry: Entry, schema: EntitySchema) -> None:
        """Why an entry's attributes do not check (E505)."""
        validator = self.validators.get(f"data:{schema.kind}:{schema.name}")
        if validator is None:
            if entry.attrs or entry.parents is None:
                self.report(Diagnostic.at(entry.where, "E505", f"{schema.kind} {schema.name} "
                                          "declares no stored attributes, so entity data "
                                          "cannot set any", "mark the attributes that come "
                                          "from data `stored`"))
            return
        try:
            validator(entry.attrs, {}.setdefault)
        except Exception:
            where = f"{schema.kind} {schema.name} {entry.id!r}: attrs"
            problem = self.explain.attrs(where, schema, entry.attrs, stored=True) or \
                f"{where} cannot be checked"
            self.report(Diagnostic.at(entry.where, "E505", problem,
                                      "entity data sets only attributes declared `stored`"
                                      if "not a stored" in problem else None))


def entry_of(value, where: Span, report) -> Entry | None:
    if not isinstance(value, dict):
        report(Diagnostic.at(where, "E502", "an entry is an object with type, id and attrs"))
        return None
    extra = sorted(set(value) - _KEYS)
    kind = value.get("kind", "principal")
    if extra or not isinstance(value.get("type"), str) or not isinstance(value.get("id"), str) \
            or not isinstance(value.get("attrs", {}), dict) \
            or type(kind) is not str or kind not in _KINDS or not value.get("id"):
        what = f"`{extra[0]}` is not part of an entry" if extra else \
            "an entry needs a string `type`, a non-empty string `id` and an `attrs` object " \
            "(and `kind`, when given, is \"principal\", \"resource\" or \"entity\")"
        report(Diagnostic.at(where, "E502", what))
        return None
    return Entry(value.get("kind"), value["type"], value["id"], value.get("attrs", {}), where,
                 value.get("parents"))


def _cycle_diagnostic(cycle: list, data: dict) -> Diagnostic:
    """E508 at the entry of the cycle's first entity (found again by parsing the files:
    only on this error path)."""
    text = " -> ".join(f"{t}({i!r})" for t, i in cycle)
    first = cycle[0]
    for path, source in data.items():
        for value, span in parse_file(path, as_text(source), lambda d: None):
            if isinstance(value, dict) and (value.get("type"), value.get("id")) == first:
                return Diagnostic.at(span, "E508", f"the parents form a cycle: {text}",
                                     "an entity is never its own ancestor")
    return Diagnostic.for_path(next(iter(data), "<data>"), "E508",
                               f"the parents form a cycle: {text}")
