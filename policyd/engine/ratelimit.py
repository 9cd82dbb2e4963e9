"""Rate buckets: GCRA arithmetic, the store interface, and the in-memory store.

GCRA keeps one number per bucket, its theoretical arrival time (TAT). With
interval T = period / N and burst B, a request at `now` passes when
max(TAT, now) + T - now <= B * T, and then TAT becomes max(TAT, now) + T. A
bucket whose TAT is in the past is full: the same as no bucket at all, which is
why expired buckets can be dropped without losing anything.

The arithmetic is exact: times are whole microseconds, T is period / N rounded up to
a whole microsecond (a limit never admits more than it says, and is at most 1 us
per token slower), and B * T is computed once, when the set is compiled. Every value
is an integer below 2**53, held in a float, so the memory store and the Redis script
(Lua's numbers are doubles) compute exactly the same thing. Absolute epoch floats in
seconds are not exact: there, `5 per 1s` at one instant admitted 4.
"""

from __future__ import annotations

import abc
import threading
from collections import OrderedDict
from dataclasses import dataclass
from itertools import islice

from ..language.checked import US
from ..language.checked import rate as rate  # (T, B * T) of a limit, as the checker makes them


def every(seconds: float, burst: float = 1) -> tuple[float, float]:
    """(T, B * T) for one token every `seconds`, holding `burst`: a bucket's numbers for
    callers that build buckets by hand (a generated limiter has them from `rate`)."""
    interval = float(max(1, round(seconds * US)))
    return interval, interval * burst


# x + 1.5 * 2**52 - 1.5 * 2**52 rounds a double to a whole number in two additions (a
# floor would give an int, and int/float arithmetic costs more than the rest together);
# past 2**51 us (2041) it rounds to even microseconds: still whole, still exact
_ROUND = 6755399441055744.0

# ((rule full name, *key values), T in us, B * T in us): what a generated limiter returns;
# the key is one flat tuple, hashed once per dict operation. Both numbers are whole.
Bucket = tuple[tuple, float, float]


class StoreUnavailable(Exception):
    """The store could not answer in time; the engine applies the configured failure mode."""


@dataclass(frozen=True, slots=True)
class Verdict:
    exhausted: tuple[str, ...]  # rule names whose bucket had no token; empty when it passes
    retry_after: float  # seconds until every exhausted bucket would pass

    @property
    def passed(self) -> bool:
        return not self.exhausted


PASSED = Verdict((), 0.0)


class RateStore(abc.ABC):
    """Takes one token from every bucket, or from none when any bucket is empty."""

    name = "abstract"

    @abc.abstractmethod
    def acquire(self, buckets: list[Bucket], now: float, dry_run: bool) -> Verdict:
        """The verdict for these buckets; raises StoreUnavailable when it cannot tell."""


class Unlimited(RateStore):
    """A store that always has tokens: for comparing two sets' decisions (`policyd diff`,
    `--shadow`), where rate rules must neither count twice nor decide."""

    name = "unlimited"

    def acquire(self, buckets, now, dry_run) -> Verdict:
        return PASSED


class MemoryStore(RateStore):
    """In-process buckets, bounded: at most `max_keys`, evicting expired buckets first,
    then the least recently used. An OrderedDict is the LRU list: finding the oldest
    bucket is O(1) whatever came and went before (a plain dict's first item is found by
    skipping every deleted slot, O(n) under key churn). Keys have a fixed size whatever
    the request held: generated limiters replace long key strings by a 16-byte digest."""

    name = "memory"
    SCAN = 64  # how many of the oldest buckets to look at for an expired one

    def __init__(self, max_keys: int = 1_000_000):
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.max_keys = max_keys
        self._tat: OrderedDict[tuple, float] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._tat)

    def acquire(self, buckets: list[Bucket], now: float, dry_run: bool) -> Verdict:
        tats = self._tat
        now = now * US + _ROUND - _ROUND  # whole microseconds, a float: exact below
        if len(buckets) == 1:  # the common case, with nothing allocated when it passes
            key, interval, limit = buckets[0]
            lock = self._lock
            lock.acquire()  # not `with`: its two method calls cost more than the rest here
            try:
                tat = tats.get(key)
                if tat is None:
                    start = now
                else:
                    tats.move_to_end(key)  # touched, refused or not: most recently used
                    start = now if tat < now else tat
                wait = start + interval - limit - now
                if wait > 0:
                    return Verdict((key[0],), wait / US)
                if dry_run:
                    return PASSED
                tats[key] = start + interval
                if tat is None:  # a new bucket: let go of the oldest one if it is full
                    self._expire_oldest(now)
                    if len(tats) > self.max_keys:
                        self._evict(now)
                return PASSED
            finally:
                lock.release()
        with self._lock:
            planned, exhausted, retry = [], [], 0.0
            for key, interval, limit in buckets:  # GCRA, as in the module docstring
                tat = tats.get(key)
                if tat is not None:
                    tats.move_to_end(key)
                start = now if tat is None or tat < now else tat
                wait = start + interval - limit - now
                if wait > 0:
                    exhausted.append(key[0])
                    if wait > retry:
                        retry = wait
                planned.append((key, start + interval, tat is None))
            if exhausted:
                return Verdict(tuple(exhausted), retry / US)
            if not dry_run:
                for key, new_tat, new in planned:
                    tats[key] = new_tat
                    if new:
                        self._expire_oldest(now)
                if len(tats) > self.max_keys:
                    self._evict(now)
            return PASSED

    def _expire_oldest(self, now: float) -> None:
        """Lazy expiry, one bucket per bucket created: the least recently used bucket goes
        when it is full again (dropping it loses nothing), so idle keys do not pile up
        until the bound."""
        tats = self._tat
        oldest = next(iter(tats))  # never empty: a bucket was just added
        if tats[oldest] <= now:
            del tats[oldest]

    def _evict(self, now: float) -> None:
        """Over the bound: a full bucket among the SCAN least recently used goes first
        (dropping it loses nothing), otherwise the least recently used one."""
        tats = self._tat
        while len(tats) > self.max_keys:
            full = next((k for k, tat in islice(tats.items(), self.SCAN) if tat <= now), None)
            if full is None:
                tats.popitem(last=False)
            else:
                del tats[full]
