"""`policyd verify`: dead and shadowed rules of a set, or whether a new set gives new
access (`--no-new-access`) or decides anything differently (`--equivalent`), proved
with z3 (the `verify` extra), each counterexample replayed through the engines.
Exit 0 when it holds, 1 with a counterexample, 2 on an error or an `unknown`."""

from __future__ import annotations

import json

from ..engine.compiler import compile_path
from ..language.diagnostics import PolicyError
from .common import EXIT_OK, EXIT_POLICY, EXIT_USAGE, _missing, _print_policy_error


def cmd_verify(args) -> int:
    try:
        from ..verify import analysis
        from ..verify.terms import Unsupported
    except ImportError:
        print("policyd verify needs the solver: pip install 'policyd[verify]'")
        return EXIT_USAGE
    pair = args.equivalent or args.no_new_access
    paths = pair if pair else [args.set] if args.set else []
    if not paths:
        print("policyd verify: give a set, or --equivalent / --no-new-access OLD NEW")
        return EXIT_USAGE
    for path in paths:  # an error is 2, as `unknown` is: 1 means a counterexample
        if _missing("verify", path):
            return EXIT_USAGE
    try:
        sets = [compile_path(p, data=args.data) for p in paths]
    except PolicyError as exc:
        _print_policy_error(exc)
        return EXIT_USAGE
    try:
        if pair:
            return _compare(analysis, sets, args)
        return _rules(analysis, sets[0], args)
    except Unsupported as exc:
        _say(args, {"unknown": str(exc)}, f"unknown: the model does not cover {exc}")
        return EXIT_USAGE


def _rules(analysis, ps, args) -> int:
    found = analysis.rule_findings(ps)
    out = {"properties": [], "dead_rules": found.dead, "shadowed_rules": found.shadowed,
           "unknown_rules": found.unknown}
    lines = [f"warning: dead rule {r}: no request satisfies its condition" for r in found.dead]
    lines += [f"warning: shadowed rule {r}: it holds only where a deny wins, or on no "
              "allowed request" for r in found.shadowed]
    lines += [f"unknown: {r}: the model does not cover {why}"
              for r, why in sorted(found.unknown.items())]
    lines.append(f"{len(found.dead)} dead, {len(found.shadowed)} shadowed, "
                 f"{len(found.unknown)} not decided")
    _say(args, out, "\n".join(lines))
    return EXIT_OK


def _compare(analysis, sets, args) -> int:
    old, new = sets
    actions = set(args.actions) if args.actions else None
    if args.equivalent:
        found = analysis.equivalent(old, new, args.resource, actions)
        out = {"equivalent": found is None, "counterexample": found}
        text = "equivalent: the two sets decide every request alike" if found is None \
            else "not equivalent:\n" + _counterexample(found)
    else:
        found = analysis.no_new_access(old, new, args.resource, actions)
        out = {"holds": found is None, "counterexample": found}
        text = "holds: the new set allows nothing the old one denies" if found is None \
            else "new access:\n" + _counterexample(found)
    _say(args, out, text)
    return EXIT_OK if found is None else EXIT_POLICY


def _counterexample(found: dict) -> str:
    def side(d):
        if d is None:
            return "refused (the set does not declare this request)"
        verdict = "allowed" if d["allowed"] else "denied"
        return f"{verdict} by {', '.join(d['reasons'])}; visible {d['visible_fields']}"
    data = "".join(f"\n  data: {json.dumps(entry)}" for entry in found.get("data", ()))
    return (f"  request: {json.dumps(found['request'])}{data}\n"
            f"  old: {side(found['old'])}\n  new: {side(found['new'])}")


def prove_into(report, old, new) -> str:
    """`policyd diff --prove`: the proof, or its counterexample as one more change in
    diff's report; the line to print after the report ("unknown: ..." when undecided)."""
    try:
        from ..verify import analysis
        from ..verify.terms import Unsupported
    except ImportError:
        return "unknown: --prove needs the solver: pip install 'policyd[verify]'"
    try:
        found = analysis.equivalent(old, new)
    except Unsupported as exc:
        return f"unknown: the model does not cover {exc}"
    if found is None:
        return "proved: no request at all decides differently"
    from ..testing.impact import Change

    report.decided += 1
    report.changes.append(Change("proof (policyd verify --equivalent)", found["request"],
                                 _described(found["old"]), _described(found["new"])))
    return "proved different: the counterexample is above"


def _described(d: dict | None) -> str:
    """A decision summary in diff's words."""
    if d is None:
        return "invalid: the set does not declare this request"
    if d["allowed"]:
        return (f"allowed by {', '.join(d['reasons'])}; visible: "
                f"{', '.join(d['visible_fields'])}")
    return f"denied by {', '.join(d['reasons'])}"


def _say(args, out: dict, text: str) -> None:
    print(json.dumps(out, indent=2) if args.format == "json" else text)


def add_parser(sub) -> None:
    p = sub.add_parser("verify", help="prove with an SMT solver: dead and shadowed rules, "
                       "no new access, equivalence (the verify extra)")
    p.add_argument("set", nargs="?", help="the set whose rules to examine")
    pair = p.add_mutually_exclusive_group()
    pair.add_argument("--equivalent", nargs=2, metavar=("OLD", "NEW"),
                      help="prove the two sets decide every request alike")
    pair.add_argument("--no-new-access", nargs=2, metavar=("OLD", "NEW"),
                      help="prove NEW allows nothing OLD denies")
    p.add_argument("--resource", metavar="TYPE", help="only this resource type")
    p.add_argument("--actions", nargs="+", metavar="ACTION", help="only these actions")
    p.add_argument("--data", action="append", default=[], metavar="PATH",
                   help="entity data outside the sets: a .json/.jsonl file or a directory")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(run=cmd_verify)
