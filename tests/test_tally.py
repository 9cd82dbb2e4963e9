"""The per-thread decision tally exposes exactly what prometheus_client's own Counter and
Histogram would for the same observations, and loses no update across threads."""

from __future__ import annotations

import random
import threading

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from policyd.server.tally import SECONDS_BUCKETS, DecisionTally


def _exposition(registry: CollectorRegistry) -> list[str]:
    return sorted(line for line in generate_latest(registry).decode().splitlines()
                  if "_created" not in line)


def test_the_exposition_is_prometheus_clients_own():
    rnd = random.Random(4)
    observations = [((rnd.choice(["Order", "Invoice"]), rnd.choice(["read", "update"]),
                      rnd.random() < 0.7), rnd.choice([3e-6, 1e-5, 4e-5, 2e-4, 0.02, 0.5]))
                    for _ in range(500)]
    theirs = CollectorRegistry()
    counter = Counter("policyd_decisions", "Decisions made", ["resource", "action", "allowed"],
                      registry=theirs)
    histogram = Histogram("policyd_decision_seconds", "Time to decide one request",
                          buckets=SECONDS_BUCKETS, registry=theirs)
    ours = CollectorRegistry()
    tally = DecisionTally()
    ours.register(tally)
    for (rtype, action, allowed), seconds in observations:
        counter.labels(rtype, action, "true" if allowed else "false").inc()
        histogram.observe(seconds)
        tally.add((rtype, action, allowed), seconds)
    assert _exposition(ours) == _exposition(theirs)


def test_threads_count_into_their_own_tallies_and_nothing_is_lost():
    tally = DecisionTally()
    start = threading.Barrier(8)

    def work(w):
        start.wait()
        for i in range(2000):
            tally.add(("Order", "read", i % 2 == 0), 1e-5 * (w + 1))

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    seen = []
    while any(t.is_alive() for t in threads):  # scrapes while the threads count
        seen.append(sum(tally.totals()[0].values()))
    for t in threads:
        t.join()
    counts, buckets, total = tally.totals()  # the ended threads' tallies still count
    assert counts == {("Order", "read", True): 8000, ("Order", "read", False): 8000}
    assert sum(buckets) == 16000 and abs(total - sum(2000 * 1e-5 * (w + 1)
                                                    for w in range(8))) < 1e-9
    assert seen == sorted(seen)  # a scrape never goes backwards
