"""`policyd plan` and `policyd diff`: a set's answer for a list endpoint, and the
decisions a change flips."""

from __future__ import annotations

import json
import sys

from ..engine.models import RequestError
from ..language.diagnostics import PolicyError
from .common import (
    EXIT_OK,
    EXIT_POLICY,
    EXIT_USAGE,
    _engine,
    _missing,
    _print_policy_error,
    _read_requests,
)


def _columns(text: str | None, ps, rtype: str) -> dict[str, str]:
    """`attr=col,...`, or by default each attribute path as its own column (`.` as `_`)."""
    from ..plans import default_columns

    if not text:
        return default_columns(ps.schema, rtype)
    pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
    if any(len(p) != 2 or not p[0].strip() or not p[1].strip() for p in pairs):
        raise ValueError("--columns takes attr=column pairs separated by commas")
    return {a.strip(): c.strip() for a, c in pairs}


def cmd_plan(args) -> int:
    """A query plan as JSON, or with --sql its WHERE clause and bound parameters."""
    from ..plans import PlanUntranslatable, to_sql, to_sql_columns

    engine = _engine("plan", args)
    if engine is None:
        return EXIT_POLICY
    try:
        request = _read_requests(args.request)
        plan = engine.plan(request)
        columns = _columns(args.columns, engine.policy_set, plan.resource_type)
    except (ValueError, RequestError) as exc:
        print(f"policyd plan: invalid request: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not args.sql:
        print(json.dumps(plan.to_dict(), indent=2))
        return EXIT_OK
    try:
        where, params = to_sql(plan, columns, args.sql)
        select, select_params = to_sql_columns(plan, columns, args.sql)
    except PlanUntranslatable as exc:
        print(f"policyd plan: no {args.sql} translation: {exc}", file=sys.stderr)
        return EXIT_POLICY
    print(f"-- {plan.resource_type}.{plan.action}: {plan.kind} ({plan.policy_version})")
    if select:
        print(f"SELECT {select}")
        print(f"-- select params: {json.dumps(select_params, default=str)}")
    print(f"WHERE {where}")
    print(f"-- params: {json.dumps(params, default=str)}")
    return EXIT_OK


def cmd_diff(args) -> int:
    """Every decision that changes between two sets; exit 1 when any does (a CI gate)."""
    from ..testing.impact import Report, compare, engines, requests_from

    if not args.requests and not args.prove:
        print("policyd diff: give --requests SOURCE..., --prove, or both")
        return EXIT_USAGE
    for path in (args.old, args.new, *args.requests):
        if _missing("diff", path):
            return EXIT_POLICY
    try:
        old, new = engines(args.old, args.new, args.data)
        report = Report()
        for source in args.requests:
            compare(old, new, requests_from(source, report), report)
    except PolicyError as exc:
        _print_policy_error(exc)
        return EXIT_POLICY
    proof = ""
    if args.prove:
        from .verify import prove_into

        proof = prove_into(report, old.policy_set, new.policy_set)
        if proof.startswith("unknown"):
            print(proof)
            return EXIT_USAGE
    if args.format == "json":
        print(json.dumps({**report.to_dict(), **({"proved": not report.changes}
                                                 if args.prove else {})}, indent=2))
    else:
        print(report.render() + (f"\n{proof}" if proof else ""))
    return EXIT_POLICY if report.changes else EXIT_OK
