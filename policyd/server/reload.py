"""Hot reload: watch a policy path, compile edits in the background, swap atomically.

Polling (no extra dependency, works on every filesystem and container mount): a
change must hold still for one interval before it is compiled, and a compiled set
is installed only if every file is still exactly what was read (same names,
sizes, mtimes and content hashes) after compiling, so a file rewritten in place
is never installed half-written. A file, policy or entity data, that is now shorter
than the one serving (emptied, or cut short at a line boundary where a rewrite in
place paused) must hold still for EMPTIED_HOLD seconds as well: a rewrite in place
starts with an empty file, and on a busy machine the writer may not get to write for
longer than an interval. Writers that can should replace files by rename, which is
atomic. A set that fails to compile is logged with its diagnostics and the last good
set keeps serving.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..engine import Engine
from ..engine.compiler import compile_path
from ..language.diagnostics import PolicyError
from ..language.sources import data_files, policy_files, unchanged

log = logging.getLogger("policyd.reload")
EMPTIED_HOLD = 1.0  # seconds a file that got shorter must hold still before it is installed


def fingerprint(path: Path, data: tuple = ()) -> tuple:
    """Names, mtimes and sizes of the set's policy and entity data files."""
    try:
        files = policy_files(path) + data_files(path, data)
        return tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    except (OSError, PolicyError):
        return ()


def _emptied(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """Files that held declarations before and hold nothing now."""
    def blank(text: str) -> bool:
        return all(not line.strip() or line.lstrip().startswith("#")
                   for line in text.splitlines())

    return [f for f, text in new.items() if blank(text) and f in old and not blank(old[f])]


def _shrunk(old, new) -> list[str]:
    """Files, policy or entity data, smaller than the ones serving (by the sizes the two
    snapshots read): what a rewrite in place looks like until it is done."""
    if old is None or new is None:
        return []
    return [f for f, ident in new.identities.items()
            if f in old.identities and ident[0] < old.identities[f][0]]


class PolicyWatcher:
    def __init__(self, path: Path, engine: Engine, interval: float = 0.5,
                 on_reload: Callable[[str], None] | None = None, max_string_bytes: int = 4096,
                 data: tuple = (), fits: Callable | None = None):
        self.path, self.engine, self.interval = Path(path), engine, interval
        self.fits = fits  # a set -> why the server's configuration does not fit it (or [])
        self.data = tuple(data)
        self.max_string_bytes = max_string_bytes
        self.on_reload = on_reload or (lambda result: None)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="policyd-reload", daemon=True)
        self._loaded = fingerprint(self.path, self.data)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        pending, since, waiting = self._loaded, time.monotonic(), None
        while not self._stop.wait(self.interval):
            current = fingerprint(self.path, self.data)
            if current == self._loaded:
                pending = current
            elif current == pending:  # changed, and unchanged for one interval since
                held = time.monotonic() - since
                if current == waiting and held < EMPTIED_HOLD:
                    continue  # it empties a file: not compiled again until it has held
                done = self.reload(expect=current, held=held)
                if done:
                    self._loaded = current
                elif done is None:
                    waiting = current
                else:
                    pending = ()  # look again next time: a changed or broken set stays pending
            else:
                pending, since = current, time.monotonic()

    def reload(self, expect: tuple | None = None, held: float | None = None) -> bool | None:
        """Compile the path now; swap it in if it checks and did not change while it was
        read and compiled. True when the new set serves; None when it empties or shortens
        a file and has held still for `held` seconds, less than EMPTIED_HOLD (the watcher
        asks again; a direct call, without `held`, installs it)."""
        try:
            policy_set = compile_path(self.path, self.max_string_bytes, self.data)
        except PolicyError as exc:
            log.error("reload failed, still serving %s:\n%s", self.engine.version, exc.render())
            self.on_reload("error")
            return expect is not None  # broken but stable: do not compile it again and again
        except Exception as exc:  # a watcher thread must never die of one bad edit
            log.error("reload failed, still serving %s: %s: %s", self.engine.version,
                      type(exc).__name__, exc)
            self.on_reload("error")
            return False
        misfits = self.fits(policy_set) if self.fits is not None else []
        if misfits:  # e.g. [authn.jwt] principal_type names a type the edit removed
            log.error("reload refused, still serving %s: the configuration does not fit the "
                      "new set:\n%s", self.engine.version, "\n".join(misfits))
            self.on_reload("error")
            return expect is not None
        stale = policy_set.snapshot is None or not unchanged(policy_set.snapshot) or \
            (expect is not None and fingerprint(self.path, self.data) != expect)
        if stale:
            log.info("reload skipped: %s changed while it was read; trying again", self.path)
            self.on_reload("changed")
            return False
        serving = self.engine.policy_set
        emptied = _emptied(serving.sources, policy_set.sources)
        shorter = emptied or _shrunk(serving.snapshot, policy_set.snapshot)
        if shorter and held is not None and held < EMPTIED_HOLD:
            return None
        for file in emptied:
            log.warning("reload: %s is now empty (it held declarations before)", file)
        previous = self.engine.version
        self.engine.swap(policy_set)
        log.info("reloaded %s: %s -> %s", self.path, previous, policy_set.version)
        self.on_reload("ok")
        return True
