"""Query plan benchmark (issue #12). Prints two tables; not a test.

    python bench/plan_bench.py [--rows 100000] [--runs 7]

1. `Engine.plan` on the orders example, each request in its own timed loop (median of
   runs, microseconds), beside `Engine.check` of one whole order for scale. Target: a
   median of at most 30 us.
2. A list endpoint over N orders in SQLite, indexed on (tenant, owner) and on owner:
   plan + the filtered query (with the visible-field masks), against loading every row
   and calling `check` on each. Both must return the same ids; target: the plan path
   at least 50x faster.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from policyd import Engine  # noqa: E402
from policyd.engine.ratelimit import Unlimited  # noqa: E402
from policyd.plans import to_sql, to_sql_columns  # noqa: E402

OFFICE = {"ip": "10.1.2.3", "time": "2026-11-22T10:00:00Z"}
COLUMNS = {a: a for a in ("id", "owner", "tenant", "status", "total", "card_last4",
                          "internal_notes", "shared_with")}


def user(uid, roles, tenant="t1", mfa=False):
    return {"type": "User", "id": uid, "attrs": {"roles": roles, "tenant": tenant, "mfa": mfa}}


CASES = [
    ("viewer lists orders", user("alice", ["viewer"]), "list"),
    ("owner updates", user("alice", ["viewer"]), "update"),
    ("no role: own or shared", user("dave", []), "read"),
    ("support refunds", user("carol", ["support"], mfa=True), "refund"),
    ("admin deletes", user("bob", ["admin"], mfa=True), "delete"),
]


def _median_us(fn, arg, n: int, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        for _ in range(n):
            fn(arg)
        times.append((time.perf_counter() - t) / n * 1e6)
    return statistics.median(times)


def plan_latency(engine: Engine, runs: int) -> None:
    print("engine.plan on the orders example (median of runs, one loop per request)")
    print(f"{'request':<26}{'kind':<13}{'plan us':>9}{'check us':>10}{'ratio':>7}"
          f"{'target':>9}")
    whole = {"type": "Order", "id": "o1", "attrs": {
        "owner": "alice", "tenant": "t1", "status": "paid", "total": 20, "card_last4": "4242",
        "internal_notes": "", "shared_with": []}}
    worst = 0.0
    for label, principal, action in CASES:
        request = {"principal": principal, "action": action, "resource": {"type": "Order"},
                   "context": OFFICE}
        kind = engine.plan(request).kind
        plans, checks = [], []
        for _ in range(runs):  # interleaved: the machine's noise hits both alike
            plans.append(_median_us(engine.plan, request, 2000, 1))
            checks.append(_median_us(engine.check, {**request, "resource": whole}, 2000, 1))
        plan_us, check_us = statistics.median(plans), statistics.median(checks)
        worst = max(worst, plan_us)
        print(f"{label:<26}{kind:<13}{plan_us:>9.1f}{check_us:>10.1f}{plan_us / check_us:>6.1f}x"
              f"{'<= 30' if plan_us <= 30 else 'MISSED':>9}")
    print(f"worst median: {worst:.1f} us (target 30)\n")


def _fill(db: sqlite3.Connection, rows: int) -> None:
    rng = random.Random(12)
    db.execute("CREATE TABLE orders (id TEXT PRIMARY KEY, owner TEXT, tenant TEXT, "
               "status TEXT, total REAL, card_last4 TEXT, internal_notes TEXT, "
               "shared_with TEXT)")
    users = [f"u{i}" for i in range(1000)] + ["alice", "dave"]
    batch = []
    for i in range(rows):
        owner, tenant = rng.choice(users), f"t{rng.randint(1, 100)}"
        shared = rng.sample(users, rng.randint(0, 2))
        if i % 97 == 0:  # alice owns some orders of her tenant; some are shared with dave
            owner, tenant = "alice", "t1"
        if i % 89 == 0:
            shared, tenant = ["dave"], "t1"
        batch.append((f"o{i}", owner, tenant, rng.choice(["paid", "open"]),
                      rng.randint(1, 900), f"{rng.randint(0, 9999):04d}", "",
                      json.dumps(shared)))
    db.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?)", batch)
    db.execute("CREATE INDEX orders_tenant_owner ON orders (tenant, owner)")
    db.execute("CREATE INDEX orders_owner ON orders (owner)")
    db.commit()


def _by_plan(engine, db, request) -> list[str]:
    plan = engine.plan(request)
    where, params = to_sql(plan, COLUMNS, "sqlite")
    select, select_params = to_sql_columns(plan, COLUMNS, "sqlite")
    if not select:
        return []
    rows = db.execute(f"SELECT {select} FROM orders WHERE {where}", select_params + params)
    return sorted(r[0] for r in rows)


def _by_rows(engine, db, request) -> list[str]:
    out = []
    for oid, owner, tenant, status, total, last4, notes, shared in db.execute(
            "SELECT * FROM orders"):
        attrs = {"owner": owner, "tenant": tenant, "status": status, "total": total,
                 "card_last4": last4, "internal_notes": notes,
                 "shared_with": json.loads(shared)}
        d = engine.check({**request, "resource": {"type": "Order", "id": oid,
                                                  "attrs": attrs}})
        if d.allowed:
            out.append(oid)
    return sorted(out)


def list_endpoint(engine: Engine, rows: int, runs: int) -> None:
    db = sqlite3.connect(":memory:")
    _fill(db, rows)
    print(f"a list endpoint over {rows:,} orders in SQLite (median of {runs} runs, ms)")
    print(f"{'request':<26}{'rows':>7}{'plan+query':>12}{'check/row':>11}{'speedup':>9}"
          f"{'same ids':>10}")
    worst = None
    for label, principal, action in CASES:
        request = {"principal": principal, "action": action, "context": OFFICE,
                   "resource": {"type": "Order"}}
        fast = [_timed(_by_plan, engine, db, request) for _ in range(runs)]
        slow = [_timed(_by_rows, engine, db, request) for _ in range(max(1, runs // 3))]
        same = fast[0][1] == slow[0][1]
        t_fast = statistics.median(t for t, _ in fast)
        t_slow = statistics.median(t for t, _ in slow)
        ratio = t_slow / t_fast
        worst = ratio if worst is None else min(worst, ratio)
        print(f"{label:<26}{len(fast[0][1]):>7}{t_fast * 1e3:>12.2f}{t_slow * 1e3:>11.1f}"
              f"{ratio:>8.0f}x{'yes' if same else 'NO':>10}")
        if not same:
            raise SystemExit(f"{label}: the plan returned other ids than check")
    print(f"smallest speedup: {worst:.0f}x (target 50x)")


def _timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--smoke", action="store_true",
                    help="a quick run that checks the bench still works; its numbers mean nothing")
    args = ap.parse_args()
    if args.smoke:
        args.rows, args.runs = 500, 1
    engine = Engine.from_path(ROOT / "policies/examples/orders", rate_store=Unlimited())
    plan_latency(engine, args.runs)
    list_endpoint(engine, args.rows, args.runs)


if __name__ == "__main__":
    main()
