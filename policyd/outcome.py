"""Pieces of a decision that are not the hot path: refused writes, unknown roles, the
explanation of an invalid request, and where a failure happened in the policy."""

from __future__ import annotations

from typing import Any

from .compiler import PolicySet
from .models import FrozenList
from .validation import explain


def unknown_roles(roles, role_names: frozenset) -> FrozenList:
    return FrozenList(f"unknown_role:{r}" for r in sorted(set(roles) - role_names))


def refused_writes(ps: PolicySet, field_bits: dict, parsed, wf: list[str]) -> list[str] | None:
    """`unknown_field:...` and `not_writable:...` for the fields no write rule grants."""
    pid, P, rtype, rid, R, C, ptype, action = parsed
    granted = ps.write[rtype](pid, P, rid, R, C, ptype, action)
    wanted = list(dict.fromkeys(wf))
    unknown = [f for f in wanted if f not in field_bits and f != "type"]
    refused = [f for f in wanted if f not in unknown and not granted & field_bits.get(f, 0)]
    reasons = []
    if unknown:
        reasons.append("unknown_field:" + ",".join(unknown))
    if refused:
        reasons.append("not_writable:" + ",".join(refused))
    return reasons or None


def held_rules(ps: PolicySet, parsed) -> list:
    """Every rule of the type whose condition holds: allow, deny and limit rules of the
    action, show and write rules whatever the action (explain and test coverage)."""
    pid, P, rtype, rid, R, C, ptype, action = parsed
    conditions = ps.conditions
    return [rule for rule in ps.checked.rules.get(rtype, ())
            if (action in rule.actions or rule.effect in ("show", "write"))
            and conditions[rule.name](pid, P, rid, R, C, ptype, action)]


def explain_request(ps: PolicySet, request: Any) -> str:
    try:
        return explain(ps.checked, request)
    except Exception:  # the explanation is best effort; the refusal is not
        return "invalid request"


def policy_location(ps: PolicySet, exc: Exception) -> str:
    tb = exc.__traceback__
    where = "engine"
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.startswith("<policyd "):
            found = ps.policy_location(filename, tb.tb_lineno)
            if found:
                where = f"{found[0]}:{found[1]}"
        tb = tb.tb_next
    return where


