"""The example orders API under load (issue #15): uvicorn with one worker, 32 requests in
flight from a raw asyncio HTTP/1.1 client, `GET /orders/{id}` with policyd in process,
remote (beside `policyd serve`) and with authorization off; then sequential list
requests (50 rows from 100,000 through the plan).

    python bench/integration_bench.py [--seconds 8] [--orders 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from examples.orders_api.db import database  # noqa: E402
from examples.orders_api.dev import DevIssuer  # noqa: E402

USERS = 2000  # orders' owners
CALLERS = 200  # `limit *: 100 per 1s` is per principal: the load is spread over 200
# callers, each reusing its token as real clients do (a token is verified once, then
# remembered until it expires: bench/envoy_bench.py measures the first verification)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_db(path: Path, n: int) -> list[str]:
    database(f"sqlite:///{path}")  # the schema
    rnd = random.Random(11)
    rows = [(f"o{i:07}", f"u{rnd.randrange(USERS)}", "t1" if i % 2 else "t2",
             rnd.choice(["new", "paid"]), rnd.randrange(1, 900), f"{rnd.randrange(10**4):04}",
             "", "[]") for i in range(n)]
    with sqlite3.connect(path) as c:
        c.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return [r[0] for r in rows if r[2] == "t1"]


def start(args: list[str], env: dict, port: int | None = None) -> subprocess.Popen:
    proc = subprocess.Popen(args, env={**os.environ, "PYTHONPATH": str(ROOT), **env},
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if port is not None:
        end = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > end or proc.poll() is not None:
                    raise RuntimeError(f"{args} did not start") from None
                time.sleep(0.1)
    return proc


def uvicorn(factory: str, port: int, env: dict) -> subprocess.Popen:
    return start([sys.executable, "-m", "uvicorn", "--factory", f"bench.orders_apps:{factory}",
                  "--port", str(port), "--workers", "1", "--log-level", "warning",
                  "--no-access-log", "--proxy-headers", "--forwarded-allow-ips",
                  "127.0.0.1"], env, port)


def requests(ids: list[str], tokens: list[str] | None, n: int = 20000) -> list[bytes]:
    rnd = random.Random(5)
    out = []
    for i in range(n):
        auth = f"authorization: Bearer {tokens[i % len(tokens)]}\r\n" if tokens else ""
        out.append((f"GET /orders/{rnd.choice(ids)} HTTP/1.1\r\nhost: 127.0.0.1\r\n{auth}"
                    "x-forwarded-for: 10.1.2.3\r\n\r\n").encode())
    return out


async def _one(reader, writer, payload: bytes) -> int:
    writer.write(payload)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return int(head[9:12])


async def _load(port: int, payloads: list[bytes], inflight: int, seconds: float):
    lat, statuses, stop = [], {}, time.monotonic() + seconds

    async def worker(k: int):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = k
        while time.monotonic() < stop:
            t = time.perf_counter()
            status = await _one(reader, writer, payloads[i % len(payloads)])
            lat.append((time.perf_counter() - t) * 1e3)
            statuses[status] = statuses.get(status, 0) + 1
            i += inflight
        writer.close()
    t0 = time.monotonic()
    await asyncio.gather(*(worker(k) for k in range(inflight)))
    return len(lat) / (time.monotonic() - t0), lat, statuses


def load(port, payloads, inflight, seconds):
    asyncio.run(_load(port, payloads, inflight, 1.5))  # warm up (every token seen)
    return asyncio.run(_load(port, payloads, inflight, seconds))


async def _sequential(port: int, payloads: list[bytes]) -> list[float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out = []
    for p in payloads:
        t = time.perf_counter()
        status = await _one(reader, writer, p)
        out.append((time.perf_counter() - t) * 1e3)
        if status != 200:
            raise RuntimeError(f"list answered {status}")
    writer.close()
    return out


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--orders", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--inflight", type=int, default=32)
    ap.add_argument("--smoke", action="store_true",
                    help="a quick run that checks the bench still works; its numbers mean nothing")
    args = ap.parse_args()
    if args.smoke:
        args.seconds, args.orders, args.runs, args.inflight = 0.2, 300, 1, 2
    tmp = Path(tempfile.mkdtemp(prefix="policyd-integration-"))
    ids = make_db(tmp / "orders.db", args.orders)
    issuer = DevIssuer(tmp / "keys")
    tokens = [issuer.token(f"u{i}", roles=["viewer"], tenant="t1", mfa=False)
              for i in range(CALLERS)]
    env = {"ORDERS_DATABASE_URL": f"sqlite:///{tmp}/orders.db", "ORDERS_JWKS": str(issuer.jwks)}
    grpc_port = free_port()
    serve = start([sys.executable, "-m", "policyd", "serve", "policies/examples/orders",
                   "--port", str(grpc_port)], {}, grpc_port)
    modes = {"authorization off": ("unprotected", {}),
             "policyd in process": ("protected", {}),
             "policyd remote (gRPC)": ("protected", {"ORDERS_POLICYD": f"127.0.0.1:{grpc_port}"})}
    results: dict[str, list] = {m: [] for m in modes}
    lists: dict[str, list[float]] = {}
    try:
        for _ in range(args.runs):  # modes interleaved: noise hits each alike
            for mode, (factory, extra) in modes.items():
                port = free_port()
                app = uvicorn(factory, port, {**env, **extra})
                try:
                    payloads = requests(ids, None if factory == "unprotected" else tokens)
                    rps, lat, statuses = load(port, payloads, args.inflight, args.seconds)
                    if set(statuses) != {200}:
                        raise RuntimeError(f"{mode}: answers {statuses}")
                    results[mode].append((rps, pct(lat, 0.5), pct(lat, 0.99)))
                    auth = "" if factory == "unprotected" else \
                        f"authorization: Bearer {tokens[0]}\r\n"
                    page = (f"GET /orders?limit=50 HTTP/1.1\r\nhost: x\r\n{auth}"
                            "x-forwarded-for: 10.1.2.3\r\n\r\n").encode()
                    lists.setdefault(mode, []).extend(
                        asyncio.run(_sequential(port, [page] * (40 if args.smoke else 320)))
                        [20:])
                finally:
                    app.terminate()
                    app.wait(10)
    finally:
        serve.terminate()
        serve.wait(10)
    print(f"GET /orders/{{id}}: uvicorn 1 worker, {args.inflight} in flight, {args.seconds:.0f} s"
          f" x {args.runs} runs, {args.orders:,} orders (medians)")
    print(f"{'mode':24} {'req/s':>8} {'vs off':>7} {'p50 ms':>7} {'p99 ms':>7}"
          f" {'list p50':>9} {'list p99':>9}")
    offs = [r[0] for r in results["authorization off"]]
    for mode, rs in results.items():
        rps = statistics.median(r[0] for r in rs)
        ratio = statistics.median(r[0] / off for r, off in zip(rs, offs, strict=True))
        print(f"{mode:24} {rps:8.0f} {ratio:6.2f}x {statistics.median(r[1] for r in rs):7.2f}"
              f" {statistics.median(r[2] for r in rs):7.2f} {pct(lists[mode], 0.5):9.2f}"
              f" {pct(lists[mode], 0.99):9.2f}")
    print("vs off: the median over runs of each run's ratio (the modes of a run are "
          "measured back to back)")
    print("list: GET /orders?limit=50 sequential, one connection (ms); protected: filtered "
          "by the viewer's plan in SQL")


if __name__ == "__main__":
    main()
