"""The decisions of step 8 when a rate rule refuses: an exhausted bucket, or a store that
cannot answer under the `closed` failure mode. Deny reasons already given are kept,
and the version of the set that decided."""

from __future__ import annotations

from .models import EMPTY, Decision, FrozenList, make_decision


def rate_limited(decision: Decision, verdict) -> Decision:
    if not verdict.exhausted:
        return decision
    kept = [] if decision.allowed else list(decision.reasons)
    return make_decision(False, FrozenList(kept + ["rate_limited", *verdict.exhausted]),
                         EMPTY, verdict.retry_after, decision.policy_version, decision.warnings)


def store_unavailable(decision: Decision) -> Decision:
    kept = [] if decision.allowed else list(decision.reasons)
    return make_decision(False, FrozenList(kept + ["rate_store_unavailable"]), EMPTY, 0.0,
                         decision.policy_version, decision.warnings)
