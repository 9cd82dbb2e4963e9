"""Rate limiting benchmark (issue #4). Prints tables; not a test.

    python bench/rate_bench.py [--keys 1000000] [--seconds 3]

1. In-process decision time with 0, 1 and 3 applicable limits (memory store), beside
   the hand-written chain of bench/inprocess.py as the machine's speed; and the memory
   store's cost per new bucket under key churn, at 10,000 to 1,000,000 buckets.
2. Memory-store RSS after 1,000,000 distinct keys, and the bound at 2,000,000.
3. gRPC Check calls/s with Redis-backed limits, against the same server with
   the limit rules removed (redis-server on loopback; skipped if not installed).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from policyd import Engine, compile_text  # noqa: E402

SCHEMA = """
principal User { roles: set<string> tenant: string }
context { ip: ip }
resource Doc { tenant: string actions read }
"""
LIMITS = ["  per_user: limit read: 1000000 per 1s by principal.id",
          "  per_ip: limit read: 1000000 per 1s by context.ip",
          "  per_pair: limit read: 1000000 per 1s by principal.id, resource.tenant"]


def policy(n_limits: int) -> str:
    rules = ["  allow read when principal.tenant == resource.tenant", *LIMITS[:n_limits]]
    return SCHEMA + "policy p for Doc {\n" + "\n".join(rules) + "\n  show id when true\n}\n"


def requests(n: int, seed: int = 1) -> list[dict]:
    rnd = random.Random(seed)
    return [{"principal": {"type": "User", "id": f"u{rnd.randrange(10_000)}",
                           "attrs": {"roles": [], "tenant": "t1"}},
             "action": "read",
             "resource": {"type": "Doc", "id": "d", "attrs": {"tenant": "t1"}},
             "context": {"ip": f"10.0.{rnd.randrange(256)}.{rnd.randrange(256)}"}}
            for _ in range(n)]


def per_limit_cost(n: int, passes: int) -> dict:
    """Median µs per decision with 0, 1 and 3 limits, and the hand-written chain of
    bench/inprocess.py on its own requests: the machine's speed in the same run."""
    import inprocess

    engines = {k: Engine(compile_text(policy(k))) for k in (0, 1, 3)}
    reqs = requests(n)
    hand_reqs = inprocess.scenario(n)
    for e in engines.values():
        for r in reqs:
            e.check(r)
    cases = {**{k: (e.check, reqs) for k, e in engines.items()},
             "hand": (inprocess.handwritten, hand_reqs)}
    clock, samples = time.perf_counter_ns, {k: [] for k in cases}
    gc.disable()
    try:
        for _ in range(passes):  # interleaved, so machine noise hits every case alike
            for k, (fn, items) in cases.items():
                for r in items:
                    t0 = clock()
                    fn(r)
                    samples[k].append(clock() - t0)
    finally:
        gc.enable()
    return {k: statistics.median(v) / 1000 for k, v in samples.items()}


def churn_cost(sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)) -> dict:
    """µs per new bucket once `size` buckets exist, for a stream of new principals or
    addresses: (a) they have all expired, so each new bucket lets the oldest go; (b) at
    the --rate-max-keys bound with none expired, so each new one evicts (scanning the 64
    least recently used for a full bucket first)."""
    from policyd.engine.ratelimit import MemoryStore, every

    def per_new(store: MemoryStore, size: int, now: float) -> float:
        for i in range(size):
            store.acquire([(("r", f"old{i}"), *every(3600.0, 10.0))], 0.0, False)
        fresh = [[(("r", f"new{i}"), *every(3600.0, 10.0))] for i in range(20_000)]
        t0 = time.perf_counter_ns()
        for b in fresh:
            store.acquire(b, now, False)
        return (time.perf_counter_ns() - t0) / len(fresh) / 1000

    out = {}
    for size in (sizes[0], *sizes):  # the first round warms the allocator up, not kept
        out[size] = (per_new(MemoryStore(max_keys=2 * size), size, 1e6),
                     per_new(MemoryStore(max_keys=size), size, 1.0))
    return out


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory_run(keys: int) -> None:
    """In a fresh process: fill a 1,000,000-key store to `keys` distinct principals."""
    from policyd.engine.ratelimit import MemoryStore

    store = MemoryStore(max_keys=1_000_000)
    hourly = policy(1).replace("1000000 per 1s", "100 per 1h")  # buckets that stay live
    engine = Engine(compile_text(hourly), rate_store=store)
    base = rss_mb()
    marks = {}
    r = requests(1)[0]
    for i in range(keys):
        r["principal"]["id"] = f"user-{i:08d}"
        engine.check(r)
        if i + 1 in (1_000_000, 2_000_000):
            marks[i + 1] = (rss_mb(), len(store))
    print(json.dumps({"base": base, "marks": marks}))


