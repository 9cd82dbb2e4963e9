"""Decision records: what a decision log line says about one decision, built from the
same installed state that decided (so its masks are that set's), and handed to the
engine's decision sink.

Attribute values appear only with `log_attributes`, only for types a declaration
vouches for (an undeclared resource type's attributes were never validated, so
they are left out), and `sensitive` ones always masked.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import time
from collections.abc import Callable
from json.encoder import encode_basestring_ascii as encode_basestring

from ..language.schema import Schema
from .models import SearchPage
from .plan import Plan
from .sensitive import MASK as MASK
from .sensitive import mask_plan, masked_attrs

log = logging.getLogger("policyd.audit")


class DecisionIds:
    """Unique decision ids without uuid's cost: a random per-process prefix and a counter."""

    def __init__(self) -> None:
        self.prefix = os.urandom(6).hex()
        self._next = itertools.count(1).__next__  # atomic under the GIL

    def __call__(self) -> str:
        return f"{self.prefix}-{self._next():x}"


_second: tuple[int, str] = (0, "")  # the last second formatted: one tuple, swapped whole


def timestamp() -> str:
    """Now as RFC 3339 UTC with microseconds; the date and time of day are formatted once
    per second (a third of what datetime.isoformat costs per record)."""
    global _second
    now = time.time()
    sec = int(now)
    cached = _second
    if cached[0] != sec:
        cached = _second = (sec, time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(sec)))
    # %-format: a third cheaper than an f-string with int() and :06d; %d truncates too
    return "%s%06dZ" % (cached[1], (now - sec) * 1e6)  # noqa: UP031


_LOG = "_log"  # a Decision's own part of its log line, encoded once (outside its fields)
_json = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=str).encode


def _text(value) -> str:
    return encode_basestring(value) if type(value) is str else _json(value)


def _decision_json(d) -> tuple[str, tuple[str, str], str]:
    """(`"policy_version":...`, (what comes before write_fields, and after), the reasons)
    of a Decision's record, cached on the Decision as a memoised one is shared."""
    cached = d.__dict__.get(_LOG)
    if cached is None:
        warnings = f',"warnings":{_json(list(d.warnings))}' if d.warnings else ""
        if d.outputs:  # 1.2: logged always, whatever --log-attributes says
            warnings += f',"outputs":{_json(d.outputs)}'
        cached = d.__dict__[_LOG] = (
            f'"policy_version":{_text(d.policy_version)}',
            (f',"allowed":{_json(d.allowed)},"visible_fields":'
             f'{_json(list(d.visible_fields))},"write_fields":',
             f',"retry_after":{_json(d.retry_after)}{warnings}'),
            _json(list(d.reasons)))
    return cached


