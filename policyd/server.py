"""The gRPC decision service: build the server in one function, run it in another.

Whatever a client sends, the server answers with a status and keeps serving:
bytes that do not decode and invalid requests are INVALID_ARGUMENT, oversized
messages RESOURCE_EXHAUSTED (grpc core), and an unexpected failure a deny with
reason `error`, logged once per kind.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from . import wire
from ._proto.policyd.v1 import policyd_pb2 as pb
from .audit import DecisionLog
from .config import ServeConfig
from .engine import Engine
from .metrics import Metrics
from .models import RequestError
from .reload import PolicyWatcher

log = logging.getLogger("policyd.server")


class DecisionServicer:
    def __init__(self, engine: Engine, metrics: Metrics | None = None):
        self.engine = engine
        self.metrics = metrics
        self._logged: set[str] = set()

    # context.abort() raises a plain Exception: it is only ever called outside a try.

    def check(self, msg, context: grpc.ServicerContext) -> pb.CheckResponse:
        if isinstance(msg, wire.Undecodable):
            self._error("undecodable")
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"not a CheckRequest: {msg.error}")
        t0 = time.perf_counter()
        try:
            request = wire.request_dict(msg)
            peer = context.peer() if self.engine.decision_sink is not None else ""
            decision, decision_id = self.engine.decide(request, request_id=msg.request_id,
                                                       peer=peer)
            if self.metrics is not None:
                self.metrics.decision(msg.resource.type, msg.action, decision,
                                      time.perf_counter() - t0)
            return wire.response(decision, decision_id)
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
        t0 = time.perf_counter()
        try:
            principal, items, ctx = wire.batch_parts(msg)
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
            return out
        except RequestError as exc:
            problem = f"CheckBatch: {exc}"
        except Exception as exc:
            pairs = sum(len(item.actions) for item in msg.items)
            return pb.CheckBatchResponse(results=[self._failed(exc) for _ in range(pairs)])
        self._error("invalid_argument")
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)

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


def method_handlers(servicer: DecisionServicer) -> dict:
    return {
        "Check": grpc.unary_unary_rpc_method_handler(
            servicer.check, request_deserializer=wire.safe_parser(pb.CheckRequest),
            response_serializer=pb.CheckResponse.SerializeToString),
        "CheckBatch": grpc.unary_unary_rpc_method_handler(
            servicer.check_batch, request_deserializer=wire.safe_parser(pb.CheckBatchRequest),
            response_serializer=pb.CheckBatchResponse.SerializeToString),
    }


@dataclass
class Built:
    server: grpc.Server
    health: health.HealthServicer
    port: int
    engine: Engine
    metrics: Metrics | None = None
    decision_log: DecisionLog | None = None


def _credentials(cfg: ServeConfig) -> grpc.ServerCredentials | None:
    if cfg.tls_cert is None:
        return None
    key, cert = cfg.tls_key.read_bytes(), cfg.tls_cert.read_bytes()
    ca = cfg.tls_client_ca.read_bytes() if cfg.tls_client_ca else None
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca,
                                       require_client_auth=ca is not None)


def build_server(engine: Engine, cfg: ServeConfig, metrics: Metrics | None = None,
                 decision_log: DecisionLog | None = None) -> Built:
    """A ready, not yet started server: DecisionService, health (NOT_SERVING until run) and
    reflection on one port. The engine's decision sink, if any, is the decision log's."""
    options = [("grpc.max_receive_message_length", cfg.max_message_bytes),
               ("grpc.max_send_message_length", cfg.max_message_bytes),
               ("grpc.so_reuseport", 1)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=cfg.threads), options=options)
    # registered methods: grpc looks them up in C, not through a Python handler per call
    server.add_registered_method_handlers(wire.SERVICE,
                                          method_handlers(DecisionServicer(engine, metrics)))
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", wire.SERVICE):
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    services = (wire.SERVICE, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME)
    reflection.enable_server_reflection(services, server)
    address = f"{cfg.host}:{cfg.port}"
    creds = _credentials(cfg)
    port = server.add_secure_port(address, creds) if creds else server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    return Built(server, health_servicer, port, engine, metrics, decision_log)


def run_server(built: Built, cfg: ServeConfig, stop: threading.Event | None = None) -> int:
    """Serve until SIGTERM/SIGINT (or `stop`): then NOT_SERVING, stop accepting, drain calls
    in flight within the grace period, and return 0."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    metrics = built.metrics

    def reloaded(result: str) -> None:
        if metrics is not None:
            metrics.reload(result)
            metrics.policy(built.engine.policy_set.checked, built.engine.version)

    watcher = PolicyWatcher(cfg.path, built.engine, cfg.reload_interval, reloaded) \
        if cfg.reload else None
    if metrics is not None:
        metrics.policy(built.engine.policy_set.checked, built.engine.version)
    built.server.start()
    for name in ("", wire.SERVICE):
        built.health.set(name, health_pb2.HealthCheckResponse.SERVING)
    if watcher:
        watcher.start()
    log.info("serving %s (policy %s) on %s:%d, pid %d", cfg.path, built.engine.version, cfg.host,
             built.port, os.getpid())
    stop.wait()
    log.info("stopping: draining calls in flight for up to %.1f s", cfg.grace)
    built.health.enter_graceful_shutdown()
    if watcher:
        watcher.stop()
    built.server.stop(cfg.grace).wait()
    if built.decision_log is not None:
        built.decision_log.close()  # every decision made is written before we exit
    log.info("stopped")
    return 0
