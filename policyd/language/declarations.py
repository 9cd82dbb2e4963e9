"""Checks of the declarations: records, principal, resource and entity types, the
context, their attributes and attribute types, and the parent types of the hierarchy
(1.2). A mixin of the Checker, which holds the results."""

from __future__ import annotations

from . import nodes as n
from .diagnostics import did_you_mean
from .schema import (
    DECLARABLE,
    ERROR,
    SCALARS,
    STRING,
    AttrSpec,
    EntitySchema,
    is_map,
    map_of,
    map_value,
    set_of,
)

IMPLICIT = {"id": STRING, "type": STRING}
BUILTIN_TYPES = (*SCALARS, "set", "map")


class DeclarationChecks:
    """Fills `self.records`, `self.principals`, `self.resources`, `self.entities`,
    `self.context`."""

    def collect_type_names(self) -> None:
        """Every principal, resource and entity type name, before any attribute is typed:
        a reference may name a type declared further down."""
        self.type_kinds: dict[str, set[str]] = {}
        for kind, cls in (("principal", n.PrincipalDecl), ("resource", n.ResourceDecl),
                          ("entity", n.EntityDecl)):
            for d in self.decls(cls):
                self.type_kinds.setdefault(d.name.value, set()).add(kind)

    def check_records(self) -> None:
        first: dict[str, n.RecordDecl] = {}
        for d in self.decls(n.RecordDecl):
            if d.name.value in BUILTIN_TYPES:
                self.error(d.name.span, "E122", f"`{d.name.value}` is a built-in type and "
                           "cannot name a record")
            elif d.name.value in self.type_kinds:
                self.error(d.name.span, "E109", f"`{d.name.value}` names a record and a "
                           f"{sorted(self.type_kinds[d.name.value])[0]} type",
                           "give each its own name")
            elif self._unique(d.name, self.records, "record"):
                first[d.name.value] = d
                self.records[d.name.value] = EntitySchema("record", d.name.value, (), (),
                                                          None, d.span.file, d.span.line)
        for name, d in first.items():  # attributes second: records may name each other
            self.records[name] = EntitySchema("record", name, self.attrs(d.attrs, "record"),
                                              (), None, d.span.file, d.span.line)
        self._record_cycles(first)

    def _record_cycles(self, decls: dict[str, n.RecordDecl]) -> None:
        """A record that contains itself, directly or through others, could never be
        written down in a request: an error naming the cycle, found without recursion."""
        state: dict[str, int] = {}
        for root in self.records:
            if root in state:
                continue
            state[root], path, stack = 1, [root], [iter(self._record_refs(root))]
            while stack:
                for ref in stack[-1]:
                    if state.get(ref) == 1:
                        cycle = path[path.index(ref):] + [ref]
                        self.error(decls[ref].name.span, "E123", "record contains itself: "
                                   + " -> ".join(cycle), "a record may hold other records, "
                                   "never itself; use an id and look it up instead")
                    elif ref not in state:
                        state[ref] = 1
                        path.append(ref)
                        stack.append(iter(self._record_refs(ref)))
                        break
                else:
                    state[path.pop()] = 2
                    stack.pop()

    def _record_refs(self, name: str) -> list[str]:
        out = []
        for a in self.records[name].attrs:
            t = a.type
            while is_map(t):
                t = map_value(t)
            if t in self.records:
                out.append(t)
        return out

    def attrs(self, decls: tuple[n.AttrDecl, ...], kind: str,
              whole: bool = False) -> tuple[AttrSpec, ...]:
        """The attributes of a declaration; `whole`: every one comes from entity data."""
        out: dict[str, AttrSpec] = {}
        for a in decls:
            name = a.name.value
            if name in out:
                self.error(a.name.span, "E101", f"attribute `{name}` is declared twice")
                continue
            if name in IMPLICIT and kind in ("principal", "resource", "entity"):
                self.error(a.name.span, "E102", f"`{name}` is implicit on every {kind} and "
                           "cannot be declared")
                continue
            if a.stored and kind not in ("principal", "resource", "entity"):
                where = "the context" if kind == "context" else "a record"
                self.error(a.name.span, "E124", f"`{name}`: attributes of {where} cannot be "
                           "stored", "only principal and resource attributes come from entity "
                           "data" + ("; mark the attribute that holds the record `stored`"
                                     if kind == "record" else ""))
            spec = AttrSpec(name, self.type_of(a.type), a.optional, a.sensitive,
                            whole or a.stored and kind in ("principal", "resource"))
            if name == "roles" and kind == "principal" and spec.type not in ("set<string>", ERROR):
                self.error(a.type.span, "E121", "`roles` holds role names and must be a "
                           f"set<string>, found {spec.type}")
            out[name] = spec
        return tuple(out.values())

    def type_of(self, t: n.TypeRef) -> str:
        text = t.text()
        if text in DECLARABLE or (not t.args and t.name.value in self.records):
            return text
        if not t.args and t.name.value in self.type_kinds:  # a reference (1.2)
            return t.name.value if self.one_type(t.name) else ERROR
        if t.name.value == "set" and len(t.args) == 1 and not t.args[0].args and \
                t.args[0].name.value in self.type_kinds:
            return set_of(t.args[0].name.value) if self.one_type(t.args[0].name) else ERROR
        if t.name.value == "map" and len(t.args) == 2:
            key, value = t.args
            if key.text() != STRING:
                self.error(key.span, "E103", f"map keys are strings, found `{key.text()}`",
                           "write map<string, T>")
                return ERROR
            if value.name.value == "map":
                self.error(value.span, "E103", "a map's values cannot be maps",
                           "use a record with a map attribute, or flatten the keys")
                return ERROR
            inner = self.type_of(value)
            return ERROR if inner == ERROR else map_of(inner)
        names = [*DECLARABLE, "map<string, T>", *self.records, *self.type_kinds]
        self.error(t.span, "E103", f"unknown type `{text}`",
                   did_you_mean(text, names) or "types: " + ", ".join(names))
        return ERROR

    def one_type(self, name: n.Name) -> bool:
        """A type named as a parent or a reference: one principal, resource or entity
        type (a principal and a resource type may share a name, but not there)."""
        kinds = self.type_kinds.get(name.value)
        if kinds is None:
            self.error(name.span, "E132", f"unknown type `{name.value}`",
                       did_you_mean(name.value, self.type_kinds))
            return False
        if len(kinds) > 1:
            self.error(name.span, "E132", f"`{name.value}` is both a principal and a resource "
                       "type, so a parent or a reference of that type is ambiguous",
                       "give the two types their own names")
            return False
        return True

    def parent_types(self, names: tuple[n.Name, ...]) -> tuple[str, ...]:
        out: list[str] = []
        for name in names:
            if self.one_type(name) and name.value not in out:
                out.append(name.value)
        return tuple(out)

    def check_entities(self) -> None:
        for d in self.decls(n.PrincipalDecl):
            if self._unique(d.name, self.principals, "principal type"):
                self.principals[d.name.value] = EntitySchema(
                    "principal", d.name.value, self.attrs(d.attrs, "principal", d.stored), (),
                    None, d.span.file, d.span.line, self.parent_types(d.parents), d.stored)
        self.entities: dict[str, EntitySchema] = {}
        for d in self.decls(n.EntityDecl):
            if len(self.type_kinds.get(d.name.value, ())) > 1:
                self.error(d.name.span, "E109", f"`{d.name.value}` names an entity type and "
                           "a principal or resource type", "give each its own name")
            elif self._unique(d.name, self.entities, "entity type"):
                self.entities[d.name.value] = EntitySchema(
                    "entity", d.name.value, self.attrs(d.attrs, "entity", True), (), None,
                    d.span.file, d.span.line, self.parent_types(d.parents), True)
        contexts = self.decls(n.ContextDecl)
        for extra in contexts[1:]:
            self.error(extra.span, "E104", "a policy set has at most one `context` block",
                       f"merge it into the one at {contexts[0].span}")
        if contexts:
            c = contexts[0]
            self.context = EntitySchema("context", "context", self.attrs(c.attrs, "context"),
                                        (), None, c.span.file, c.span.line)
        for d in self.decls(n.ResourceDecl):
            if self._unique(d.name, self.resources, "resource type"):
                self.resources[d.name.value] = self.resource(d)

    def resource(self, d: n.ResourceDecl) -> EntitySchema:
        attrs = self.attrs(d.attrs, "resource", d.stored)
        actions: list[str] = []
        for a in d.actions:
            if a.value in actions:
                self.error(a.span, "E105", f"action `{a.value}` is declared twice")
            else:
                actions.append(a.value)
        if not actions:
            self.error(d.name.span, "E106", f"`{d.name.value}` declares no actions",
                       "list what the API exposes: `actions read, update`")
        owner = None
        if d.owner is not None:
            spec = {a.name: a for a in attrs}.get(d.owner.value)
            if spec is None:
                self.error(d.owner.span, "E107", f"owner attribute `{d.owner.value}` is not "
                           "declared", did_you_mean(d.owner.value, [a.name for a in attrs]))
            elif not self._owner_type(spec.type) or spec.optional:
                self.error(d.owner.span, "E108", f"owner attribute `{spec.name}` must be a "
                           "required string, set<string>, principal reference or set of "
                           f"them, found {spec.type}" + (" (optional)" if spec.optional else ""))
            else:
                owner = spec.name
        return EntitySchema("resource", d.name.value, attrs, tuple(actions), owner,
                            d.span.file, d.span.line, self.parent_types(d.parents), d.stored)

    def _owner_type(self, t: str) -> bool:
        inner = t[4:-1] if t.startswith("set<") else t
        return inner == STRING or self.type_kinds.get(inner) == {"principal"}

    def _unique(self, name: n.Name, seen: dict, what: str) -> bool:
        if name.value in seen:
            first = seen[name.value]
            where = f" (first at {first.file}:{first.line})" if hasattr(first, "file") else ""
            self.error(name.span, "E109", f"{what} `{name.value}` is declared twice{where}")
            return False
        return True
