"""Prometheus metrics for `policyd serve --metrics-port N`.

Labels carry only names the policy declares (resource types, actions, rule
names) and fixed codes: never principal or resource ids, and never a name a
client made up (an undeclared type or action is counted as `_unknown`), so a
client cannot blow up the number of series.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client import ProcessCollector as _Process

from .tally import SECONDS_BUCKETS, DecisionTally

UNKNOWN = "_unknown"


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        _Process(registry=r)
        self.tally = DecisionTally()  # decisions and their durations: per thread, no lock
        r.register(self.tally)
        self.plans = Counter("policyd_plans", "Query plans made",
                             ["resource", "action", "kind"], registry=r)
        self.plan_seconds = Histogram("policyd_plan_seconds", "Time to make one query plan",
                                      buckets=SECONDS_BUCKETS, registry=r)
        self.gateway_decisions = Counter("policyd_gateway_decisions",
                                         "Envoy external authorization answers",
                                         ["verdict"], registry=r)
        self.shadow_disagreements = Counter(
            "policyd_shadow_disagreements", "Decisions the --shadow set made differently",
            ["resource", "action"], registry=r)
        self.rate_limited = Counter("policyd_rate_limited", "Decisions denied by a limit rule",
                                    ["rule"], registry=r)
        self.request_errors = Counter("policyd_request_errors", "Requests refused before a "
                                      "decision", ["code"], registry=r)
        self.reloads = Counter("policyd_policy_reloads", "Policy reloads", ["result"],
                               registry=r)
        self.policy_info = Gauge("policyd_policy_info", "The policy set serving (1)",
                                 ["version"], registry=r)
        self.log_dropped = Counter("policyd_decision_log_dropped",
                                   "Decision log records dropped because the queue was full",
                                   registry=r)
        self._version = None
        self._declared: dict[str, frozenset] = {}

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        start_http_server(port, addr=host, registry=self.registry)

    def policy(self, schema, version: str) -> None:
        """The set now serving: its version, and the names labels may carry."""
        self._declared = {name: frozenset(r.actions) for name, r in schema.resources.items()}
        if self._version is not None:
            self.policy_info.remove(self._version)
        self.policy_info.labels(version).set(1)
        self._version = version

    def decision(self, rtype, action, decision, seconds: float) -> None:
        actions = self._declared.get(rtype)
        if actions is None:
            rtype, action = UNKNOWN, UNKNOWN
        elif action not in actions:
            action = UNKNOWN
        self.tally.add((rtype, action, decision.allowed), seconds)
        reasons = decision.reasons
        if not decision.allowed and "rate_limited" in reasons:
            for rule in reasons[list(reasons).index("rate_limited") + 1:]:
                self.rate_limited.labels(rule).inc()

    def plan(self, rtype, action, kind: str, seconds: float) -> None:
        actions = self._declared.get(rtype)
        if actions is None:
            rtype, action = UNKNOWN, UNKNOWN
        elif action not in actions:
            action = UNKNOWN
        self.plans.labels(rtype, action, kind).inc()
        self.plan_seconds.observe(seconds)

    def shadow(self, rtype, action) -> None:
        actions = self._declared.get(rtype)
        if actions is None:
            rtype, action = UNKNOWN, UNKNOWN
        elif action not in actions:
            action = UNKNOWN
        self.shadow_disagreements.labels(rtype, action).inc()

    def gateway(self, verdict: str) -> None:
        """allowed, conditional, denied (401/403/404) or rate_limited."""
        self.gateway_decisions.labels(verdict).inc()

    def request_error(self, code: str) -> None:
        self.request_errors.labels(code).inc()

    def reload(self, result: str) -> None:
        self.reloads.labels(result).inc()
