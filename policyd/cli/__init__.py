"""The `policyd` command: check, test, eval, plan, diff, fmt, lsp, compile, serve.

Exit status: 0 success, 1 policy errors, failed tests, a missing path or a server
that cannot start, 2 usage errors (argparse's own, a request that is not valid
JSON or not valid).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .. import __version__
from ..engine.compiler import compile_path
from ..engine.models import RequestError
from ..language.diagnostics import PolicyError
from . import verify
from .common import (
    EXIT_OK,
    EXIT_POLICY,
    EXIT_USAGE,
    _count,
    _engine,
    _missing,
    _print_policy_error,
    _read_requests,
)
from .fmt import cmd_fmt
from .tools import cmd_diff, cmd_plan


def cmd_check(args) -> int:
    """Check every set under the path, with its test files."""
    from ..testing import discover, load

    if args.config is not None:  # validate the serve configuration, then check its set
        cfg = _config("check", args, {"path": args.path} if args.path else {})
        if cfg is None or _config_misfits(cfg, args.config):
            return EXIT_POLICY
        args.path, args.data = str(cfg.path), [*args.data, *map(str, cfg.data)]
    if args.path is None:
        print("policyd check: give the policy PATH (or --config FILE)", file=sys.stderr)
        return EXIT_USAGE
    if _missing("check", args.path):
        return EXIT_POLICY
    sources = discover(args.path, args.data)
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
            found = exc.diagnostics if exc else [*suite.policy_set.warnings, *suite.warnings]
            diagnostics.extend(d.to_dict() for d in found)
            sets.append({"path": str(src.root), "ok": exc is None,
                         "policy_version": suite.policy_set.version if suite else None,
                         "files": len(suite.policy_set.sources) + len(suite.test_files)
                         if suite else None,
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
        for w in (*ps.warnings, *suite.warnings):
            print(w.render(suite.sources), file=sys.stderr)
        rules = sum(len(r) for r in ps.rules.values())
        where = f"{src.root}: " if len(results) > 1 else ""
        data = len(suite.sources) - len(ps.sources) - len(suite.test_files)
        files = f"{_count(len(suite.sources), 'file')} loaded ({len(ps.sources)} policy, " \
            f"{len(suite.test_files)} test{f', {data} data' if data else ''})"
        print(f"ok: {where}{files}, "
              f"{_count(len(ps.schema.resources), 'resource type')}, {_count(rules, 'rule')}, "
              f"{_count(len(suite.tests), 'test')}, "
              f"{_count(len(ps.warnings) + len(suite.warnings), 'warning')} "
              f"({ps.version})")
    return EXIT_POLICY if failed else EXIT_OK


def cmd_test(args) -> int:
    from ..testing.command import run_tests

    if _missing("test", args.path):
        return EXIT_POLICY
    return run_tests(args)


def cmd_eval(args) -> int:
    """One decision per request; a list is decided item by item, a bad item reported with
    its index (and as `{"error": ...}` in the output) while the good ones are decided."""
    engine = _engine("eval", args)
    if engine is None:
        return EXIT_POLICY
    try:
        data = _read_requests(args.request)
    except ValueError as exc:
        print(f"policyd eval: invalid request: {exc}", file=sys.stderr)
        return EXIT_USAGE
    many = isinstance(data, list)
    out, failed = [], False
    for index, request in enumerate(data if many else [data]):
        try:
            out.append(engine.explain(request) if args.explain else
                       engine.check(request).to_dict())
        except RequestError as exc:
            failed = True
            where = f"item {index}: " if many else ""
            print(f"policyd eval: {where}invalid request: {exc}", file=sys.stderr)
            out.append({"error": f"invalid request: {exc}"})
    if args.explain and args.format == "text":
        from ..engine.explain import render
        print("\n\n".join(render(e) if "rules" in e else e["error"] for e in out))
    elif many or not failed:
        print(json.dumps(out if many else out[0], indent=2))
    return EXIT_USAGE if failed else EXIT_OK


def cmd_lsp(args) -> int:
    """pygls is imported only here: no other command needs it."""
    from ..lsp.server import main as serve_lsp
    return serve_lsp()


def cmd_compile(args) -> int:
    if _missing("compile", args.path):
        return EXIT_POLICY
    try:
        ps = compile_path(args.path)
    except PolicyError as exc:
        _print_policy_error(exc)
        return EXIT_POLICY
    sys.stdout.write(ps.source)
    return EXIT_OK


def _config_misfits(cfg, file) -> bool:
    """Print what the configuration names that its set does not declare; True if any.
    A set that does not compile is left to the check that follows."""
    from ..server.config_schema import schema_problems

    try:
        schema = compile_path(cfg.path, cfg.max_string_bytes, cfg.data).schema
    except PolicyError:
        return False
    problems = schema_problems(cfg, schema)
    for problem in problems:
        print(f"policyd check: {file}: {problem}", file=sys.stderr)
    return bool(problems)


def _config(command: str, args, flags: dict):
    """The serve configuration from --config and the flags, or None after saying why."""
    from ..server.config_file import ConfigError, build_config

    try:
        return build_config(getattr(args, "config", None), flags)
    except ConfigError as exc:
        for line in str(exc).splitlines():
            print(f"policyd {command}: {line}", file=sys.stderr)
        return None


def cmd_serve(args) -> int:
    from ..server.serve import serve

    flags = {k: v for k, v in vars(args).items() if k not in ("command", "run", "config")}
    if flags.pop("no_reload", False):
        flags["reload"] = False
    if "path" not in flags and getattr(args, "config", None) is None:
        print("policyd serve: give the policy PATH (or `path` under [server] in --config)",
              file=sys.stderr)
        return EXIT_USAGE
    cfg = _config("serve", args, flags)
    if cfg is None:
        return EXIT_USAGE
    if _missing("serve", cfg.path):
        return EXIT_POLICY
    return serve(cfg, _print_policy_error)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="policyd", description="Policy-as-code authorization "
                                     "for APIs: check, evaluate and compile policy sets.")
    parser.add_argument("--version", action="version", version=f"policyd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("check", help="parse and check a policy set; print diagnostics")
    p.add_argument("path", nargs="?", help="a .policy file or a directory of them")
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="validate this serve configuration (TOML) and check its set")
    p.add_argument("--data", action="append", default=[], metavar="PATH",
                   help="entity data outside the set: a .json/.jsonl file or a directory")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(run=cmd_check)
    p = sub.add_parser("test", help="run the policy tests (*.test.policy) of every set")
    p.add_argument("path", help="a set, a directory of sets, or one .test.policy file")
    p.add_argument("--data", action="append", default=[], metavar="PATH",
                   help="entity data outside the set: a .json/.jsonl file or a directory")
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
    p.add_argument("--data", action="append", default=[], metavar="PATH",
                   help="entity data outside the set: a .json/.jsonl file or a directory")
    p.add_argument("request", help="request JSON file, or - for standard input")
    p.add_argument("--explain", action="store_true",
                   help="every rule of the action: held or not, and why not")
    p.add_argument("--format", choices=("json", "text"), default="json",
                   help="with --explain: text for people")
    p.set_defaults(run=cmd_eval)
    p = sub.add_parser("plan", help="which resources a principal may act on: a query plan")
    p.add_argument("path", help="a .policy file or a directory of them")
    p.add_argument("--data", action="append", default=[], metavar="PATH",
                   help="entity data outside the set: a .json/.jsonl file or a directory")
    p.add_argument("request", help="plan request JSON file (resource: type, and optionally "
                   "id and known attrs), or - for standard input")
    p.add_argument("--sql", choices=("sqlite", "postgresql"), help="print SQL, not JSON")
    p.add_argument("--columns", metavar="ATTR=COL,...",
                   help="column of each attribute (default: the attribute path, . as _)")
    p.set_defaults(run=cmd_plan)

    p = sub.add_parser("diff", help="the decisions that change between two policy sets")
    p.add_argument("old", help="the set as it is")
    p.add_argument("new", help="the set as it would be")
    p.add_argument("--prove", action="store_true",
                   help="also prove with z3 that no request at all decides differently "
                   "(policyd verify --equivalent; the verify extra)")
    p.add_argument("--requests", nargs="+", default=[], metavar="SOURCE",
                   help="request JSON files or directories, decision logs (written with "
                   "--log-attributes), or a set with test fixtures")
    p.add_argument("--data", action="append", default=[], metavar="PATH",
                   help="entity data outside the sets: a .json/.jsonl file or a directory")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(run=cmd_diff)

    verify.add_parser(sub)

    p = sub.add_parser("fmt", help="rewrite policy and test files in the canonical layout")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or directories")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="change nothing; list the files that would change (exit 1 if any)")
    mode.add_argument("--diff", action="store_true", help="change nothing; print a diff")
    p.set_defaults(run=cmd_fmt)

    p = sub.add_parser("lsp", help="the language server for editors, over stdio")
    p.set_defaults(run=cmd_lsp)

    p = sub.add_parser("compile", help="print the Python source generated for a policy set")
    p.add_argument("path", help="a .policy file or a directory of them")
    p.set_defaults(run=cmd_compile)
    p = sub.add_parser("serve", help="serve decisions over gRPC, reloading on edits",
                       argument_default=argparse.SUPPRESS)  # unset flags leave the file's
    p.add_argument("path", nargs="?", help="a .policy file or a directory of them")
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="every serve setting in TOML (docs/server.md); flags override it")
    p.add_argument("--envoy", action="store_true",
                   help="serve Envoy's external authorization even without routes")
    p.add_argument("--shadow", type=Path, metavar="NEWPATH",
                   help="also decide every request with this set; log and count each "
                   "disagreement (the answers stay PATH's)")
    p.add_argument("--http-port", type=int,
                   help="serve the OpenID AuthZEN API over HTTP(S) on this port")
    p.add_argument("--http-host", help="its listen address (default: --host)")
    p.add_argument("--data", action="append", metavar="PATH",
                   help="entity data outside the set: a .json/.jsonl file or a directory")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--workers", type=int, help="server processes sharing the port")
    p.add_argument("--threads", type=int,
                   help="request threads per process (default 2; 4 with a Redis rate store)")
    p.add_argument("--tls-cert", type=Path, help="PEM certificate chain for TLS")
    p.add_argument("--tls-key", type=Path, help="PEM private key for TLS")
    p.add_argument("--tls-client-ca", type=Path, help="PEM CA: require client certificates")
    p.add_argument("--max-message-bytes", type=int)
    p.add_argument("--grace", type=float, help="seconds to drain on shutdown")
    p.add_argument("--reload-interval", type=float, help="seconds between polls")
    p.add_argument("--no-reload", action="store_true", help="do not watch the path")
    p.add_argument("--rate-store",
                   help="`memory` (per process) or redis://host:port/db (shared)")
    p.add_argument("--rate-max-keys", type=int,
                   help="memory store: most buckets kept")
    p.add_argument("--rate-key-prefix", help="redis: key name prefix")
    p.add_argument("--rate-failure", choices=("open", "closed"),
                   help="when the rate store cannot answer: pass rate rules, or deny")
    p.add_argument("--rate-timeout-ms", type=int,
                   help="redis: connect and call timeout")
    p.add_argument("--decision-log", metavar="PATH|-", help="one JSON line per decision")
    p.add_argument("--log-attributes", action="store_true",
                   help="include attribute values in decision records (sensitive ones masked)")
    p.add_argument("--decision-log-queue", type=int,
                   help="records buffered; when full, decisions wait for the writer")
    p.add_argument("--decision-log-wait", type=float, metavar="SECONDS",
                   help="how long a decision waits for room in a full queue before its "
                   "record is dropped (and counted)")
    p.add_argument("--max-batch-decisions", type=int,
                   help="most decisions (items x actions) one CheckBatch may ask for")
    p.add_argument("--max-string-bytes", type=int,
                   help="longest id or string attribute in a request, in UTF-8 bytes")
    p.add_argument("--metrics-port", type=int, help="serve Prometheus /metrics on this port")
    p.add_argument("--metrics-host")
    p.add_argument("--log-format", choices=("text", "json"),
                   help="the server's own log")
    p.set_defaults(run=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except BrokenPipeError:  # `policyd check --format json | head`: the reader left
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
