"""Closed-loop load for the front-door benchmarks: N client threads, each calling as
fast as answers come back (its own connection in `state`), for a fixed time."""

from __future__ import annotations

import sys
import threading
import time


def load(call, clients: int, seconds: float) -> tuple[float, list[float]]:
    """Requests per second and latencies (ms) of `clients` threads calling for `seconds`."""
    stop, lat, lock, count = time.monotonic() + seconds, [], threading.Lock(), [0]

    def worker():
        mine, n = [], 0
        state = {}
        while time.monotonic() < stop:
            t = time.perf_counter()
            try:
                call(state)
            except BaseException as exc:  # a bench that measures failures measures nothing
                print(f"request failed: {exc}", file=sys.stderr)
                break
            mine.append((time.perf_counter() - t) * 1e3)
            n += 1
        with lock:
            lat.extend(mine)
            count[0] += n
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return count[0] / (time.monotonic() - t0), lat
