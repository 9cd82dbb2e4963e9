"""The `policyd` command: check, test, eval, compile, serve.

Exit status: 0 success, 1 policy errors or failed tests, 2 usage errors
(argparse's own, a missing path, a request that is not valid JSON or not valid).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .compiler import compile_path
from .diagnostics import PolicyError
from .engine import Engine
from .models import RequestError

EXIT_OK, EXIT_POLICY, EXIT_USAGE = 0, 1, 2


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _print_policy_error(exc: PolicyError, fmt: str = "text") -> None:
    if fmt == "json":
        print(json.dumps({"ok": False, "diagnostics": [d.to_dict() for d in exc.diagnostics]},
                         indent=2))
        return
    print(exc.render(), file=sys.stderr)
    errors = sum(d.is_error for d in exc.diagnostics)
    warnings = len(exc.diagnostics) - errors
    print(f"{_count(errors, 'error')}, {_count(warnings, 'warning')}", file=sys.stderr)


def cmd_check(args) -> int:
    """Check every set under the path, with its test files."""
    from .testing import discover, load
    from .testing.suite import NoSuchPath

    try:
        sources = discover(args.path)
    except NoSuchPath as exc:
        print(f"policyd check: {exc}", file=sys.stderr)
        return EXIT_POLICY
    if not sources:
        print(f"policyd check: no .policy files under {args.path}", file=sys.stderr)
        return EXIT_POLICY
    results, failed = [], False
    for src in sources:
        try:
            results.append((src, load(src), None))
        except PolicyError as exc:
            results.append((src, None, exc))
            failed = True
    if args.format == "json":
        sets, diagnostics = [], []
        for src, suite, exc in results:
            found = exc.diagnostics if exc else list(suite.policy_set.warnings)
            diagnostics.extend(d.to_dict() for d in found)
            sets.append({"path": str(src.root), "ok": exc is None,
                         "policy_version": suite.policy_set.version if suite else None,
                         "tests": len(suite.tests) if suite else None})
        out = {"ok": not failed, "diagnostics": diagnostics, "sets": sets}
        if len(sets) == 1:
            out["policy_version"] = sets[0]["policy_version"]
        print(json.dumps(out, indent=2))
        return EXIT_POLICY if failed else EXIT_OK
    for src, suite, exc in results:
        if exc is not None:
            _print_policy_error(exc)
            continue
        ps = suite.policy_set
        for w in ps.warnings:
            print(w.render(ps.checked.sources), file=sys.stderr)
        rules = sum(len(r) for r in ps.checked.rules.values())
        where = f"{src.root}: " if len(results) > 1 else ""
        print(f"ok: {where}{_count(len(ps.checked.sources), 'file')}, "
              f"{_count(len(ps.checked.resources), 'resource type')}, {_count(rules, 'rule')}, "
              f"{_count(len(suite.tests), 'test')}, {_count(len(ps.warnings), 'warning')} "
              f"({ps.version})")
    return EXIT_POLICY if failed else EXIT_OK


def cmd_test(args) -> int:
    from .testing.command import run_tests

    return run_tests(args)


def _read_requests(source: str):
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read {source}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} "
                         f"column {exc.colno}") from None


def cmd_eval(args) -> int:
    try:
        engine = Engine.from_path(args.path)
    except PolicyError as exc:
        _print_policy_error(exc)
        return EXIT_POLICY
    try:
        data = _read_requests(args.request)
        many = isinstance(data, list)
        decisions = [engine.check(r, explain=args.explain).to_dict()
                     for r in (data if many else [data])]
    except (ValueError, RequestError) as exc:
        print(f"policyd eval: invalid request: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(decisions if many else decisions[0], indent=2))
    return EXIT_OK


def cmd_compile(args) -> int:
    try:
        ps = compile_path(args.path)
    except PolicyError as exc:
        _print_policy_error(exc)
        return EXIT_POLICY
    sys.stdout.write(ps.source)
    return EXIT_OK


def cmd_serve(args) -> int:
    from pydantic import ValidationError

    from .audit import DecisionLog
    from .config import ServeConfig
    from .logs import configure as configure_logs
    from .metrics import Metrics
    from .server import build_server, run_server
    from .workers import serve_forked

    try:
        cfg = ServeConfig(path=args.path, host=args.host, port=args.port, workers=args.workers,
                          threads=args.threads, tls_cert=args.tls_cert, tls_key=args.tls_key,
                          tls_client_ca=args.tls_client_ca,
                          max_message_bytes=args.max_message_bytes, grace=args.grace,
                          reload=not args.no_reload, reload_interval=args.reload_interval,
                          rate_store=args.rate_store, rate_max_keys=args.rate_max_keys,
                          rate_key_prefix=args.rate_key_prefix, rate_failure=args.rate_failure,
                          rate_timeout_ms=args.rate_timeout_ms, decision_log=args.decision_log,
                          log_attributes=args.log_attributes,
                          decision_log_queue=args.decision_log_queue,
                          metrics_port=args.metrics_port, metrics_host=args.metrics_host,
                          log_format=args.log_format)
    except ValidationError as exc:
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            print(f"policyd serve: {where + ': ' if where else ''}{err['msg']}", file=sys.stderr)
        return EXIT_USAGE
    configure_logs(cfg.log_format)
    try:
        policy_set = compile_path(cfg.path)  # fail fast, before any worker starts
    except PolicyError as exc:
        _print_policy_error(exc)
        return EXIT_POLICY

    def serve_one(worker: int = 0, policy_set=None) -> int:
        metrics = decision_log = None
        try:
            if cfg.metrics_port is not None:  # worker i serves its metrics on port + i
                metrics = Metrics()
                metrics.serve(cfg.metrics_port + worker, cfg.metrics_host)
            if cfg.decision_log is not None:  # one file per worker: lines never interleave
                path = cfg.decision_log if cfg.workers == 1 else f"{cfg.decision_log}.{worker}"
                decision_log = DecisionLog(path, cfg.decision_log_queue,
                                           metrics.log_dropped.inc if metrics else None)
            engine = Engine(policy_set or compile_path(cfg.path),
                            rate_store=cfg.make_rate_store(), rate_failure=cfg.rate_failure,
                            decision_sink=decision_log.emit if decision_log else None,
                            log_attributes=cfg.log_attributes)
            built = build_server(engine, cfg, metrics, decision_log)
        except OSError as exc:
            print(f"policyd serve: {exc}", file=sys.stderr)
            return EXIT_USAGE
        return run_server(built, cfg)

    if cfg.workers == 1:
        return serve_one(0, policy_set)
    return serve_forked(cfg.workers, serve_one)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="policyd", description="Policy-as-code authorization "
                                     "for APIs: check, evaluate and compile policy sets.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("check", help="parse and check a policy set; print diagnostics")
    p.add_argument("path", help="a .policy file or a directory of them")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(run=cmd_check)
    p = sub.add_parser("test", help="run the policy tests (*.test.policy) of every set")
    p.add_argument("path", help="a set, a directory of sets, or one .test.policy file")
    p.add_argument("-k", dest="pattern", metavar="PATTERN",
                   help="run only tests whose name contains PATTERN (any case)")
    p.add_argument("-v", "--verbose", action="store_true", help="list passing tests too")
    p.add_argument("--coverage", action="store_true", help="report rule coverage")
    p.add_argument("--min-coverage", type=float, metavar="PCT",
                   help="fail when a set's rule coverage is under PCT (implies --coverage)")
    p.add_argument("--junit", type=Path, metavar="FILE", help="also write JUnit XML to FILE")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(run=cmd_test)
    p = sub.add_parser("eval", help="decide a request (JSON object, or a list of them)")
    p.add_argument("path", help="a .policy file or a directory of them")
    p.add_argument("request", help="request JSON file, or - for standard input")
    p.add_argument("--explain", action="store_true", help="list every rule that held")
    p.set_defaults(run=cmd_eval)
    p = sub.add_parser("compile", help="print the Python source generated for a policy set")
    p.add_argument("path", help="a .policy file or a directory of them")
    p.set_defaults(run=cmd_compile)
    p = sub.add_parser("serve", help="serve decisions over gRPC, reloading on edits")
    p.add_argument("path", help="a .policy file or a directory of them")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=50051)
    p.add_argument("--workers", type=int, default=1, help="server processes sharing the port")
    p.add_argument("--threads", type=int, default=2, help="request threads per process")
    p.add_argument("--tls-cert", type=Path, help="PEM certificate chain for TLS")
    p.add_argument("--tls-key", type=Path, help="PEM private key for TLS")
    p.add_argument("--tls-client-ca", type=Path, help="PEM CA: require client certificates")
    p.add_argument("--max-message-bytes", type=int, default=4 * 1024 * 1024)
    p.add_argument("--grace", type=float, default=5.0, help="seconds to drain on shutdown")
    p.add_argument("--reload-interval", type=float, default=0.5, help="seconds between polls")
    p.add_argument("--no-reload", action="store_true", help="do not watch the path")
    p.add_argument("--rate-store", default="memory",
                   help="`memory` (per process) or redis://host:port/db (shared)")
    p.add_argument("--rate-max-keys", type=int, default=1_000_000,
                   help="memory store: most buckets kept")
    p.add_argument("--rate-key-prefix", default="policyd:", help="redis: key name prefix")
    p.add_argument("--rate-failure", choices=("open", "closed"), default="open",
                   help="when the rate store cannot answer: pass rate rules, or deny")
    p.add_argument("--rate-timeout-ms", type=int, default=50,
                   help="redis: connect and call timeout")
    p.add_argument("--decision-log", metavar="PATH|-", help="one JSON line per decision")
    p.add_argument("--log-attributes", action="store_true",
                   help="include attribute values in decision records (sensitive ones masked)")
    p.add_argument("--decision-log-queue", type=int, default=10_000,
                   help="records buffered before new ones are dropped (and counted)")
    p.add_argument("--metrics-port", type=int, help="serve Prometheus /metrics on this port")
    p.add_argument("--metrics-host", default="127.0.0.1")
    p.add_argument("--log-format", choices=("text", "json"), default="text",
                   help="the server's own log")
    p.set_defaults(run=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
