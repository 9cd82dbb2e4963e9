"""Many rules on one resource type (issue #17, target 2). Prints a table; not a test.

    python bench/deny_bench.py [--runs 9]

A type with N rules: N/2 denies (two of which hold for the benchmark request) and N/2
allows over distinct tenants, so a denied decision evaluates every deny condition.
Medians of runs, each case in its own loop; target: the 10,000-rule denied decision at
most 10x the 10-rule one. Compile time is printed too (it should grow linearly).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from policyd import Engine, compile_text  # noqa: E402
from tests.conftest import Unlimited  # noqa: E402


def policy(n: int) -> str:
    half = n // 2
    denies = [f'  d{i}: deny read when resource.tenant == "t{i}" and principal.level < {i % 9}'
              for i in range(half - 2)]
    denies += ['  held1: deny read when principal.level < 1',
               '  held2: deny read when resource.kind == "x"']
    allows = [f'  a{i}: allow read when resource.tenant == "t{i}"' for i in range(n - half)]
    return f"""principal User {{ roles: set<string>  level: number }}
resource Doc {{ tenant: string  kind: string  actions read }}
policy p for Doc {{
{chr(10).join(denies + allows)}
  show *
}}"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--smoke", action="store_true",
                    help="a quick run that checks the bench still works; its numbers mean nothing")
    args = ap.parse_args()
    if args.smoke:
        args.runs = 1
    request = {"principal": {"type": "User", "id": "u", "attrs": {"roles": [], "level": 0}},
               "action": "read",
               "resource": {"type": "Doc", "id": "d", "attrs": {"tenant": "t3", "kind": "x"}}}
    rows = []
    for n in (10, 100, 300) if args.smoke else (10, 1_000, 10_000):
        t = time.perf_counter()
        engine = Engine(compile_text(policy(n)), rate_store=Unlimited())
        compile_s = time.perf_counter() - t
        d = engine.check(request)
        assert not d.allowed and d.reasons[-2:] == ["p.held1", "p.held2"], d.reasons
        loops = max(20, 200_000 // n)
        runs = []
        for _ in range(args.runs):
            t = time.perf_counter()
            for i in range(loops):
                engine.check({**request, "principal": {**request["principal"], "id": f"u{i}"}})
            runs.append((time.perf_counter() - t) / loops * 1e6)
        rows.append((n, statistics.median(runs), compile_s))
    base = rows[0][1]
    print(f"{'rules':>8}{'denied us':>12}{'x 10 rules':>12}{'compile s':>11}")
    for n, us, c in rows:
        print(f"{n:>8,}{us:>12.1f}{us / base:>11.1f}x{c:>11.2f}")
    print(f"target: 10,000 rules <= 10x the 10-rule set: "
          f"{'met' if rows[-1][1] / base <= 10 else 'MISSED'}")


if __name__ == "__main__":
    main()
