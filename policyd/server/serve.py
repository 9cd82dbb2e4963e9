"""`policyd serve`: compile once, then one server process (or N workers) with metrics, the
decision log, the engine and the services wired together."""

from __future__ import annotations

import logging
import sys

from ..authn import JwtVerifier
from ..engine import Engine
from ..engine.compiler import compile_path
from ..language.diagnostics import PolicyError
from .app import PortInUse, build_server, ensure_port_free, run_server
from .config import ServeConfig
from .config_schema import schema_problems
from .decision import decision_service
from .decision_log import DecisionLog
from .logs import configure as configure_logs
from .metrics import Metrics
from .reload import PolicyWatcher
from .shadow import Shadow, shadow_engine
from .workers import serve_forked

log = logging.getLogger("policyd.server")

EXIT_OK, EXIT_FAILED = 0, 1


def serve(cfg: ServeConfig, print_policy_error) -> int:
    configure_logs(cfg.log_format)
    try:
        policy_set = compile_path(cfg.path, cfg.max_string_bytes, cfg.data)  # fail fast
    except PolicyError as exc:
        print_policy_error(exc)
        return EXIT_FAILED
    problems = schema_problems(cfg, policy_set.schema)
    for problem in problems:  # a key naming what the set does not declare: refuse to start
        print(f"policyd serve: {problem}", file=sys.stderr)
    if problems:
        return EXIT_FAILED
    if cfg.shadow is not None:
        try:
            compile_path(cfg.shadow, cfg.max_string_bytes, cfg.data)  # fail fast here too
        except PolicyError as exc:
            print_policy_error(exc)
            return EXIT_FAILED
    try:
        ensure_port_free(cfg.host, cfg.port)
    except PortInUse as exc:
        print(f"policyd serve: {exc}", file=sys.stderr)
        return EXIT_FAILED

    def serve_one(worker: int = 0, policy_set=None) -> int:
        metrics = decision_log = None
        try:
            if cfg.metrics_port is not None:  # worker i serves its metrics on port + i
                metrics = Metrics()
                metrics.serve(cfg.metrics_port + worker, cfg.metrics_host)
            if cfg.decision_log is not None:  # one file per worker: lines never interleave
                path = cfg.decision_log if cfg.workers == 1 else f"{cfg.decision_log}.{worker}"
                decision_log = DecisionLog(path, cfg.decision_log_queue,
                                           metrics.log_dropped.inc if metrics else None,
                                           cfg.decision_log_wait)
            engine = Engine(policy_set or compile_path(cfg.path, cfg.max_string_bytes, cfg.data),
                            rate_store=cfg.make_rate_store(), rate_failure=cfg.rate_failure,
                            decision_sink=decision_log,
                            log_attributes=cfg.log_attributes)
            verifier = JwtVerifier(cfg.authn.jwt) if cfg.authn.jwt is not None else None
            shadow = None
            if cfg.shadow is not None:
                shadow = Shadow(shadow_engine(cfg.shadow, cfg.data, cfg.max_string_bytes),
                                metrics)
            services = [decision_service(engine, metrics, cfg.max_batch_decisions, verifier,
                                         shadow)]
            if cfg.envoy.enabled or cfg.envoy.enabled is None and engine.policy_set.routes:
                from .envoy import envoy_service  # Envoy's API only where it is served
                services.append(envoy_service(engine, cfg.envoy, cfg.authn, verifier,
                                              metrics))
                log.info("Envoy external authorization on the gRPC port (%s)",
                         "JWT" if verifier else "mTLS" if cfg.authn.mtls else
                         "no [authn]: every request is 401")
            built = build_server(engine, cfg, services, metrics, decision_log,
                                 reuse_port=cfg.workers > 1)
            if cfg.http_port is not None:
                built.companions.append(http_front(cfg, engine, metrics, shadow))
            if shadow is not None and cfg.reload:  # the shadow set reloads with its files
                built.companions.append(_Watching(PolicyWatcher(
                    cfg.shadow, shadow.engine, cfg.reload_interval,
                    max_string_bytes=cfg.max_string_bytes, data=tuple(cfg.data))))
        except OSError as exc:
            print(f"policyd serve: {exc}", file=sys.stderr)
            return EXIT_FAILED
        return run_server(built, cfg)

    if cfg.workers == 1:
        return serve_one(0, policy_set)
    if cfg.http_port is not None:
        print("policyd serve: --http-port serves from one process; use --workers 1",
              file=sys.stderr)
        return EXIT_FAILED
    return serve_forked(cfg.workers, serve_one)


def http_front(cfg: ServeConfig, engine: Engine, metrics, shadow=None):
    """The AuthZEN API over HTTP(S) (Starlette on uvicorn, imported only when served)."""
    import hashlib

    from .authzen import AuthZen
    from .config import pep_tokens
    from .http import AuthZenApp, HttpServer

    z = cfg.authzen
    secret = hashlib.sha256(z.page_secret.encode()).digest() if z.page_secret else None
    authzen = AuthZen(engine, z.types, z.expose_reasons, z.response_context, secret,
                      cfg.max_batch_decisions, metrics, shadow)
    host = cfg.http_host or cfg.host
    tls = (cfg.tls_cert, cfg.tls_key, cfg.tls_client_ca) if cfg.tls_cert else None
    app = AuthZenApp(authzen, z.base_url or "", cfg.max_message_bytes, pep_tokens(z.pep_tokens))

    def started(port: int) -> None:  # port 0 is known only now
        if not z.base_url:
            app.base_url = f"{'https' if tls else 'http'}://{host}:{port}"
        log.info("AuthZEN API on %s", app.base_url)
    return HttpServer(app.app, host, cfg.http_port, tls, cfg.grace, started)


class _Watching:
    """A PolicyWatcher as a companion of the server (started and stopped with it)."""

    def __init__(self, watcher: PolicyWatcher):
        self.watcher = watcher

    def start(self) -> None:
        self.watcher.start()

    def stop(self, grace: float) -> None:
        self.watcher.stop()
