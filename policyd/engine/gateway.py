"""A decision at the gateway, before the service has the object: the request is planned
with what the route gives (type, action, id, path attributes, stored data).

`denied` when no resource could be allowed; `allowed` when every one is, after the
action's rate rules took their tokens; `conditional` otherwise: the service finishes
the object-level check, and its `Check` counts the rate rules (nothing is counted
here). A limit rule that needs attributes the gateway does not have also leaves the
decision to the service.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .partial import Env
from .plan import ALWAYS_ALLOWED, ALWAYS_DENIED, Plan, make_plan
from .ratelimit import PASSED, StoreUnavailable
from .residual import Node, json_value

ALLOWED, CONDITIONAL, DENIED, LIMITED = "allowed", "conditional", "denied", "rate_limited"


@dataclass(frozen=True)
class GatewayOutcome:
    verdict: str  # allowed | conditional | denied | rate_limited
    plan: Plan
    reasons: tuple[str, ...]
    retry_after: float = 0.0
    # allowed (1.2): rule -> {key: JSON value} for the allow rules that hold for every
    # resource of the route, each value the gateway can compute without the resource
    outputs: dict = field(default_factory=dict)


def outcome(state, plan: Plan, parts, rate_store, clock, rate_failure: str) -> GatewayOutcome:
    if plan.kind == ALWAYS_DENIED:
        return GatewayOutcome(DENIED, plan, plan.reasons)
    if plan.kind != ALWAYS_ALLOWED:
        return GatewayOutcome(CONDITIONAL, plan, ())
    allowed = GatewayOutcome(ALLOWED, plan, plan.reasons, 0.0, known_outputs(state, plan, parts))
    limiter = state.ps.limiters.get(plan.resource_type, {}).get(plan.action)
    if limiter is None:
        return allowed
    pid, P, C, ptype, rid, R = parts
    try:
        buckets = limiter(pid, P, rid or "", R, C, ptype)
    except KeyError:  # the limit reads what only the service has: its Check counts it
        return GatewayOutcome(CONDITIONAL, plan, ())
    if not buckets:
        return allowed
    try:
        verdict = rate_store.acquire(buckets, clock(), False)
    except StoreUnavailable:
        if rate_failure == "open":
            return allowed
        return GatewayOutcome(DENIED, plan, ("rate_store_unavailable",))
    if verdict is PASSED or not verdict.exhausted:
        return allowed
    return GatewayOutcome(LIMITED, plan, ("rate_limited", *verdict.exhausted),
                          verdict.retry_after)


def known_outputs(state, plan: Plan, parts) -> dict:
    """The outputs `check` would give that do not depend on the rest of the resource: of
    each allow rule whose condition holds for every resource, the values computed from the
    principal, the context and what the route gives (the service's own `Check` has all)."""
    compiled = state.ps.planner[plan.resource_type]
    rules = compiled.outputs.get(plan.action)
    if not rules or parts is None:
        return {}
    pid, P, C, ptype, rid, R = parts
    env = Env(pid, P, C, ptype, plan.resource_type, rid, R, plan.action, state.ps.entities)
    found: dict = {}
    for name, cond, values in rules:
        try:
            if cond is not None and cond(env) is not True:
                continue
        except Exception:  # a condition the gateway cannot decide: its outputs wait
            continue
        known = {}
        for key, fn, t in values:
            try:
                v = fn(env)
            except Exception:  # a value read from data the route lacks: left out
                continue
            if not isinstance(v, Node):  # a residual: it needs the resource
                known[key] = json_value(v, t)
        if known:
            found[name] = known
    return found


def refused(state, reason: str, rtype: str = "", action: str = "") -> Plan:
    """The plan-shaped record of a request refused before planning (no token, no route)."""
    return make_plan(ALWAYS_DENIED, None, {}, (reason,), state.ps.version, rtype, action)


def recorded(o: GatewayOutcome) -> Plan:
    """What the decision log says of an outcome: the plan's kind, the outcome's reasons."""
    p = o.plan
    return make_plan(p.kind, p.residual, p.visible, o.reasons, p.policy_version,
                     p.resource_type, p.action, p.warnings, p.origins)
