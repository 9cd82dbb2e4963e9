"""Outputs (1.2): what a decision tells its caller to do, from the `output { ... }` of the
rules that decided it: every allow rule that holds when it is allowed (not only the
first), the deny rules that held when a deny rule denied it. Values are JSON (ips and
times as text, sets as sorted lists). A decision with outputs is never memoised."""

from __future__ import annotations

from .models import Decision, make_decision
from .residual import json_value


def with_outputs(ps, decision: Decision, items: tuple, args: tuple) -> Decision:
    """`decision` with the outputs of its deciding rules (the same decision when none of
    them has any); raises when an output cannot be computed."""
    found: dict = {}
    if decision.allowed:
        conditions = ps.conditions
        for effect, rule, fn, keys, types in items:
            if effect == "allow" and conditions[rule](*args) is True:
                found[rule] = _values(fn(*args), keys, types)
    else:
        held = set(decision.reasons)
        for effect, rule, fn, keys, types in items:
            if effect == "deny" and rule in held:
                found[rule] = _values(fn(*args), keys, types)
    if not found:
        return decision
    return make_decision(decision.allowed, decision.reasons, decision.visible_fields,
                         decision.retry_after, decision.policy_version, decision.warnings,
                         found)


def _values(values: tuple, keys: tuple, types: tuple) -> dict:
    return {k: json_value(v, t) for k, v, t in zip(keys, values, types, strict=True)}
