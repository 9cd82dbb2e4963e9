"""Retiring a replaced set's entity data without stopping decisions.

Freeing a million entities' rows, parents and ancestors at once holds the GIL for about
0.4 s (measured), and CPython does it inside whatever thread its cycle collector happens
to run in: a decision. A retired set's data is taken apart here instead, a batch at a
time, once nothing can read it any more: no decision in flight holds the retired state,
no other set or caller holds the set or shares its data (a policy-only reload reuses
the data: datacache.py), and the data cache can no longer hand it out. When any of that
is not so within PATIENCE_S, nothing is touched: the ordinary collector frees it later.
"""

from __future__ import annotations

import sys
import threading
import time

from . import datacache

MIN_ENTITIES = 50_000  # smaller data is freed the ordinary way, in a few milliseconds
BATCH = 20_000  # entries freed between two yields of the GIL
GRACE_S = 2.0  # decisions take microseconds; a search or an explain holding the state is seen
PATIENCE_S = 60.0


def held_by(ps) -> tuple[int, int]:
    """The references to a set and its data before a state is made of them."""
    return sys.getrefcount(ps), sys.getrefcount(ps.entities)


def counts(state, ps, before: tuple[int, int]) -> tuple[int, int, int]:
    """What a just-installed state holds of itself, its set and its data: when `_reap`
    finds no more than that, nothing else can read them. -4 for the installer's name,
    its `self._state`, this call's argument and getrefcount's own."""
    return (sys.getrefcount(state) - 4, sys.getrefcount(ps) - before[0],
            sys.getrefcount(ps.entities) - before[1])


def retire(state, counts: tuple[int, int, int]) -> None:
    """Take the retired `state`'s entity data apart in the background, when it is safe.
    `counts`: the references the state itself adds to the state, the set and the data
    (measured when it was installed: see Engine._install)."""
    entities = state.ps.entities
    if entities is None or entities.count() < MIN_ENTITIES:
        return
    box = [state]  # the thread's arguments hold the box, never the state itself
    threading.Thread(target=_reap, args=(box, counts), name="policyd-retire",
                     daemon=True).start()


def _reap(box: list, counts: tuple[int, int, int]) -> None:
    time.sleep(GRACE_S)
    state = box.pop()
    own_state, own_set, own_data = counts
    deadline = time.monotonic() + PATIENCE_S
    while True:
        ps = state.ps
        entities = ps.entities
        with datacache.lock:
            # -2 for each: the local name here and getrefcount's own argument; the set
            # holds its data twice (its field and its module's `_g`)
            if sys.getrefcount(state) - 2 <= own_state and \
                    sys.getrefcount(ps) - 2 <= own_set and \
                    sys.getrefcount(entities) - 2 <= 2 + own_data:
                datacache.forget(entities)
                break
        del ps, entities
        if time.monotonic() > deadline:
            return
        time.sleep(0.1)
    del state, ps
    dismantle(entities)


def dismantle(entities) -> None:
    """Empty every large container of `entities`, BATCH entries at a time."""
    tables = [*entities.principals.values(), *entities.resources.values(),
              *entities.entities.values()]
    for t in tables:
        for value in list(t.cache.values()):
            _drain(value)
        t.cache.clear()
        _drain(t.rows)
    for table in [*entities.parents.values(), *entities.memo.values()]:
        _drain(table)


def _drain(container) -> None:
    if type(container) is list:
        while container:
            del container[-BATCH:]
            time.sleep(0)
    elif type(container) is dict:
        while container:
            for _ in range(min(BATCH, len(container))):
                container.popitem()
            time.sleep(0)
