"""Step 6 of a decision: an allowed request that writes fields no `write` rule grants
(or fields the type does not declare) is denied, naming them."""

from __future__ import annotations

from .policyset import PolicySet


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
