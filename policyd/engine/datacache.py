"""Entity data kept across compiles: a reload that changes policy text but neither the
data files nor the declarations the data is checked against reuses the loaded data (and
its memoised ancestors) instead of loading a million entities again. Keyed by each data
file's sha256 (from the snapshot the set was read from), the data-facing part of every
declared type, and the string bound; held weakly, so it lives only as long as a set
that uses it."""

from __future__ import annotations

import threading
import weakref

from ..language.schema import Schema

lock = threading.Lock()  # also held by retire.py while it decides nothing holds data
_last: tuple | None = None  # (key, weak reference to EntityData)


def key_of(snapshot, data: dict, schema: Schema, max_bytes: int) -> tuple | None:
    """The key of `data` as `schema` reads it; None when the data did not come from the
    snapshot's files (a test's or a caller's own text is never reused)."""
    if snapshot is None or not data or data is not snapshot.data:
        return None
    files = tuple(sorted((path, snapshot.identities[path][2]) for path in data))
    types = tuple((s.kind, s.name, s.attrs, s.parents, s.whole)
                  for table in (schema.principals, schema.resources, schema.entities,
                                schema.records)
                  for s in sorted(table.values(), key=lambda s: s.name))
    return files, types, max_bytes


def reused(key: tuple | None):
    """The EntityData loaded under `key`, if a set still holds it."""
    if key is None:
        return None
    with lock:
        if _last is None or _last[0] != key:
            return None
        return _last[1]()


def remember(key: tuple | None, entities) -> None:
    global _last
    if key is not None:
        with lock:
            _last = (key, weakref.ref(entities))


def forget(entities) -> None:
    """Never hand `entities` out again (retire.py, with `lock` held)."""
    global _last
    if _last is not None and _last[1]() is entities:
        _last = None
