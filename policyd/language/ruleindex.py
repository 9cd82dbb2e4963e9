"""Rule indexing for large sets (OPA calls it the same): deny rules whose condition
requires `resource.a == constant` (or `principal.a == constant`) are grouped by that
attribute, so a decision looks up its value and evaluates only the rules written for
it; every other rule of the group is false without being run.

Used for a (type, action) only when at least INDEX_MIN denies share an attribute, so
the generated code of ordinary sets is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from .checked import Const, Op, Read

INDEX_MIN = 16
_SCALARS = ("string", "number", "bool")


@dataclass(frozen=True)
class Indexed:
    position: int  # the rule's place among the action's denies: reasons keep source order
    rule: object  # CheckedRule
    value: object  # the constant the attribute must equal
    rest: tuple  # the other conjuncts, in order (empty: the equality alone decides)


def conjuncts(ir) -> list:
    """The top-level `and` chain of a condition, left to right."""
    if isinstance(ir, Op) and ir.op == "and":
        return [c for arg in ir.args for c in conjuncts(arg)]
    return [ir]


def _equality(ir) -> tuple[tuple[str, str], object] | None:
    if not (isinstance(ir, Op) and ir.op == "eq" and len(ir.args) == 2):
        return None
    a, b = ir.args
    read, const = (a, b) if isinstance(a, Read) else (b, a)
    if isinstance(read, Read) and isinstance(const, Const) and \
            read.entity in ("resource", "principal") and len(read.path) == 1 and \
            read.type in _SCALARS and const.type == read.type:
        return (read.entity, read.path[0]), const.value
    return None


def discriminant(rule) -> tuple[tuple[str, str], object, tuple] | None:
    """(attribute, value, the rest) when the rule holds only if attribute == value."""
    if rule.cond is None:
        return None
    parts = conjuncts(rule.cond)
    for i, part in enumerate(parts):
        found = _equality(part)
        if found is not None:
            return found[0], found[1], tuple(parts[:i] + parts[i + 1:])
    return None


def plan_index(denies: list, minimum: int = INDEX_MIN) -> tuple[dict, list]:
    """({attribute: [Indexed...]}, [(position, rule) not indexed])."""
    found: dict[tuple[str, str], list[Indexed]] = {}
    for pos, rule in enumerate(denies):
        d = discriminant(rule)
        if d is not None:
            found.setdefault(d[0], []).append(Indexed(pos, rule, d[1], d[2]))
    groups = {attr: items for attr, items in found.items() if len(items) >= minimum}
    taken = {i.position for items in groups.values() for i in items}
    rest = [(pos, r) for pos, r in enumerate(denies) if pos not in taken]
    return groups, rest
