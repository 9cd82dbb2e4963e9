"""Decision counts and durations kept per thread, summed when Prometheus scrapes.

A prometheus_client Counter and Histogram take a lock per update, three per decision;
here each request thread counts into its own dict and list, which no other thread
writes, so an update is a few dict and list operations. A scrape copies every
thread's tally (each copy one C call, whole under the GIL) and adds them up; the
tallies of threads that have ended stay counted.
"""

from __future__ import annotations

import threading
from bisect import bisect_left

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

SECONDS_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 0.025, 0.1)


class _Own(threading.local):
    def __init__(self, everyone: list, lock: threading.Lock, size: int):
        self.counts: dict[tuple, int] = {}
        self.buckets = [0] * size
        self.total = [0.0]  # the sum of seconds, in a list so the tally shares it
        with lock:
            everyone.append((self.counts, self.buckets, self.total))


class DecisionTally:
    """`policyd_decisions_total{resource,action,allowed}` and the
    `policyd_decision_seconds` histogram, as a collector for a CollectorRegistry."""

    def __init__(self, buckets: tuple[float, ...] = SECONDS_BUCKETS):
        self.bounds = buckets
        self._tallies: list[tuple[dict, list, list]] = []
        self._own = _Own(self._tallies, threading.Lock(), len(buckets) + 1)

    def add(self, key: tuple[str, str, bool], seconds: float) -> None:
        own = self._own
        counts = own.counts
        counts[key] = counts.get(key, 0) + 1
        own.buckets[bisect_left(self.bounds, seconds)] += 1
        own.total[0] += seconds

    def totals(self) -> tuple[dict[tuple, int], list[int], float]:
        counts: dict[tuple, int] = {}
        buckets = [0] * (len(self.bounds) + 1)
        total = 0.0
        for c, b, t in list(self._tallies):
            for key, n in c.copy().items():
                counts[key] = counts.get(key, 0) + n
            for i, n in enumerate(b.copy()):
                buckets[i] += n
            total += t[0]
        return counts, buckets, total

    def describe(self):
        return [CounterMetricFamily("policyd_decisions", "Decisions made",
                                    labels=["resource", "action", "allowed"]),
                HistogramMetricFamily("policyd_decision_seconds",
                                      "Time to decide one request")]

    def collect(self):
        counts, buckets, total = self.totals()
        decisions = CounterMetricFamily("policyd_decisions", "Decisions made",
                                        labels=["resource", "action", "allowed"])
        for (rtype, action, allowed), n in sorted(counts.items()):
            decisions.add_metric([rtype, action, "true" if allowed else "false"], n)
        yield decisions
        cumulative, running = [], 0
        for bound, n in zip((*map(floatToGoString, self.bounds), "+Inf"), buckets, strict=True):
            running += n
            cumulative.append((bound, running))
        seconds = HistogramMetricFamily("policyd_decision_seconds",
                                        "Time to decide one request")
        seconds.add_metric([], cumulative, sum_value=total)
        yield seconds
