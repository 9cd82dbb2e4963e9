"""Combining concurrent calls into batches, for stores that pay per round trip.

Whoever finds no batch under way runs one for every caller waiting, then hands the
next batch to the first caller still waiting: no thread of its own, no timer, and a
caller alone pays nothing but a lock. A batch runs while the previous one's callers
wake, so one round trip is always in flight while there is work.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

_WAITING, _TAKEN, _LEAD, _DONE = range(4)


class _Slot:
    __slots__ = ("item", "gate", "state", "result")

    def __init__(self, item):
        self.item = item
        self.gate = threading.Lock()
        self.gate.acquire()  # released once: when its result is in or it is to lead
        self.state = _WAITING
        self.result = None


class Combiner:
    """`submit(item)` returns `run(items)[i]` for its item, where `run` sees the items of
    every caller that arrived while the previous batch ran (at most `max_batch`). A
    result that is an exception is raised in its caller. A caller that is still queued
    after `patience` seconds leaves with `timeout_error`; once its batch runs it waits
    for it (`run` must bound its own time, as a socket timeout does)."""

    def __init__(self, run: Callable[[list], list], max_batch: int = 64,
                 patience: float = 5.0, timeout_error: type[Exception] = TimeoutError):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._run = run
        self.max_batch = max_batch
        self.patience = patience
        self._timeout_error = timeout_error
        self._lock = threading.Lock()
        self._queue: list[_Slot] = []
        self._busy = False
        self.batches = 0  # how many batches ran, and the items they held: for benches
        self.items = 0

    def submit(self, item):
        with self._lock:
            if self._busy:
                slot = _Slot(item)
                self._queue.append(slot)
            else:  # nothing under way, so nobody is queued: a batch of one, at once
                self._busy = True
                slot = None
        if slot is None:
            result = self._alone(item)
        else:
            self._wait(slot)
            if slot.state != _DONE:  # it leads: it is first in the queue
                self._lead()
            result = slot.result
        if isinstance(result, Exception):
            raise result
        return result

    def _alone(self, item):
        try:
            return self._results([item])[0]
        finally:
            self._hand_over()

    def _results(self, items: list) -> list:
        """`run(items)`, one result per item: a failed batch gives every caller its own
        error, none a shared one."""
        self.batches += 1
        self.items += len(items)
        try:
            results = self._run(items)
            if len(results) != len(items):
                raise RuntimeError(f"{len(results)} results for {len(items)} items")
            return results
        except Exception as exc:
            return [RuntimeError(f"batch failed: {type(exc).__name__}: {exc}") for _ in items]

    def _wait(self, slot: _Slot) -> None:
        if slot.gate.acquire(timeout=self.patience):
            return
        with self._lock:
            if slot.state == _WAITING:  # never taken: leave the queue
                self._queue.remove(slot)
                slot.state = _DONE
                slot.result = self._timeout_error("rate store: no answer in time")
                return
        slot.gate.acquire()  # taken into a running batch, or just made leader

    def _lead(self) -> None:
        with self._lock:
            batch = self._queue[:self.max_batch]
            del self._queue[:self.max_batch]
            for slot in batch:
                slot.state = _TAKEN
        results = None
        try:
            results = self._results([slot.item for slot in batch])
        finally:
            if results is None:  # interrupted: never leave a caller waiting
                results = [RuntimeError("batch interrupted") for _ in batch]
            self._hand_over()
            for slot, result in zip(batch, results, strict=True):
                slot.result = result
                slot.state = _DONE
                slot.gate.release()

    def _hand_over(self) -> None:
        with self._lock:
            if self._queue:
                nxt = self._queue[0]
                nxt.state = _LEAD
                nxt.gate.release()
            else:
                self._busy = False
