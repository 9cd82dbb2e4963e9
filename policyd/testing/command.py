"""`policyd test`: discover the sets, load each once, run, report, and pick the exit
status (0 all passed; 1 a failure, a set that does not check, a missing path,
coverage under the minimum, or no tests at all; 2 a usage error)."""

from __future__ import annotations

import sys

from ..language.diagnostics import PolicyError
from .report import SetReport, json_report, junit_report, text_report
from .runner import FAILED, Coverage, Runner
from .suite import NoSuchPath, discover, load

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _usage(message: str) -> int:
    print(f"policyd test: {message}", file=sys.stderr)
    return EXIT_USAGE


def collect(args) -> list[SetReport]:
    """Every set's report: results (and coverage), or the error that stopped it."""
    pattern = (args.pattern or "").lower()
    selected = (lambda test: pattern in test.name.lower()) if pattern else None
    want_coverage = args.coverage or args.min_coverage is not None
    reports = []
    for source in discover(args.path, getattr(args, "data", ())):
        try:
            suite = load(source)
        except PolicyError as exc:
            reports.append(SetReport(str(source.root), error=exc))
            continue
        coverage = Coverage(suite.policy_set) if want_coverage else None
        runner = Runner(suite.policy_set, suite.name, coverage)
        reports.append(SetReport(suite.name, suite.policy_set.version,
                                 list(runner.run(suite.tests, selected)), coverage,
                                 warnings=suite.warnings, sources=suite.sources))
    return reports


def run_tests(args) -> int:
    if args.min_coverage is not None and not 0 <= args.min_coverage <= 100:
        return _usage("--min-coverage is a percentage from 0 to 100")
    try:
        reports = collect(args)
    except NoSuchPath as exc:
        print(f"policyd test: {exc}", file=sys.stderr)
        return EXIT_FAILED
    problems = [f"{r.path}: rule coverage {r.coverage.percent:.1f}% is under the minimum "
                f"{args.min_coverage:g}%" for r in reports
                if args.min_coverage is not None and r.coverage is not None
                and not r.coverage.meets(args.min_coverage)]
    if not any(r.results for r in reports) and not any(r.error for r in reports):
        problems.append(f"no tests found under {args.path} (tests live in *.test.policy files)")
    failed = any(r.status == FAILED for rep in reports for r in rep.results)
    ok = not failed and not problems and not any(r.error for r in reports)
    if args.junit is not None:
        try:
            args.junit.write_text(junit_report(reports), encoding="utf-8")
        except OSError as exc:
            return _usage(f"cannot write {args.junit}: {exc.strerror}")
    if args.format == "json":
        sys.stdout.write(json_report(reports, ok))
    else:
        for rep in reports:
            if rep.error is not None:
                print(rep.error.render(), file=sys.stderr)
            for w in rep.warnings:
                print(w.render(rep.sources), file=sys.stderr)
        sys.stdout.write(text_report(reports, args.verbose))
    for problem in problems:
        print(f"policyd test: {problem}", file=sys.stderr)
    return EXIT_OK if ok else EXIT_FAILED
