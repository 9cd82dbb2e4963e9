"""A gRPC server assembled from services: built in one function, run in another (as in
gRPC's Python examples). Health and reflection follow from the list of services."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2

from ..engine import Engine
from .config import ServeConfig
from .config_schema import schema_problems
from .decision_log import DecisionLog
from .metrics import Metrics
from .reload import PolicyWatcher
from .services import Service, add_health, add_reflection, health_names

log = logging.getLogger("policyd.server")


class PortInUse(OSError):
    """Another process listens on the port: refuse to start rather than split traffic."""


@dataclass
class Built:
    server: grpc.Server
    health: health.HealthServicer
    port: int
    engine: Engine
    metrics: Metrics | None = None
    decision_log: DecisionLog | None = None
    services: list[Service] = field(default_factory=list)
    companions: list = field(default_factory=list)  # start() and stop(grace): the HTTP side


def _credentials(cfg: ServeConfig) -> grpc.ServerCredentials | None:
    if cfg.tls_cert is None:
        return None
    key, cert = cfg.tls_key.read_bytes(), cfg.tls_cert.read_bytes()
    ca = cfg.tls_client_ca.read_bytes() if cfg.tls_client_ca else None
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca,
                                       require_client_auth=ca is not None)


def ensure_port_free(host: str, port: int) -> None:
    """Fail at start when something already listens on host:port (with or without
    SO_REUSEPORT), instead of silently sharing its traffic."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as grpc does
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise PortInUse(f"cannot listen on {host}:{port}: {exc.strerror or exc} (is "
                            "another server running on this port?)") from None


def build_server(engine: Engine, cfg: ServeConfig, services: list[Service],
                 metrics: Metrics | None = None, decision_log: DecisionLog | None = None,
                 reuse_port: bool = False) -> Built:
    """A ready, not yet started server: the given services, health (NOT_SERVING until run)
    and reflection on one port. SO_REUSEPORT only for workers of one supervisor."""
    options = [("grpc.max_receive_message_length", cfg.max_message_bytes),
               ("grpc.max_send_message_length", cfg.max_message_bytes),
               ("grpc.so_reuseport", 1 if reuse_port else 0)]
    pool = futures.ThreadPoolExecutor(max_workers=cfg.request_threads)
    server = grpc.server(pool, options=options)
    for service in services:
        service.add_to(server)
    health_servicer = add_health(server, services)
    add_reflection(server, services)
    address = f"{cfg.host}:{cfg.port}"
    creds = _credentials(cfg)
    try:
        port = server.add_secure_port(address, creds) if creds else \
            server.add_insecure_port(address)
    except RuntimeError:
        port = 0
    if port == 0:
        raise PortInUse(f"cannot listen on {address} (is another server running on this "
                        "port?)")
    return Built(server, health_servicer, port, engine, metrics, decision_log, list(services))


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
            metrics.policy(built.engine.policy_set.schema, built.engine.version)

    watcher = PolicyWatcher(cfg.path, built.engine, cfg.reload_interval, reloaded,
                            max_string_bytes=cfg.max_string_bytes, data=tuple(cfg.data),
                            fits=lambda ps: schema_problems(cfg, ps.schema)) \
        if cfg.reload else None
    if metrics is not None:
        metrics.policy(built.engine.policy_set.schema, built.engine.version)
    built.server.start()
    for companion in built.companions:
        companion.start()
    for name in health_names(built.services):
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
    stopped = built.server.stop(cfg.grace)
    for companion in built.companions:  # drained together with gRPC
        companion.stop(cfg.grace)
    stopped.wait()
    if built.decision_log is not None:
        built.decision_log.close()  # every decision made is written before we exit
    log.info("stopped")
    return 0
