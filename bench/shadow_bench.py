"""The cost of `--shadow` (issue #16). Prints a table; not a test.

    python bench/shadow_bench.py [--runs 9]

A decision as the serving path makes it (`Engine.decide`), alone and followed by the
shadow comparison (`server.shadow.Shadow.compare`: the same request decided by the new
set, outcomes compared), on the orders example against a copy with one rule changed, so
some requests disagree and are logged. Each case has its own timed loop; medians of
runs. Target: the shadow path at most 2x a plain decision.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from policyd import Engine  # noqa: E402
from policyd.server.shadow import Shadow, shadow_engine  # noqa: E402
from tests.conftest import Unlimited, order, req, user  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--smoke", action="store_true",
                    help="a quick run that checks the bench still works; its numbers mean nothing")
    args = ap.parse_args()
    if args.smoke:
        args.runs = 1
    logging.getLogger("policyd.shadow").disabled = True  # the log line's cost is the writer's
    new = Path(tempfile.mkdtemp()) / "orders"
    shutil.copytree(ROOT / "policies/examples/orders", new)
    policy = new / "orders.policy"
    policy.write_text(policy.read_text().replace("deny * when", "deny delete when"))
    engine = Engine.from_path(ROOT / "policies/examples/orders", rate_store=Unlimited())
    shadow = Shadow(shadow_engine(new))
    requests = [req(user(f"u{i}", tenant="t1" if i % 4 else "t2"), action, order())
                for i in range(40) for action in ("read", "update", "list")]

    def plain():
        for r in requests:
            engine.decide(r)

    def shadowed():
        for r in requests:
            d, did = engine.decide(r)
            shadow.compare(r, d, did)

    rows = []
    for name, fn in (("decision", plain), ("decision + shadow", shadowed)):
        runs = []
        for _ in range(args.runs):
            t = time.perf_counter()
            for _ in range(50):
                fn()
            runs.append((time.perf_counter() - t) / (50 * len(requests)) * 1e6)
        rows.append((name, statistics.median(runs)))
    print(f"{'path':<22}{'us':>8}")
    for name, us in rows:
        print(f"{name:<22}{us:>8.2f}")
    print(f"shadow / plain: {rows[1][1] / rows[0][1]:.2f}x (target 2x); "
          f"{sum(1 for r in requests if r['principal']['attrs']['tenant'] == 't2') * 2 // 3}"
          " of every 120 requests disagree")


if __name__ == "__main__":
    main()
