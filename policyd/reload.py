"""Hot reload: watch a policy path, compile edits in the background, swap atomically.

Polling (no extra dependency, works on every filesystem and container mount): a
change must hold still for one interval before it is compiled, so a half-written
file is not picked up; a set that fails to compile is logged with its
diagnostics and the last good set keeps serving.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from .compiler import compile_path, policy_files
from .diagnostics import PolicyError
from .engine import Engine

log = logging.getLogger("policyd.reload")


def fingerprint(path: Path) -> tuple:
    try:
        files = policy_files(path)
        return tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    except (OSError, PolicyError):
        return ()


class PolicyWatcher:
    def __init__(self, path: Path, engine: Engine, interval: float = 0.5,
                 on_reload: Callable[[str], None] | None = None):
        self.path, self.engine, self.interval = Path(path), engine, interval
        self.on_reload = on_reload or (lambda result: None)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="policyd-reload", daemon=True)
        self._loaded = fingerprint(self.path)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        pending = self._loaded
        while not self._stop.wait(self.interval):
            current = fingerprint(self.path)
            if current == self._loaded:
                pending = current
            elif current == pending:  # changed, and unchanged for one interval since
                self._loaded = current
                self.reload()
            else:
                pending = current

    def reload(self) -> bool:
        """Compile the path now; swap it in if it checks. True when the new set serves."""
        try:
            policy_set = compile_path(self.path)
        except PolicyError as exc:
            log.error("reload failed, still serving %s:\n%s", self.engine.version, exc.render())
            self.on_reload("error")
            return False
        except Exception as exc:  # a watcher thread must never die of one bad edit
            log.error("reload failed, still serving %s: %s: %s", self.engine.version,
                      type(exc).__name__, exc)
            self.on_reload("error")
            return False
        previous = self.engine.version
        self.engine.swap(policy_set)
        log.info("reloaded %s: %s -> %s", self.path, previous, policy_set.version)
        self.on_reload("ok")
        return True
