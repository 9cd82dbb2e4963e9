"""`policyd serve PATH --shadow NEWPATH`: every decision is also made with the new set,
the caller gets PATH's, and each disagreement is logged and counted. It is how a new set
is tried against live traffic before the switch.

The shadow set decides with a store that always has tokens, so rate rules never count
twice; rate-limited decisions are not compared (the limit, not the rules, decided them).
"""

from __future__ import annotations

import json
import logging

from ..engine import Engine
from ..engine.models import Decision, RequestError
from ..engine.ratelimit import Unlimited

log = logging.getLogger("policyd.shadow")


def shadow_engine(path, data=(), max_string_bytes: int = 4096) -> Engine:
    from ..engine.compiler import compile_path

    return Engine(compile_path(path, max_string_bytes, data), rate_store=Unlimited())


class Shadow:
    def __init__(self, engine: Engine, metrics=None):
        self.engine, self.metrics = engine, metrics

    def compare(self, request: dict, decision: Decision, decision_id: str) -> None:
        """Decide `request` with the shadow set; log and count a disagreement. Never
        raises: the shadow must not fail the caller's decision."""
        try:
            if "rate_limited" in decision.reasons or "rate_store_unavailable" in \
                    decision.reasons:
                return
            try:
                other: Decision | str = self.engine.check(request)
            except RequestError as exc:
                other = str(exc)
            if type(other) is not str and other.allowed == decision.allowed and \
                    other.reasons == decision.reasons and \
                    other.visible_fields == decision.visible_fields:
                return
            resource, action = request.get("resource") or {}, request.get("action")
            if log.isEnabledFor(logging.WARNING):
                log.warning("shadow disagrees: %s", json.dumps({
                    "decision_id": decision_id, "resource_type": resource.get("type"),
                    "action": action, "serving": _describe(decision),
                    "shadow": _describe(other), "serving_version": decision.policy_version,
                    "shadow_version": self.engine.version}))
            if self.metrics is not None:
                self.metrics.shadow(resource.get("type"), action)
        except Exception as exc:  # the shadow is advisory
            log.error("shadow decision failed: %s: %s", type(exc).__name__, exc)


def _describe(d: Decision | str) -> dict:
    if isinstance(d, str):
        return {"invalid": d}
    return {"allowed": d.allowed, "reasons": list(d.reasons),
            "visible_fields": list(d.visible_fields)}
