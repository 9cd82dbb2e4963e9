"""policyd.v1.DecisionService: Check, CheckBatch and PlanResources over the engine.

Whatever a client sends, the service answers with a status and keeps serving:
bytes that do not decode and invalid requests are INVALID_ARGUMENT, a batch over
the bound INVALID_ARGUMENT before any work, and an unexpected failure a deny
with reason `error`, logged once per kind.
"""

from __future__ import annotations

import json
import logging
import time

import grpc

from .. import wire
from .._proto.policyd.v1 import policyd_pb2 as pb
from ..authn import JwtVerifier, TokenError
from ..engine import Engine
from ..engine.models import RequestError
from .metrics import Metrics
from .services import Service

log = logging.getLogger("policyd.server")


class DecisionServicer:
    def __init__(self, engine: Engine, metrics: Metrics | None = None,
                 max_batch_decisions: int = 1000, verifier: JwtVerifier | None = None,
                 shadow=None):
        self.engine, self.shadow = engine, shadow
        self.metrics = metrics
        self.max_batch_decisions = max_batch_decisions
        self.verifier = verifier
        self._logged: set[str] = set()

    def _token_principal(self, msg, context: grpc.ServicerContext) -> dict | None:
        """The principal of `principal_token`, if sent; aborts the call when it is refused
        (outside any try: abort raises)."""
        if not msg.principal_token:
            return None
        problem, code = None, grpc.StatusCode.INVALID_ARGUMENT
        if msg.HasField("principal"):
            problem = "send a principal or a principal_token, not both"
        elif self.verifier is None:
            problem = "principal_token needs [authn.jwt] in the server's --config"
        else:
            try:
                return self.verifier.verify(msg.principal_token)
            except TokenError as exc:
                problem, code = f"principal_token refused: {exc}", \
                    grpc.StatusCode.UNAUTHENTICATED
        self._error("invalid_token" if code != grpc.StatusCode.INVALID_ARGUMENT
                    else "invalid_argument")
        context.abort(code, problem)

    # context.abort() raises a plain Exception: it is only ever called outside a try.

    def check(self, msg, context: grpc.ServicerContext) -> pb.CheckResponse:
        if isinstance(msg, wire.Undecodable):
            self._error("undecodable")
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"not a CheckRequest: {msg.error}")
        from_token = self._token_principal(msg, context)
        t0 = time.perf_counter()
        try:
            request = wire.request_dict(msg)
            if from_token is not None:
                request["principal"] = from_token
            peer = context.peer() if self.engine.decision_sink is not None else ""
            decision, decision_id = self.engine.decide(request, request_id=msg.request_id,
                                                       peer=peer)
            if self.metrics is not None:
                self.metrics.decision(msg.resource.type, msg.action, decision,
                                      time.perf_counter() - t0)
            if self.shadow is not None:
                self.shadow.compare(request, decision, decision_id)
            if not msg.explain:
                return wire.response_bytes(decision, decision_id)
            out = wire.response(decision, decision_id)  # explained: off the hot path
            out.explanation = json.dumps(self.engine.explain(request)["rules"])
            return out
        except RequestError as exc:
            problem = str(exc)
        except Exception as exc:  # never a traceback per request, never an allow
            return self._failed(exc)
        self._error("invalid_argument")
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)

    def check_batch(self, msg, context: grpc.ServicerContext) -> pb.CheckBatchResponse:
        if isinstance(msg, wire.Undecodable):
            self._error("undecodable")
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"not a CheckBatchRequest: {msg.error}")
        asked = batch_size(msg)
        if asked > self.max_batch_decisions:  # bound the work before doing any
            self._error("batch_too_large")
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"CheckBatch asks for {asked:,} decisions (items x actions); at most "
                          f"{self.max_batch_decisions:,} per call (--max-batch-decisions)")
        from_token = self._token_principal(msg, context)
        t0 = time.perf_counter()
        try:
            principal, items, ctx = wire.batch_parts(msg)
            if from_token is not None:
                principal = from_token
            peer = context.peer() if self.engine.decision_sink is not None else ""
            results = self.engine.decide_batch(principal, items, ctx, msg.dry_run,
                                               request_id=msg.request_id, peer=peer)
            out = pb.CheckBatchResponse()
            add = out.results.add
            for d, decision_id in results:  # built in place: adding a made message copies it
                add(allowed=d.allowed, reasons=d.reasons, visible_fields=d.visible_fields,
                    retry_after=d.retry_after, policy_version=d.policy_version,
                    decision_id=decision_id, warnings=d.warnings)
            if self.metrics is not None and results:
                each = (time.perf_counter() - t0) / len(results)
                pairs = ((item["resource"].get("type"), a) for item in items
                         for a in item["actions"])
                for (rtype, action), (d, _) in zip(pairs, results, strict=True):
                    self.metrics.decision(rtype, action, d, each)
            if self.shadow is not None:
                self._shadow_batch(principal, items, ctx, msg.dry_run, results)
            return out
        except RequestError as exc:
            problem = f"CheckBatch: {exc}"
        except Exception as exc:
            pairs = sum(len(item.actions) for item in msg.items)
            return pb.CheckBatchResponse(results=[self._failed(exc) for _ in range(pairs)])
        self._error("invalid_argument")
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)

    def plan_resources(self, msg, context: grpc.ServicerContext) -> pb.PlanResponse:
        if isinstance(msg, wire.Undecodable):
            self._error("undecodable")
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"not a PlanRequest: {msg.error}")
        t0 = time.perf_counter()
        try:
            request = wire.plan_request_dict(msg)
            peer = context.peer() if self.engine.decision_sink is not None else ""
            found, decision_id = self.engine.decide_plan(request, request_id=msg.request_id,
                                                         peer=peer)
            if self.metrics is not None:
                self.metrics.plan(msg.resource.type, msg.action, found.kind,
                                  time.perf_counter() - t0)
            return wire.plan_response(found, decision_id)
        except RequestError as exc:
            problem = f"PlanResources: {exc}"
        except Exception as exc:  # fail closed: a plan that could not be made denies all
            key = type(exc).__name__
            if key not in self._logged:
                self._logged.add(key)
                log.error("plan failed closed: %s: %s", key, exc)
            return pb.PlanResponse(kind=pb.PlanResponse.ALWAYS_DENIED, reasons=["error"],
                                   decision_id=self.engine.ids(),
                                   policy_version=self.engine.version)
        self._error("invalid_argument")
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)

    def _shadow_batch(self, principal, items, ctx, dry_run, results) -> None:
        pairs = ((item, a) for item in items for a in item["actions"])
        for (item, action), (d, decision_id) in zip(pairs, results, strict=True):
            request = {"principal": principal, "action": action, "resource": item["resource"]}
            if ctx is not None:
                request["context"] = ctx
            if item.get("write_fields"):
                request["write_fields"] = item["write_fields"]
            self.shadow.compare(request, d, decision_id)

    def _error(self, code: str) -> None:
        if self.metrics is not None:
            self.metrics.request_error(code)

    def _failed(self, exc: Exception) -> pb.CheckResponse:
        key = type(exc).__name__
        if key not in self._logged:
            self._logged.add(key)
            log.error("request failed closed: %s: %s", key, exc)
        return pb.CheckResponse(allowed=False, reasons=["error"], decision_id=self.engine.ids(),
                                policy_version=self.engine.version)


def batch_size(msg) -> int:
    """Decisions a CheckBatch asks for: an item without actions still costs validation."""
    return sum(max(1, len(item.actions)) for item in msg.items)


def decision_service(engine: Engine, metrics: Metrics | None = None,
                     max_batch_decisions: int = 1000,
                     verifier: JwtVerifier | None = None, shadow=None) -> Service:
    servicer = DecisionServicer(engine, metrics, max_batch_decisions, verifier, shadow)
    return Service(wire.SERVICE, {
        "Check": grpc.unary_unary_rpc_method_handler(
            servicer.check, request_deserializer=wire.safe_parser(pb.CheckRequest),
            response_serializer=wire.serialized),
        "CheckBatch": grpc.unary_unary_rpc_method_handler(
            servicer.check_batch, request_deserializer=wire.safe_parser(pb.CheckBatchRequest),
            response_serializer=pb.CheckBatchResponse.SerializeToString),
        "PlanResources": grpc.unary_unary_rpc_method_handler(
            servicer.plan_resources, request_deserializer=wire.safe_parser(pb.PlanRequest),
            response_serializer=pb.PlanResponse.SerializeToString),
    })
