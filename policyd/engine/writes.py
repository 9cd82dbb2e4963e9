"""Step 6 of a decision: an allowed request that writes fields no `write` rule grants
(or fields the type does not declare) is denied, naming them; and the explained
decision, which runs every rule's condition to name all that held."""

from __future__ import annotations

from .models import EMPTY, Decision, FrozenList, make_decision
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


def explained(ps: PolicySet, field_bits: dict, parsed, wf, warnings) -> Decision:
    """Every rule that held: all denies, or all allows plus the show and write rules."""
    pid, P, rtype, rid, R, C, ptype, action = parsed
    held: dict[str, list[str]] = {e: [] for e in ("deny", "allow", "show", "write", "limit")}
    unknown = set()  # effects with a rule whose condition was unknown (kleene.py)
    for rule, value in ps.values(parsed):
        if value is True:
            held[rule.effect].append(rule.name)
        elif value is None:
            unknown.add(rule.effect)
    if held["deny"] or "deny" in unknown or not held["allow"]:
        reasons = held["deny"] + ["error"] * ("deny" in unknown) or \
            ["error" if "allow" in unknown else "default_deny"]
        return make_decision(False, FrozenList(reasons), EMPTY, 0.0, ps.version, warnings)
    if wf:
        refused = refused_writes(ps, field_bits, parsed, wf)
        if refused:
            return make_decision(False, FrozenList(refused), EMPTY, 0.0, ps.version, warnings)
    mask = ps.show[rtype](pid, P, rid, R, C, ptype, action) | 1
    reasons = held["allow"] + held["show"] + held["write"]
    return make_decision(True, FrozenList(reasons), FrozenList(ps.fields_of(rtype, mask)),
                         0.0, ps.version, warnings)
