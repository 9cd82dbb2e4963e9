"""A resource type's rules as plan closures (engine.partial), built once per policy set
on its first plan: per action the deny and allow conditions in decision order, the show
rules and their field groups, and (1.2) the outputs a gateway may tell the service."""

from __future__ import annotations

from .partial import Compiler


class CompiledType:
    """One resource type's rules as (name, closure or None for `always`) pairs."""

    __slots__ = ("fields", "actions", "shows", "grants", "optional", "fallible", "outputs")

    def __init__(self, fields, actions, shows, grants, optional=frozenset(), fallible=True,
                 outputs=None):
        self.fields, self.actions, self.shows, self.grants = fields, actions, shows, grants
        self.optional = optional  # attribute paths that may be absent (a plan's SQL guard)
        self.fallible = fallible  # False: no condition can be UNKNOWN (no `truthy` needed)
        # action -> ((rule, condition, ((key, closure, type), ...)), ...): allow rules
        # with an `output`, in source order
        self.outputs = outputs or {}


def optional_paths(schema, records: dict, prefix: tuple = (),
                   inherited: bool = False) -> frozenset[str]:
    """The attribute paths of a type that may be absent: optional themselves, or inside
    an optional record."""
    out: set[str] = set()
    for a in schema.attrs:
        path, may = prefix + (a.name,), inherited or a.optional
        if may:
            out.add(".".join(path))
        inner = records.get(a.type)
        if inner is not None:
            out |= optional_paths(inner, records, path, may)
    return frozenset(out)


def compile_rules(program, schema) -> dict[str, CompiledType]:
    out = {}
    for rtype, tp in program.types.items():
        c = Compiler(schema.resources[rtype], schema.records, program.keyed, schema.runtime)

        def pair(rule, c=c):
            return rule.name, None if rule.cond is None else c.fn(rule.cond)
        actions = {a: (tuple(map(pair, denies)), tuple(map(pair, allows)))
                   for a, (denies, allows) in tp.actions.items()}
        shows = tuple(map(pair, tp.shows))
        outputs = {a: tuple((r.name, pair(r)[1], tuple((k, c.fn(ir), ir.type)
                                                      for k, ir in r.output))
                            for r in allows if r.output)
                   for a, (_, allows) in tp.actions.items()}
        optional = optional_paths(schema.resources[rtype], schema.records)
        if c.parent_column:  # a row may have no parent: `in` is then false, never NULL
            optional |= {"parent"}
        out[rtype] = CompiledType(tp.fields, actions, shows, tp.grants, optional,
                                  c.fallible, {a: o for a, o in outputs.items() if o})
    return out