def memory_table(keys: int) -> None:
    out = subprocess.run([sys.executable, __file__, "--memory-run", str(keys)],
                         capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    print(f"Memory store (--rate-max-keys 1000000), one limit keyed by principal.id; "
          f"process RSS before: {data['base']:.0f} MB")
    print()
    print("| distinct keys | buckets kept | process RSS MB |")
    print("|---|---|---|")
    for n, (rss, kept) in sorted(data["marks"].items(), key=lambda kv: int(kv[0])):
        print(f"| {int(n):,} | {kept:,} | {rss:.0f} |")


def grpc_table(seconds: float, threads: list[int]) -> None:
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        print("redis-server not installed: Redis case skipped")
        return
    import grpc_bench as gb

    orders = ROOT / "policies" / "examples" / "orders"
    tmp = Path(tempfile.mkdtemp())
    plain = tmp / "nolimits"
    shutil.copytree(orders, plain)
    text = (plain / "orders.policy").read_text()
    (plain / "orders.policy").write_text("\n".join(
        line for line in text.splitlines() if not line.strip().startswith("limit ")))
    rport = gb.free_port()
    redis_proc = subprocess.Popen([redis_server, "--port", str(rport), "--save", "",
                                   "--appendonly", "no"], stdout=subprocess.DEVNULL)
    servers = {
        "no limits": ["-m", "policyd", "serve", str(plain)],
        "limits, memory store": ["-m", "policyd", "serve", str(orders)],
        **{f"limits, Redis store, {n} threads": [
            "-m", "policyd", "serve", str(orders), "--rate-store",
            f"redis://127.0.0.1:{rport}/0", "--threads", str(n)] for n in threads},
    }
    ports, procs = {}, {}
    try:
        time.sleep(0.5)
        for name, args in servers.items():
            ports[name] = gb.free_port()
            procs[name] = gb.start(args + ["--port", str(ports[name])])
        for port in ports.values():
            gb.wait_ready(port)
        runs = {name: [] for name in servers}
        for _ in range(3):
            for name, port in ports.items():
                runs[name].append(gb.drive(f"127.0.0.1:{port}", "check", seconds, 32))
    finally:
        for proc in procs.values():
            gb.stop(proc)
        redis_proc.terminate()
        shutil.rmtree(tmp)
    print(f"gRPC Check, orders example, 32 in flight; medians of 3 alternating rounds of "
          f"{seconds:.0f} s")
    print()
    print("| server | calls/s | p50 ms | p99 ms | x no limits |")
    print("|---|---|---|---|---|")
    base = statistics.median(r["per_s"] for r in runs["no limits"])
    for name, rs in runs.items():
        med = gb.median_run(rs)
        print(f"| {name} | {med['per_s']:.0f} | {med['p50_ms']:.2f} | {med['p99_ms']:.2f} | "
              f"{med['per_s'] / base:.2f}x |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=2_000_000)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--redis-threads", type=int, nargs="+", default=[2, 8],
                    help="request threads of the Redis-backed servers (one row each)")
    ap.add_argument("--only-grpc", action="store_true", help="skip the in-process tables")
    ap.add_argument("--only-inprocess", action="store_true",
                    help="the in-process tables only (no RSS run, no servers)")
    ap.add_argument("--memory-run", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--smoke", action="store_true",
                    help="a quick run that checks the bench still works; its numbers mean nothing")
    args = ap.parse_args()
    if args.smoke:
        args.keys, args.seconds, args.redis_threads = 2000, 0.2, [2]
    if args.memory_run:
        memory_run(args.memory_run)
        return
    if args.only_grpc:
        grpc_table(args.seconds, args.redis_threads)
        return
    costs = per_limit_cost(200, 1) if args.smoke else per_limit_cost(10_000, 5)
    hand = costs.pop("hand")
    print("In-process decision, median µs (10,000 requests x 5 passes, interleaved); the")
    print(f"hand-written chain of bench/inprocess.py took {hand:.2f} µs in the same run")
    print()
    print("| applicable limits | median µs | added per limit µs | added per limit / hand-written |")
    print("|---|---|---|---|")
    for k, v in costs.items():
        added = (v - costs[0]) / k if k else 0.0
        print(f"| {k} | {v:.2f} | {added:.2f} | {added / hand:.2f}x |")
    print()
    print("Memory store under key churn: µs per new bucket while the store holds N buckets")
    print()
    print("| buckets held | all expired | at the bound, none expired |")
    print("|---|---|---|")
    for size, (expired, full) in churn_cost((1000,) if args.smoke else
                                            (10_000, 100_000, 1_000_000)).items():
        print(f"| {size:,} | {expired:.2f} | {full:.2f} |")
    print()
    if args.only_inprocess:
        return
    memory_table(args.keys)
    print()
    grpc_table(args.seconds, args.redis_threads)


if __name__ == "__main__":
    main()
