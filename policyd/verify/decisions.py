"""A set's decision for one request shape as z3 terms, combined as `check` combines it:
a deny that holds wins, else an allow that holds allows, else the default deny; the
visible fields of an allowed decision by the show rules (every field when a type has
none), its writable fields by the write rules."""

from __future__ import annotations

import z3

from .encode import Encoder, Shape
from .terms import Unsupported


class Decision:
    """allowed, visible[field] and writable[field] of one set over one Shape."""

    def __init__(self, ps, shape: Shape):
        tp = ps.plans.types[shape.rtype]
        self.encoder = Encoder(shape)
        self.shape = shape
        denies, allows = tp.actions[shape.action]
        self.denies = [(r.name, self.cond(r, deny=True)) for r in denies]
        self.allows = [(r.name, self.cond(r)) for r in allows]
        self.allowed = z3.And(z3.Not(z3.Or(*[c for _, c in self.denies])),
                              z3.Or(*[c for _, c in self.allows]))
        fields = tp.fields
        shows = [(r, self.cond(r)) for r in tp.every if r.effect == "show"]
        writes = [(r, self.cond(r)) for r in tp.every if r.effect == "write"]
        self.visible = {f: z3.And(self.allowed, z3.Or(*[c for r, c in shows if f in r.fields])
                                  if shows and f != "id" else z3.BoolVal(True))
                        for f in fields}
        self.writable = {f: z3.And(self.allowed, z3.Or(*[c for r, c in writes
                                                         if f in r.fields]))
                         for f in fields if f != "id"}

    def cond(self, rule, deny: bool = False):
        """When the rule applies: its condition true; for a deny, true or unknown (an
        unknown deny denies, with reason `error`)."""
        if rule.cond is None:
            return z3.BoolVal(True)
        held, failed = self.encoder.truth(rule.cond)
        return z3.Not(failed) if deny else held


def shapes(ps, rtype: str | None = None, actions=None):
    """Every (principal type, resource type, action) a set decides, narrowed."""
    schema = ps.schema
    for rt, res in schema.resources.items():
        if rtype is not None and rt != rtype:
            continue
        for action in res.actions:
            if actions and action not in actions:
                continue
            for pt in schema.principals:
                yield pt, rt, action


def supported(ps, pt: str, rt: str) -> None:
    """Raise Unsupported for what the model leaves out: relationships. (Stored attributes
    are free: the model speaks of every possible entity data.)"""
    for spec in (ps.schema.principals[pt], ps.schema.resources[rt]):
        if spec.parents or any(ps.schema.typed(a.type.removeprefix("set<").rstrip(">"))
                               is not None for a in spec.attrs):
            raise Unsupported(f"relationships ({spec.name} in ...)")
