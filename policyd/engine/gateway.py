"""A decision at the gateway, before the service has the object: the request is planned
with what the route gives (type, action, id, path attributes, stored data).

`denied` when no resource could be allowed; `allowed` when every one is, after the
action's rate rules took their tokens; `conditional` otherwise: the service finishes
the object-level check, and its `Check` counts the rate rules (nothing is counted
here). A limit rule that needs attributes the gateway does not have also leaves the
decision to the service.
"""

from __future__ import annotations

from dataclasses import dataclass

from .plan import ALWAYS_ALLOWED, ALWAYS_DENIED, Plan, make_plan
from .ratelimit import PASSED, StoreUnavailable

ALLOWED, CONDITIONAL, DENIED, LIMITED = "allowed", "conditional", "denied", "rate_limited"


@dataclass(frozen=True)
class GatewayOutcome:
    verdict: str  # allowed | conditional | denied | rate_limited
    plan: Plan
    reasons: tuple[str, ...]
    retry_after: float = 0.0


def outcome(state, plan: Plan, parts, rate_store, clock, rate_failure: str) -> GatewayOutcome:
    if plan.kind == ALWAYS_DENIED:
        return GatewayOutcome(DENIED, plan, plan.reasons)
    if plan.kind != ALWAYS_ALLOWED:
        return GatewayOutcome(CONDITIONAL, plan, ())
    limiter = state.ps.limiters.get(plan.resource_type, {}).get(plan.action)
    if limiter is None:
        return GatewayOutcome(ALLOWED, plan, plan.reasons)
    pid, P, C, ptype, rid, R = parts
    try:
        buckets = limiter(pid, P, rid or "", R, C, ptype)
    except KeyError:  # the limit reads what only the service has: its Check counts it
        return GatewayOutcome(CONDITIONAL, plan, ())
    if not buckets:
        return GatewayOutcome(ALLOWED, plan, plan.reasons)
    try:
        verdict = rate_store.acquire(buckets, clock(), False)
    except StoreUnavailable:
        if rate_failure == "open":
            return GatewayOutcome(ALLOWED, plan, plan.reasons)
        return GatewayOutcome(DENIED, plan, ("rate_store_unavailable",))
    if verdict is PASSED or not verdict.exhausted:
        return GatewayOutcome(ALLOWED, plan, plan.reasons)
    return GatewayOutcome(LIMITED, plan, ("rate_limited", *verdict.exhausted),
                          verdict.retry_after)


def refused(state, reason: str, rtype: str = "", action: str = "") -> Plan:
    """The plan-shaped record of a request refused before planning (no token, no route)."""
    return make_plan(ALWAYS_DENIED, None, {}, (reason,), state.ps.version, rtype, action)


def recorded(o: GatewayOutcome) -> Plan:
    """What the decision log says of an outcome: the plan's kind, the outcome's reasons."""
    p = o.plan
    return make_plan(p.kind, p.residual, p.visible, o.reasons, p.policy_version,
                     p.resource_type, p.action, p.warnings, p.origins)
