"""Decision records and the decision log: every decision accounted for, nothing sensitive
leaked, and never a stalled decision.

A record is built on the request's thread (a small dict); JSON encoding and the
write happen on one background thread behind a bounded queue. When the queue is
full the decision is still served, the loss is counted and logged once. The
file is reopened when it is rotated away (logrotate's move-and-create).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

from .checked import CheckedSet

log = logging.getLogger("policyd.audit")
MASK = "***"


class DecisionIds:
    """Unique decision ids without uuid's cost: a random per-process prefix and a counter."""

    def __init__(self) -> None:
        self.prefix = os.urandom(6).hex()
        self._next = itertools.count(1).__next__  # atomic under the GIL

    def __call__(self) -> str:
        return f"{self.prefix}-{self._next():x}"


def _masked(attrs, sensitive: frozenset) -> dict:
    if not isinstance(attrs, dict):
        return {}
    return {k: (MASK if k in sensitive else v) for k, v in attrs.items()}


class RecordBuilder:
    """Turns (request, decision) into a log record for one policy set's schema."""

    def __init__(self, checked: CheckedSet, log_attributes: bool = False):
        self.log_attributes = log_attributes
        self.sensitive = {("principal", p.name): frozenset(a.name for a in p.attrs if a.sensitive)
                          for p in checked.principals.values()}
        self.sensitive.update({("resource", r.name): frozenset(
            a.name for a in r.attrs if a.sensitive) for r in checked.resources.values()})
        ctx = checked.context
        self.sensitive[("context", "")] = frozenset(
            a.name for a in ctx.attrs if a.sensitive) if ctx else frozenset()

    def build(self, request: dict, decision, decision_id: str, duration_us: float,
              request_id: str = "", peer: str = "") -> dict:
        p, r = request.get("principal") or {}, request.get("resource") or {}
        record = {
            "decision_id": decision_id,
            "time": datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "policy_version": decision.policy_version,
            "principal": {"type": p.get("type"), "id": p.get("id")},
            "action": request.get("action"),
            "resource": {"type": r.get("type"), "id": r.get("id")},
            "allowed": decision.allowed,
            "reasons": list(decision.reasons),
            "visible_fields": list(decision.visible_fields),
            "write_fields": list(request.get("write_fields") or ()),
            "retry_after": decision.retry_after,
            "duration_us": round(duration_us, 1),
            "request_id": request_id,
            "peer": peer,
        }
        if decision.warnings:
            record["warnings"] = list(decision.warnings)
        if request.get("dry_run"):
            record["dry_run"] = True
        if self.log_attributes:
            none = frozenset()
            record["principal"]["attrs"] = _masked(
                p.get("attrs"), self.sensitive.get(("principal", p.get("type")), none))
            record["resource"]["attrs"] = _masked(
                r.get("attrs"), self.sensitive.get(("resource", r.get("type")), none))
            record["context"] = _masked(request.get("context"), self.sensitive[("context", "")])
        return record


class DecisionLog:
    """A JSON-lines decision log on a background thread: `emit` never blocks.

    Records wait in a deque that the writer drains every FLUSH_EVERY seconds (or at
    once when it is half full): waking the writer per record would hand the GIL
    back and forth on every decision."""

    REOPEN_CHECK = 1.0  # seconds between checks for external rotation
    FLUSH_EVERY = 0.05

    def __init__(self, path: str, max_queue: int = 10_000,
                 on_drop: Callable[[], None] | None = None):
        self.path = path
        self.max_queue = max_queue
        self.dropped = 0
        self._on_drop = on_drop or (lambda: None)
        self._pending: deque = deque()
        self._wake = threading.Event()
        self._closing = False
        self._file = None
        self._inode = None
        self._checked_at = 0.0
        self._open()
        self._thread = threading.Thread(target=self._run, name="policyd-decision-log",
                                        daemon=True)
        self._thread.start()

    def emit(self, record: dict) -> None:
        pending = self._pending
        if len(pending) >= self.max_queue:
            self.dropped += 1
            self._on_drop()
            if self.dropped == 1:
                log.error("decision log queue full: records are being dropped (counted in "
                          "policyd_decision_log_dropped_total)")
            return
        pending.append(record)  # deque.append is atomic: no lock on the decision's path
        if len(pending) == self.max_queue // 2:
            self._wake.set()

    def close(self) -> None:
        """Write every queued record, then stop (called on shutdown)."""
        self._closing = True
        self._wake.set()
        self._thread.join()
        if self._file is not None and self._file is not sys.stdout:
            self._file.close()

    def _open(self) -> None:
        if self.path == "-":
            self._file = sys.stdout
            return
        self._file = open(self.path, "a", encoding="utf-8", buffering=1 << 16)  # noqa: SIM115
        self._inode = os.fstat(self._file.fileno()).st_ino

    def _rotated(self) -> bool:
        now = time.monotonic()
        if self.path == "-" or now - self._checked_at < self.REOPEN_CHECK:
            return False
        self._checked_at = now
        try:
            return os.stat(self.path).st_ino != self._inode
        except FileNotFoundError:
            return True

    def _run(self) -> None:
        pending, dumps = self._pending, json.JSONEncoder(separators=(",", ":"), default=str).encode
        while True:
            self._wake.wait(self.FLUSH_EVERY)
            self._wake.clear()
            closing = self._closing
            lines = []
            while pending:
                lines.append(dumps(pending.popleft()))
            try:
                if self._rotated():
                    self._file.close()
                    self._open()
                if lines:
                    self._file.write("\n".join(lines) + "\n")
                    self._file.flush()
            except OSError as exc:  # a full disk must not take the server down
                log.error("decision log write failed: %s", exc)
            if closing and not pending:
                return
