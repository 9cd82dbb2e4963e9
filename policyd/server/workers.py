"""`--workers N`: N server processes sharing one port (SO_REUSEPORT).

The parent forks before any gRPC object exists, forwards SIGTERM/SIGINT to the
children, replaces a child that dies unexpectedly, and exits 0 once every child
has stopped cleanly. Each child compiles its own set and runs its own watcher.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable

log = logging.getLogger("policyd.workers")
RESTART_PAUSE = 1.0  # seconds between replacing a crashed child and the next


def _spawn(serve_one: Callable[[int], int], worker: int) -> int:
    pid = os.fork()
    if pid == 0:  # the child: serve, then leave without running the parent's cleanup
        code = 1
        try:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            code = serve_one(worker)
        except BaseException as exc:  # report, never unwind into the parent's code
            log.error("worker %d failed: %s: %s", os.getpid(), type(exc).__name__, exc)
        finally:
            os._exit(code)
    return pid


def serve_forked(workers: int, serve_one: Callable[[int], int]) -> int:
    """`serve_one(i)` runs worker i (0-based) in its own process; a replacement keeps i."""
    stopping = False
    children: dict[int, int] = {}  # pid -> worker index

    def forward(sig, _frame) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):  # it has just exited
                os.kill(pid, sig)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for worker in range(workers):
        children[_spawn(serve_one, worker)] = worker
    log.info("started %d workers: %s", workers, sorted(children))
    failed = False
    while children:
        pid, status = os.wait()
        worker = children.pop(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if stopping:
            failed |= code != 0
            continue
        log.error("worker %d exited with %d; starting a replacement", pid, code)
        time.sleep(RESTART_PAUSE)
        if not stopping:
            children[_spawn(serve_one, worker)] = worker
    return 1 if failed else 0
