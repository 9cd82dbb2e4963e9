"""Code for entities and relationships (1.2): a mixin of the code generator.

An entity value is its id; its type is a constant, except for `principal` where several
principal types are declared (`pt`). `in` and reads through references call the set's
entity data, the module global `_g` (engine.entities.EntityData), whose ancestors are
computed once per data version; `P` or `R` is passed where the request may have sent
the principal's or resource's own parents.
"""

from __future__ import annotations

from .checked import Op

RELATION_OPS = ("self", "ref_id", "ref_eq", "ref_ne", "ref_member", "within", "within_any",
                "deref", "deref_has")


def entity_type(ir) -> str:
    """Python text of an entity value's type."""
    if isinstance(ir, Op) and ir.op == "self" and ir.data == "principal" and " | " in ir.type:
        return "pt"
    return repr(ir.type)


def own(ir, cs) -> str:
    """`P` / `R` for the request's principal / resource where a request may send its
    parents (a type with parent types, not stored as a whole), else None."""
    if isinstance(ir, Op) and ir.op == "self":
        types = ir.type.split(" | ")
        if any(cs.typed(t).parents and not cs.typed(t).whole for t in types):
            return "P" if ir.data == "principal" else "R"
    return "None"


def _typed(ir) -> bool:
    """Whether the type is known only at run time (so equality tests it)."""
    return entity_type(ir) == "pt"


class RelationCode:
    def relation(self, ir: Op, a: list[str]) -> str:
        op = ir.op
        if op == "self":
            return "pid" if ir.data == "principal" else "rid"
        if op == "ref_id":
            return a[0]
        if op in ("ref_eq", "ref_ne"):
            x, y = ir.args
            same = f"({a[0]} == {a[1]})"
            if _typed(x) or _typed(y):
                same = f"({entity_type(x)} == {entity_type(y)} and {a[0]} == {a[1]})"
            return same if op == "ref_eq" else f"(not {same})"
        if op == "ref_member":  # S contains x: type and id, no hierarchy
            x, s = ir.args
            element = s.type[4:-1]
            if _typed(x):
                return f"({entity_type(x)} == {element!r} and {a[0]} in {a[1]})"
            return f"({a[0]} in {a[1]})"
        if op in ("within", "within_any"):
            x, y = ir.args
            target = entity_type(y) if op == "within" else repr(y.type[4:-1])
            call = "inside" if op == "within" else "inside_any"
            return f"_g.{call}({entity_type(x)}, {a[0]}, {own(x, self.cs)}, {target}, {a[1]})"
        t, attr, path = ir.data
        if op == "deref":
            return f"_g.entity({t!r}, {a[0]}, {path!r})[{attr!r}]"
        return f"({attr!r} in _g.entity({t!r}, {a[0]}, {path!r}))"  # deref_has
