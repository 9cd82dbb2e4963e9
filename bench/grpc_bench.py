"""gRPC benchmark (issue #3). Prints a table; not a test.

    python bench/grpc_bench.py [--seconds 5] [--inflight 32]

In one run on this machine: an echo server that parses the same CheckRequest and
returns a constant CheckResponse, then `policyd serve` on the orders example,
each driven by the same grpc.aio load generator in a separate process. Also: a
sequential client's latency, CheckBatch with 100 (resource, action) pairs, and
`--workers 2`. The load generator shares the 2 cores with the server(s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from concurrent import futures
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402

from policyd import wire  # noqa: E402
from policyd._proto.policyd.v1 import policyd_pb2 as pb  # noqa: E402

ORDERS = ROOT / "policies" / "examples" / "orders"
ROLES = ["viewer", "support", "editor", "admin"]
ACTIONS = ["read", "list", "update", "refund", "delete"]


def scenario(n: int, seed: int = 5) -> list[dict]:
    """Orders-example requests: 1,000 users, 10 tenants, 5,000 orders."""
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        u = rnd.randrange(1000)
        tenant = f"t{u % 10}" if rnd.random() < 0.6 else f"t{rnd.randrange(10)}"
        out.append({
            "principal": {"type": "User", "id": f"u{u}",
                          "attrs": {"roles": rnd.sample(ROLES, rnd.randint(0, 2)),
                                    "tenant": f"t{u % 10}", "mfa": rnd.random() < 0.5}},
            "action": rnd.choice(ACTIONS),
            "resource": {"type": "Order", "id": f"o{rnd.randrange(5000)}",
                         "attrs": {"owner": f"u{rnd.randrange(1000)}", "tenant": tenant,
                                   "status": "paid", "total": rnd.randint(1, 1000),
                                   "card_last4": "4242", "internal_notes": "",
                                   "shared_with": []}},
            "context": {"ip": f"10.{rnd.randrange(256)}.0.{rnd.randrange(256)}",
                        "time": "2026-11-22T10:00:00Z"},
        })
    return out


def check_payloads(n: int, compact: bool = True) -> list[bytes]:
    """Attributes as JSON bytes (the Python client's encoding) or as Struct (any client)."""
    return [wire.check_request(r, compact=compact).SerializeToString() for r in scenario(n)]


def batch_payloads(n: int, pairs: int = 100) -> list[bytes]:
    reqs = scenario(n * pairs // 4)
    out = []
    for i in range(n):
        chunk = reqs[i * pairs // 4:(i + 1) * pairs // 4]
        msg = pb.CheckBatchRequest(principal=wire.entity(chunk[0]["principal"]))
        wire.with_context(msg, chunk[0]["context"])
        for r in chunk:
            msg.items.add(resource=wire.entity(r["resource"]),
                          actions=["read", "update", "delete", "refund"])
        out.append(msg.SerializeToString())
    return out


# ---- the echo server ----------------------------------------------------------------


def run_echo(port: int, threads: int) -> None:
    constant = pb.CheckResponse(allowed=True, reasons=["echo"], visible_fields=["id"],
                                policy_version="echo", decision_id="echo")

    def check(request, context):
        return constant

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads))
    server.add_registered_method_handlers(wire.SERVICE, {  # as policyd registers its methods
        "Check": grpc.unary_unary_rpc_method_handler(
            check, request_deserializer=pb.CheckRequest.FromString,
            response_serializer=pb.CheckResponse.SerializeToString)})
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    signal.signal(signal.SIGTERM, lambda *_: server.stop(0))
    server.wait_for_termination()


# ---- the load generator (its own process) ------------------------------------------------


async def _load(target: str, method: str, payloads: list[bytes], seconds: float,
                inflight: int) -> dict:
    async with grpc.aio.insecure_channel(target, options=[
            ("grpc.max_receive_message_length", 64 << 20)]) as channel:
        call = channel.unary_unary(method, request_serializer=lambda b: b,
                                   response_deserializer=lambda b: b)
        loop = asyncio.get_running_loop()
        latencies: list[float] = []
        errors = [0]

        async def worker(start: int, until: float, record: bool) -> None:
            i = start
            while loop.time() < until:
                t0 = time.perf_counter()
                try:
                    await call(payloads[i % len(payloads)], timeout=30)
                except grpc.RpcError:
                    errors[0] += 1
                if record:
                    latencies.append(time.perf_counter() - t0)
                i += inflight

        warm = loop.time() + min(1.0, seconds / 4)
        await asyncio.gather(*(worker(i, warm, False) for i in range(inflight)))
        t0 = loop.time()
        await asyncio.gather(*(worker(i, t0 + seconds, True) for i in range(inflight)))
        elapsed = loop.time() - t0
    latencies.sort()
    return {"calls": len(latencies), "per_s": len(latencies) / elapsed, "errors": errors[0],
            "p50_ms": statistics.median(latencies) * 1e3,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3}


def loadgen(target: str, mode: str, seconds: float, inflight: int) -> dict:
    if mode == "batch":
        return asyncio.run(_load(target, wire.CHECK_BATCH, batch_payloads(50), seconds, inflight))
    if mode == "sequential":
        return asyncio.run(_load(target, wire.CHECK, check_payloads(2000), seconds, 1))
    payloads = check_payloads(2000, compact=mode != "struct")
    return asyncio.run(_load(target, wire.CHECK, payloads, seconds, inflight))


def drive(target: str, mode: str, seconds: float, inflight: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--loadgen", target, "--mode", mode,
                          "--seconds", str(seconds), "--inflight", str(inflight)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


# ---- orchestration --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int) -> None:
    end = time.monotonic() + 30
    while time.monotonic() < end:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            try:
                grpc.channel_ready_future(ch).result(timeout=0.5)
                time.sleep(0.3)
                return
            except grpc.FutureTimeoutError:
                pass
    raise TimeoutError(f"nothing listening on {port}")


def start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


def median_run(runs: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def struct_cost() -> tuple[float, float, float]:
    """µs to turn one parsed CheckRequest into the engine's dict: attributes as JSON, as
    Struct, and Struct through protobuf's MessageToDict."""
    def parsed(compact):
        return [pb.CheckRequest.FromString(wire.check_request(r, compact=compact)
                                           .SerializeToString()) for r in scenario(2000)]

    def timed(fn, msgs):
        t0 = time.perf_counter()
        for m in msgs:
            fn(m)
        return (time.perf_counter() - t0) / len(msgs) * 1e6

    from google.protobuf.json_format import MessageToDict
    plain = parsed(False)
    return (timed(wire.request_dict, parsed(True)), timed(wire.request_dict, plain),
            timed(MessageToDict, plain))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--inflight", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--loadgen", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="check", help=argparse.SUPPRESS)
    ap.add_argument("--echo-port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--smoke", action="store_true",
                    help="a quick run that checks the bench still works; its numbers mean nothing")
    args = ap.parse_args()
    if args.smoke:
        args.seconds, args.rounds, args.inflight = 0.1, 1, 4
    if args.loadgen:
        print(json.dumps(loadgen(args.loadgen, args.mode, args.seconds, args.inflight)))
        return
    if args.echo_port:
        run_echo(args.echo_port, args.threads)
        return

    s, n, threads = args.seconds, args.inflight, str(args.threads)
    ports = {name: free_port() for name in ("echo", "ours", "two")}
    procs = {
        "echo": start([__file__, "--echo-port", str(ports["echo"]), "--threads", threads]),
        "ours": start(["-m", "policyd", "serve", str(ORDERS), "--port", str(ports["ours"]),
                       "--threads", threads]),
        "two": start(["-m", "policyd", "serve", str(ORDERS), "--port", str(ports["two"]),
                      "--workers", "2", "--threads", threads]),
    }
    try:
        for port in ports.values():
            wait_ready(port)
        # rounds alternate the servers, so a slow phase of a noisy machine hits all alike
        runs: dict[tuple[str, str], list[dict]] = {}
        for _ in range(args.rounds):
            for name, mode in (("echo", "check"), ("ours", "check"), ("echo", "struct"),
                               ("ours", "struct"), ("two", "check"),
                               ("echo", "sequential"), ("ours", "sequential")):
                result = drive(f"127.0.0.1:{ports[name]}", mode, s, n)
                runs.setdefault((name, mode), []).append(result)
        batch = drive(f"127.0.0.1:{ports['ours']}", "batch", s, 8)
    finally:
        for proc in procs.values():
            stop(proc)
    modes = ("check", "struct", "sequential")
    echo = {m: median_run(runs[("echo", m)]) for m in modes}
    ours = {m: median_run(runs[("ours", m)]) for m in modes}
    ratio = {m: statistics.median(o["per_s"] / e["per_s"] for o, e in zip(
        runs[("ours", m)], runs[("echo", m)], strict=True)) for m in modes}
    seq = statistics.median(o["p50_ms"] / e["p50_ms"] for o, e in zip(
        runs[("ours", "sequential")], runs[("echo", "sequential")], strict=True))
    ours["batch"] = batch
    two = {"check": median_run(runs[("two", "check")])}
    as_json, as_struct, message_to_dict = struct_cost()

    print(f"gRPC Check, orders example, {n} calls in flight from a grpc.aio load generator in "
          f"its own process; medians of {args.rounds} alternating rounds of {s:.0f} s")
    print()
    print(f"| {'case':<44} | {'calls/s':>9} | {'p50 ms':>7} | {'p99 ms':>7} | {'errors':>6} |")
    print(f"|{'-' * 46}|{'-' * 11}|{'-' * 9}|{'-' * 9}|{'-' * 8}|")
    rows = [("echo server, attrs as JSON", echo["check"]),
            ("policyd serve, attrs as JSON (Python client)", ours["check"]),
            ("echo server, attrs as Struct", echo["struct"]),
            ("policyd serve, attrs as Struct", ours["struct"]),
            ("policyd serve --workers 2, JSON", two["check"]),
            ("echo, sequential client", echo["sequential"]),
            ("policyd, sequential client", ours["sequential"])]
    for name, r in rows:
        print(f"| {name:<44} | {r['per_s']:>9.0f} | {r['p50_ms']:>7.3f} | {r['p99_ms']:>7.3f} | "
              f"{r['errors']:>6} |")
    b = ours["batch"]
    print()
    print(f"CheckBatch, 100 pairs per call: {b['per_s'] * 100:,.0f} decisions/s "
          f"({b['per_s']:.0f} calls/s, p50 {b['p50_ms']:.2f} ms)")
    print("policyd / echo calls/s (median of the rounds' ratios): "
          f"JSON {ratio['check']:.2f}x, Struct {ratio['struct']:.2f}x (target >= 0.85x)")
    print(f"sequential p50, policyd / echo: {seq:.2f}x (target <= 1.2x)")
    print(f"--workers 2 / 1: {two['check']['per_s'] / ours['check']['per_s']:.2f}x")
    print(f"one CheckRequest to the engine's dict: {as_json:.1f} µs with JSON attributes, "
          f"{as_struct:.1f} µs with Struct (MessageToDict: {message_to_dict:.1f} µs)")


if __name__ == "__main__":
    main()
