"""The decision log: one strict JSON line per decision, written on a background thread.

The guarantee: a record is queued before its decision is answered. While the
queue is full, the deciding thread waits for the writer (back-pressure: a caller
that floods the log slows down, and CheckBatch is bounded by
--max-batch-decisions, so one call cannot fill the queue). A record is dropped
only when the writer has not made room within `wait` seconds (a stalled disk);
every drop is counted (policyd_decision_log_dropped_total) and the first is
logged. The file is reopened when it is rotated away (logrotate's
move-and-create).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable

log = logging.getLogger("policyd.audit")


class DecisionLog:
    """A JSON-lines decision log on a background thread.

    Records wait in a deque that the writer drains every FLUSH_EVERY seconds (or at
    once when it is half full): waking the writer per record would hand the GIL
    back and forth on every decision."""

    REOPEN_CHECK = 1.0  # seconds between checks for external rotation
    FLUSH_EVERY = 0.05

    def __init__(self, path: str, max_queue: int = 10_000,
                 on_drop: Callable[[], None] | None = None, wait: float = 2.0):
        self.path = path
        self.max_queue = max_queue
        self.wait = wait
        self.dropped = 0
        self._on_drop = on_drop or (lambda: None)
        self._pending: deque = deque()
        self._wake = threading.Event()
        self._room = threading.Condition()
        self._closing = False
        self._file = None
        self._inode = None
        self._checked_at = 0.0
        self._encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False,
                                        default=str).encode
        self._open()
        self._thread = threading.Thread(target=self._run, name="policyd-decision-log",
                                        daemon=True)
        self._thread.start()

    def __call__(self, record: dict) -> None:
        """The engine's decision sink; with emit_line, records it can encode itself come
        as their JSON line (engine.records.RecordBuilder.line), the rest as dicts."""
        self.emit(record)

    def emit_line(self, text: str) -> None:
        self.emit(text)

    def emit(self, record: dict | str) -> None:
        pending = self._pending
        if len(pending) >= self.max_queue and not self._make_room():
            self._drop()
            return
        pending.append(record)  # deque.append is atomic: no lock on the decision's path
        if len(pending) == self.max_queue // 2:
            self._wake.set()

    def _make_room(self) -> bool:
        """Wait (bounded) for the writer to drain; True when there is room now."""
        deadline = time.monotonic() + self.wait
        with self._room:
            while len(self._pending) >= self.max_queue:
                self._wake.set()
                left = deadline - time.monotonic()
                if left <= 0 or self._closing:
                    return False
                self._room.wait(min(left, self.FLUSH_EVERY))
        return True

    def _drop(self) -> None:
        self.dropped += 1
        self._on_drop()
        if self.dropped == 1:
            log.error("decision log writer stalled for %.1f s: records are being dropped "
                      "(counted in policyd_decision_log_dropped_total)", self.wait)

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

    def line(self, record: dict) -> str:
        """Strict JSON (no NaN, no Infinity): a record that cannot be written so loses its
        attribute values, never its line."""
        if type(record) is str:  # encoded on the request thread already
            return record
        try:
            return self._encode(record)
        except (ValueError, TypeError):
            for part in ("principal", "resource"):
                if isinstance(record.get(part), dict):
                    record[part].pop("attrs", None)
            record.pop("context", None)
            record["attrs_omitted"] = "not representable as JSON"
            return self._encode(record)

    def _run(self) -> None:
        pending = self._pending
        while True:
            self._wake.wait(self.FLUSH_EVERY)
            self._wake.clear()
            closing = self._closing
            lines = []
            while pending:
                lines.append(self.line(pending.popleft()))
            with self._room:
                self._room.notify_all()
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