class RecordBuilder:
    """Turns (request, decision) into a log record for one policy set's schema."""

    def __init__(self, schema: Schema, log_attributes: bool = False):
        self.log_attributes = log_attributes
        records = schema.records
        self.sensitive = {("principal", p.name): mask_plan(p, records)
                          for p in schema.principals.values()}
        self.sensitive.update({("resource", r.name): mask_plan(r, records)
                               for r in schema.resources.values()})
        self.sensitive[("context", "")] = mask_plan(schema.context, records)

    def build(self, request: dict, decision, decision_id: str, duration_us: float,
              request_id: str = "", peer: str = "") -> dict:
        p, r = request.get("principal") or {}, request.get("resource") or {}
        record = {
            "decision_id": decision_id,
            "time": timestamp(),
            "policy_version": decision.policy_version,
            "principal": {"type": p.get("type"), "id": p.get("id")},
            "action": request.get("action"),
            "resource": {"type": r.get("type"), "id": r.get("id")},
            "reasons": list(decision.reasons),
            "duration_us": round(duration_us, 1),
            "request_id": request_id,
            "peer": peer,
        }
        if type(decision) is Plan:  # a query plan: its kind instead of allowed
            record["kind"] = decision.kind
        elif type(decision) is SearchPage:  # one record for a whole search
            record["search"] = decision.kind
            record["results"] = len(decision.results)
        else:
            record["allowed"] = decision.allowed
            record["visible_fields"] = list(decision.visible_fields)
            record["write_fields"] = list(request.get("write_fields") or ())
            record["retry_after"] = decision.retry_after
            if decision.outputs:  # 1.2: logged always, whatever --log-attributes says
                record["outputs"] = {k: dict(v) for k, v in decision.outputs.items()}
        if decision.warnings:
            record["warnings"] = list(decision.warnings)
        if request.get("dry_run"):
            record["dry_run"] = True
        if self.log_attributes:
            self._attributes(record, p, r, request.get("context"))
        return record

    def line(self, request: dict, decision, decision_id: str, duration_us: float,
             request_id: str = "", peer: str = "") -> str | None:
        """The record of a decision as its JSON line, the same object `build` makes, for a
        sink that writes lines: the decision's own part is encoded once per (memoised)
        Decision. None where only `build` can say it (plans, attribute values)."""
        if self.log_attributes or type(decision) is Plan or type(decision) is SearchPage:
            return None
        p, r = request.get("principal") or {}, request.get("resource") or {}
        head, tail, reasons = _decision_json(decision)
        writes = request.get("write_fields")
        q = encode_basestring  # each value is a str but where a request was broken
        parts = (decision_id, p.get("type"), p.get("id"), request.get("action"),
                 r.get("type"), r.get("id"), request_id, peer)
        i, pt, pi, a, rt, ri, rq, pe = (q(v) if type(v) is str else _json(v) for v in parts)
        return "".join((
            '{"decision_id":', i, ',"time":"', timestamp(), '",', head,
            ',"principal":{"type":', pt, ',"id":', pi, '},"action":', a,
            ',"resource":{"type":', rt, ',"id":', ri, '},"reasons":', reasons,
            ',"duration_us":', repr(round(duration_us, 1)), ',"request_id":', rq,
            ',"peer":', pe, tail[0], _json(list(writes)) if writes else "[]", tail[1],
            ',"dry_run":true}' if request.get("dry_run") else "}"))

    def _attributes(self, record: dict, p: dict, r: dict, context) -> None:
        """Only values a declaration vouches for: a declared type's validated attributes."""
        sensitive = self.sensitive
        pkey, rkey = ("principal", p.get("type")), ("resource", r.get("type"))
        if pkey in sensitive:
            record["principal"]["attrs"] = masked_attrs(p.get("attrs"), sensitive[pkey])
        if rkey in sensitive:
            record["resource"]["attrs"] = masked_attrs(r.get("attrs"), sensitive[rkey])
        record["context"] = masked_attrs(context, sensitive[("context", "")])


class Recorder:
    """Hands each decision's record to the sink; a failing sink never fails a decision."""

    def __init__(self, sink: Callable[[dict], None] | None, ids: DecisionIds):
        self.sink, self.ids = sink, ids
        self.lines = getattr(sink, "emit_line", None)  # a sink that writes JSON lines
        self._failures: set[str] = set()

    def record(self, records: RecordBuilder, request, decision, t0: float,
               request_id: str, peer: str, extra: dict | None = None) -> str:
        decision_id = self.ids()
        if self.sink is not None:
            elapsed = (time.perf_counter() - t0) * 1e6
            if self.lines is not None and not extra:
                text = records.line(request, decision, decision_id, elapsed, request_id, peer)
                if text is not None:
                    self.emit(text, self.lines)
                    return decision_id
            record = records.build(request, decision, decision_id, elapsed, request_id, peer)
            if extra:
                record.update(extra)
            self.emit(record)
        return decision_id

    def record_batch(self, records: RecordBuilder, principal: dict, items: list[dict],
                     context: dict | None, dry_run: bool, decisions: list, t0: float,
                     request_id: str, peer: str, via: list | None = None) -> list[str]:
        """One id, and with a sink one record, per (item, action) decision; `via`, the
        chains of each decision's `in` tests (ancestry.py), where a rule had any."""
        ids = [self.ids() for _ in decisions]
        if self.sink is None or not decisions:
            return ids
        each = (time.perf_counter() - t0) * 1e6 / len(decisions)
        pairs = ((item, action) for item in items for action in item["actions"])
        for n, ((item, action), d, did) in enumerate(zip(pairs, decisions, ids, strict=True)):
            request = {"principal": principal, "action": action, "resource": item["resource"],
                       "context": context, "write_fields": item.get("write_fields"),
                       "dry_run": dry_run}
            record = records.build(request, d, did, each, request_id, peer)
            if via is not None and via[n]:
                record["via"] = via[n]
            self.emit(record)
        return ids

    def emit(self, record: dict | str, to: Callable | None = None) -> None:
        try:
            (to or self.sink)(record)
        except Exception as exc:  # a failing sink must not fail the decision
            key = f"sink:{type(exc).__name__}"
            if key not in self._failures:
                self._failures.add(key)
                log.error("decision sink failed: %s: %s", type(exc).__name__, exc)
