"""Type checking of entities and relationships (1.2): `principal` and `resource` as
values, entity literals `Group("eng")`, reads through references, `in` through the
hierarchy, `contains` and `==` on references. A mixin of the expression checker.

An entity value is lowered to the IR of its id (a string at run time) whose type is the
entity type's name; `principal` where several principal types are declared has the
union type `A | B` and its type is read at run time (`pt`).
"""

from __future__ import annotations

from . import guards
from . import nodes as n
from .checked import IR, Const, Op
from .declarations import IMPLICIT
from .diagnostics import did_you_mean
from .schema import BOOL, ERROR, STRING, EntitySchema, element, is_set, members, union_of

FUNCTIONS = ("ip", "time", "hour", "weekday", "len", "lower")


class RelationChecks:
    # ---- what is an entity ---------------------------------------------------------

    def typed(self, name: str) -> EntitySchema | None:
        s = self.s
        return s.entities.get(name) or s.principals.get(name) or \
            (s.resources_all or {}).get(name)

    def is_entity(self, t: str) -> bool:
        return all(self.typed(m) is not None for m in members(t)) if t and t != ERROR \
            and not is_set(t) and t not in (STRING, BOOL) else False

    def entity_root(self, e: n.Root, facts) -> IR:
        """`principal` or `resource` as an entity value."""
        if e.name == "resource":
            return Op("self", (), self.s.resource.name, "resource")
        names = self.narrowed_principals(facts)
        return Op("self", (), union_of(names), "principal")

    # ---- entity literals ----------------------------------------------------------

    def entity_literal(self, e: n.Call) -> IR | None:
        """`Group("eng")`; None when the name is no entity type (a function, or unknown)."""
        name = e.func.value
        if name in FUNCTIONS or self.typed(name) is None:
            return None
        if len(e.args) != 1 or not isinstance(e.args[0], n.Literal) or \
                not isinstance(e.args[0].value, str) or not e.args[0].value:
            return self.error(e.span, "E339", f"an entity literal is the type and one id: "
                              f"`{name}(\"id\")`", "the id is a non-empty string literal")
        return Const(e.args[0].value, name)

    def unknown_call(self, e: n.Call) -> IR:
        names = [*FUNCTIONS, *self.s.entities, *self.s.principals,
                 *(self.s.resources_all or {})]
        return self.error(e.func.span, "E312", f"unknown function or entity type "
                          f"`{e.func.value}`", did_you_mean(e.func.value, names))

    # ---- reads through references --------------------------------------------------

    def deref(self, e: n.Attr, obj: IR, facts) -> IR:
        """`E.attr` where E is a reference: the attribute from the referenced entity's
        data (a reference the data lacks denies with `missing_data:PATH`)."""
        attr, path = e.name.value, guards.canon(e.obj)
        if attr in IMPLICIT:
            return Op("ref_id", (obj,), STRING) if attr == "id" else Const(obj.type, STRING)
        spec = self.ref_attr(obj.type, attr, e.name.span, path)
        if spec is None:
            return Const(None, ERROR)
        if spec.optional and guards.has_fact(e.obj, attr) not in facts:
            return self.error(e.span, "E308", f"`{path}.{attr}` is optional and may be absent",
                              f"guard the read: `{path} has {attr} and ...`")
        return Op("deref", (obj,), spec.type, (obj.type, attr, path))

    def deref_has(self, e: n.Has, obj: IR) -> IR:
        spec = self.ref_attr(obj.type, e.name.value, e.name.span, guards.canon(e.obj))
        if spec is None:
            return Const(None, ERROR)
        if not spec.optional:
            return Const(True, BOOL)
        return Op("deref_has", (obj,), BOOL, (obj.type, spec.name, guards.canon(e.obj)))

    def ref_attr(self, t: str, attr: str, span: n.Span, path: str):
        schema = self.typed(t)
        if schema is None:  # a union: only `principal` has one, read with `principal.x`
            self.error(span, "E307", f"`{path}` may be any of {t}: read its attributes as "
                       f"`principal.{attr}`")
            return None
        spec = schema.by_name.get(attr)
        if spec is None:
            self.error(span, "E311", f"`{t}` declares no attribute `{attr}`",
                       did_you_mean(attr, schema.by_name))
            return None
        if not spec.stored:
            self.error(span, "E338", f"`{t}.{attr}` is not stored, so `{path}.{attr}` cannot "
                       "be read: only entity data is known of a referenced entity",
                       f"mark it `stored` (`{attr}: {spec.type} stored`) and give it in "
                       "entity data")
            return None
        return spec

    # ---- comparisons and membership --------------------------------------------------

    def entity_compare(self, e: n.Binary, op: str, left: IR, right: IR) -> IR:
        """`==` / `!=` of two entities: the same type and id (a principal of another type
        is never equal)."""
        if not set(members(left.type)) & set(members(right.type)):
            return self.error(e.span, "E320", f"cannot compare {left.type} with {right.type}",
                              "entities are equal only when their types are")
        return Op("ref_" + op, (left, right), BOOL)

    def entity_in(self, e: n.Binary, left: IR, right: IR) -> IR:
        """`A in B` / `A in S` through the hierarchy."""
        if is_set(right.type) and self.is_entity(element(right.type)):
            target = element(right.type)
            op = "within_any"
        elif self.is_entity(right.type):
            target, op = right.type, "within"
        else:
            return self.error(e.span, "E336", f"`in` needs an entity and an entity or a set "
                              f"of entities, found {left.type} in {right.type}",
                              "compare ids with `==`, or test a set of strings with the "
                              "id: `principal.id in S`" if right.type.startswith("set<") else
                              None)
        reach = [m for m in members(left.type) if self.may_reach(m, set(members(target)))]
        if not reach:
            return self.error(e.span, "E337", f"`{guards.canon(e.left)} in "
                              f"{guards.canon(e.right)}` can never hold: no {left.type} is a "
                              f"{target} or has a {target} among its ancestors",
                              f"declare the parent types: `... {left.type} in {target}`")
        return Op(op, (left, right), BOOL)

    def may_reach(self, start: str, targets: set[str]) -> bool:
        """Whether an entity of type `start` may be one of `targets` or below one."""
        seen, todo = {start}, [start]
        while todo:
            t = todo.pop()
            if t in targets:
                return True
            schema = self.typed(t)
            for p in schema.parents if schema else ():
                if p not in seen:
                    seen.add(p)
                    todo.append(p)
        return False

    def entity_member(self, e: n.Binary, x: IR, s: IR) -> IR:
        """`S contains x` on a set of references: type and id, no hierarchy."""
        if not set(members(x.type)) & {element(s.type)}:
            return self.error(e.span, "E325", f"`{e.op}` needs an element and a set of that "
                              f"type, found {s.type} contains {x.type}")
        return Op("ref_member", (x, s), BOOL)

    # ---- narrowing -------------------------------------------------------------------

    def narrowed_principals(self, facts) -> list[str]:
        """The principal types a read may be of: all, or those `principal.type == "T"`
        established (facts `("type", "principal", names)`)."""
        names = list(self.s.principals)
        for f in facts or ():
            if len(f) == 3 and f[0] == "type" and f[1] == "principal":
                names = [x for x in names if x in f[2]]
        return names
