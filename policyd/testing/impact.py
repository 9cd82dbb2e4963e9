"""The impact of a change: decide the same requests with two policy sets and report every
decision that changes, grouped by the rules responsible (`policyd diff`).

Requests come from request JSON files (an object or a list), a directory of them, a
decision log written with `--log-attributes` (records are turned back into requests),
or a set's test fixtures (every principal and resource fixture pair, with each context
fixture, for every action). Rate rules are not part of a diff: both sets decide with
stores that always have tokens.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..engine import Engine
from ..engine.models import Decision, RequestError
from ..engine.ratelimit import Unlimited
from ..engine.records import MASK

_SHOWN = 3  # example requests shown per group


@dataclass(frozen=True)
class Change:
    where: str  # the source and item the request came from
    request: dict
    old: str  # the outcome, described: "allowed by orders#2", "denied by ...", "invalid: ..."
    new: str


@dataclass
class Report:
    decided: int = 0
    changes: list[Change] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)  # why requests could not be used

    def groups(self) -> list[tuple[tuple[str, str], list[Change]]]:
        out: dict[tuple[str, str], list[Change]] = {}
        for c in self.changes:
            out.setdefault((c.old, c.new), []).append(c)
        return sorted(out.items(), key=lambda kv: (-len(kv[1]), kv[0]))

    def to_dict(self) -> dict:
        return {"decided": self.decided, "changed": len(self.changes),
                "skipped": dict(self.skipped),
                "groups": [{"old": old, "new": new, "count": len(cs),
                            "examples": [{"source": c.where, "request": c.request}
                                         for c in cs[:_SHOWN]]}
                           for (old, new), cs in self.groups()]}

    def render(self) -> str:
        lines = [f"{self.decided} requests decided with both sets, {len(self.changes)} "
                 f"changed"]
        for why, n in sorted(self.skipped.items()):
            lines.append(f"  skipped {n}: {why}")
        for (old, new), cs in self.groups():
            lines.append(f"\n{len(cs)} x  {old}\n   ->  {new}")
            lines.extend(f"      {c.where}" for c in cs[:_SHOWN])
            if len(cs) > _SHOWN:
                lines.append(f"      ... and {len(cs) - _SHOWN} more")
        return "\n".join(lines)


def describe(d: Decision | str) -> str:
    if isinstance(d, str):
        return f"invalid: {d}"
    if d.allowed:
        return f"allowed by {', '.join(d.reasons)}; visible: {', '.join(d.visible_fields)}"
    return f"denied by {', '.join(d.reasons)}"


def _decide(engine: Engine, request) -> Decision | str:
    try:
        return engine.check(request)
    except RequestError as exc:
        return str(exc)


def compare(old: Engine, new: Engine, requests, report: Report | None = None) -> Report:
    report = report or Report()
    for where, request in requests:
        a, b = describe(_decide(old, request)), describe(_decide(new, request))
        report.decided += 1
        if a != b:
            report.changes.append(Change(where, request, a, b))
    return report


def engines(old_path, new_path, data=()) -> tuple[Engine, Engine]:
    """Both sets, each with a store that always has tokens (rate rules are not diffed)."""
    return (Engine.from_path(old_path, data=data, rate_store=Unlimited()),
            Engine.from_path(new_path, data=data, rate_store=Unlimited()))


# ---- where requests come from -------------------------------------------------------


def requests_from(source: str | Path, report: Report):
    """(where, request) pairs of one SOURCE; what cannot be used is counted as skipped."""
    path = Path(source)
    if path.is_dir() and any(path.glob("*.test.policy")):
        yield from _fixtures(path, report)
    elif path.is_dir():
        for f in sorted(path.rglob("*.json")):
            if not f.name.endswith(".data.json"):
                yield from _json_file(f, report)
    elif path.suffix == ".jsonl" or _looks_like_log(path):
        yield from _log(path, report)
    else:
        yield from _json_file(path, report)


def _json_file(path: Path, report: Report):
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        report.skipped[f"{path}: not a JSON file ({exc})"] += 1
        return
    items = value if isinstance(value, list) else [value]
    for i, item in enumerate(items):
        yield (f"{path}[{i}]" if isinstance(value, list) else str(path)), item


def _looks_like_log(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as f:
            first = f.readline()
        return first.startswith("{") and '"decision_id"' in first
    except OSError:
        return False


def _log(path: Path, report: Report):
    """Decision records back into requests: only those logged with attributes, and none
    whose values were masked (a mask is not the value that was decided)."""
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            r = json.loads(line)
        except ValueError:
            report.skipped["log lines that are not JSON"] += 1
            continue
        if "kind" in r:
            report.skipped["query plan records"] += 1
            continue
        p, res = r.get("principal") or {}, r.get("resource") or {}
        if "attrs" not in p or "attrs" not in res:
            report.skipped["records without attributes (log with --log-attributes)"] += 1
            continue
        if MASK in json.dumps([p, res, r.get("context")]):
            report.skipped["records with masked (sensitive) values"] += 1
            continue
        request = {"principal": p, "action": r.get("action"), "resource": res}
        if r.get("context"):
            request["context"] = r["context"]
        if r.get("write_fields"):
            request["write_fields"] = r["write_fields"]
        yield f"{path}:{n} ({r.get('decision_id')})", request


def _fixtures(path: Path, report: Report):
    from .suite import SetSource, load

    suite = load(SetSource(path.resolve()))
    fixtures = suite_fixtures(suite)
    by_kind = {k: [(n, part) for n, (kind, part) in fixtures.items() if kind == k]
               for k in ("principal", "resource", "context")}
    contexts = by_kind["context"] or [("no context", None)]
    schema = suite.policy_set.schema
    for (pn, p), (rn, r), (cn, c) in itertools.product(by_kind["principal"],
                                                       by_kind["resource"], contexts):
        res = schema.resources.get(r["type"])
        for action in res.actions if res else ():
            request = {"principal": p, "action": action, "resource": r}
            if c is not None:
                request["context"] = c
            yield f"{path}: {pn}, {rn}, {cn}, {action}", request


def suite_fixtures(suite) -> dict[str, tuple[str, dict]]:
    """name -> (kind, request part) of a set's fixtures, stored attributes left out (the
    set's entity data speaks for them)."""
    from .checker import fixture_parts

    return fixture_parts(suite.checked, suite.policy_set, suite.sources)
