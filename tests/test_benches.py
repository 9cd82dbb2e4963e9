"""Every benchmark under bench/ still runs: each in its smoke mode (tiny sizes, its
numbers meaningless), two at a time. The real runs are for people, not CI; this keeps
them from rotting (issue 28, item 16: one had crashed unnoticed)."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from .conftest import ROOT

BENCH = ROOT / "bench"


def _benches() -> list:
    """The runnable benches: every module of bench/ with a __main__ (the rest are their
    helpers)."""
    return sorted(p for p in BENCH.glob("*.py")
                  if 'if __name__ == "__main__":' in p.read_text(encoding="utf-8"))


def _smoke(path) -> tuple[str, int, str]:
    proc = subprocess.run([sys.executable, str(path), "--smoke"], capture_output=True,
                          text=True, cwd=ROOT, timeout=240)
    return path.name, proc.returncode, proc.stdout + proc.stderr


def test_every_bench_runs_in_its_smoke_mode():
    benches = _benches()
    assert len(benches) >= 12  # a glob that found nothing would prove nothing
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(_smoke, benches))
    failed = [(name, out[-2000:]) for name, code, out in results if code != 0]
    assert failed == []
    for name, _, out in results:  # each prints its table: rows of measured numbers
        assert any(ch.isdigit() for ch in out) and len(out.splitlines()) >= 3, (name, out)
