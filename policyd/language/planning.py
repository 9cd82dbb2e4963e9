"""What query planning reads of a checked set: per resource type and action the deny
and allow conditions in decision order, the show rules, and the map lookups whose only
unknown is their key.

A plan is a partial evaluation of these conditions (policyd.engine.planner). It needs
the conditions as data, so this is the one view of the typed IR that outlives code
generation; it is built once, at compile time.
"""

from __future__ import annotations

from dataclasses import dataclass

from .checked import CheckedSet, Op, Read

_KEYED = {"index": (0, 1), "index_or_empty": (0, 1), "has_key": (1, 0)}  # (map, key) args


@dataclass(frozen=True, slots=True)
class PlanRule:
    name: str
    cond: object  # IR, or None: always holds
    fields: tuple[str, ...] = ()  # show rules: the fields they grant
    effect: str = ""
    actions: tuple[str, ...] = ()
    output: tuple = ()  # allow rules (1.2): (key, IR) pairs, what a gateway may forward


@dataclass(frozen=True, slots=True)
class KeyedLookup:
    """A condition whose only reference to the resource is one attribute used as the key
    of maps that do not depend on the resource (`principal.roles_in[resource.ws] is
    admin`): it is decided by trying each key of those maps, and one key they lack."""

    path: tuple[str, ...]
    maps: tuple  # the IR of each map, evaluable without the resource


@dataclass(frozen=True)
class TypePlan:
    fields: tuple[str, ...]  # ("id", *attributes)
    actions: dict[str, tuple[tuple[PlanRule, ...], tuple[PlanRule, ...]]]  # -> denies, allows
    shows: tuple[PlanRule, ...]
    # (the show rules that grant them, fields) groups, in declaration order of their first
    grants: tuple[tuple[tuple[int, ...], tuple[str, ...]], ...] = ()
    every: tuple[PlanRule, ...] = ()  # all the type's rules, in source order (explanations)


@dataclass(frozen=True)
class PlanProgram:
    types: dict[str, TypePlan]
    keyed: dict[int, KeyedLookup]  # id() of an IR node of these rules -> how to enumerate it
    role_of: dict = None  # the roles satisfying `is R` -> R (how explanations print it)


def build_program(cs: CheckedSet) -> PlanProgram:
    types, keyed = {}, {}
    for name, res in cs.resources.items():
        rules = cs.rules.get(name, ())
        actions = {}
        for action in res.actions:
            denies = tuple(PlanRule(r.name, r.cond) for r in rules
                           if r.effect == "deny" and action in r.actions)
            allows = tuple(PlanRule(r.name, r.cond, output=r.output) for r in rules
                           if r.effect == "allow" and action in r.actions)
            actions[action] = (denies, allows)
        shows = tuple(PlanRule(r.name, r.cond, r.fields) for r in rules if r.effect == "show")
        groups: dict[tuple[int, ...], list[str]] = {}
        for f in res.fields:
            groups.setdefault(tuple(i for i, r in enumerate(shows) if f in r.fields),
                              []).append(f)
        grants = tuple((rules, tuple(fs)) for rules, fs in groups.items() if rules)
        every = tuple(PlanRule(r.name, r.cond, r.fields, r.effect, r.actions) for r in rules)
        types[name] = TypePlan(("id",) + res.fields, actions, shows, grants, every)
        for r in rules:
            if r.cond is not None and r.effect in ("allow", "deny", "show"):
                _uses(r.cond, keyed)
    return PlanProgram(types, keyed, {v: k for k, v in cs.roles.computed().items()})


def _uses(ir, keyed: dict) -> frozenset:
    """How `ir` reads the resource: ("attr", path) for a plain read, ("key", path, map)
    for an attribute used only as a map key. Records the keyed boolean nodes."""
    if isinstance(ir, Read):
        return frozenset({("attr", ir.path)}) if ir.entity == "resource" else frozenset()
    if not isinstance(ir, Op):
        return frozenset()
    if ir.op in ("owns",):
        return frozenset({("attr", (ir.data[0],))})
    if ir.op == "has":
        entity, attr = ir.data
        return frozenset({("attr", (attr,))}) if entity == "resource" else frozenset()
    out: frozenset = frozenset()
    if ir.op in _KEYED:
        m, k = (ir.args[i] for i in _KEYED[ir.op])
        map_uses = _uses(m, keyed)
        if not map_uses and isinstance(k, Read) and k.entity == "resource":
            out = frozenset({("key", k.path, m)})
        else:
            out = map_uses | _uses(k, keyed)
    else:
        for arg in ir.args:
            out |= _uses(arg, keyed)
    paths = {u[1] for u in out}
    if ir.type == "bool" and out and len(paths) == 1 and all(u[0] == "key" for u in out):
        keyed[id(ir)] = KeyedLookup(next(iter(paths)), tuple(u[2] for u in out))
    return out


def rules_with_in(plans) -> dict:
    """Rule name -> condition, for the rules whose condition has an `in` through the
    hierarchy (built once per set)."""
    return {rule.name: rule.cond for tp in plans.types.values() for rule in tp.every
            if rule.cond is not None and _has_in(rule.cond)}


def _has_in(ir) -> bool:
    todo = [ir]
    while todo:
        node = todo.pop()
        if isinstance(node, Op):
            if node.op in ("within", "within_any"):
                return True
            todo.extend(node.args)
    return False
