"""Observability overhead (issue #6). Prints a table; not a test.

    python bench/obs_bench.py [--seconds 3] [--rounds 6]

`policyd serve` on the orders example with the decision log to a file and
metrics on, against the same server with both off; both started together and
driven in alternating rounds (ABBA) by the grpc_bench load generator (32 in
flight). Prints the medians, each round's ratio, and each server's own CPU per call
(from /proc), which the machine's noise moves less than calls/s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import grpc_bench as gb  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--smoke", action="store_true",
                    help="a quick run that checks the bench still works; its numbers mean nothing")
    args = ap.parse_args()
    if args.smoke:
        args.seconds, args.rounds = 0.2, 1
    tmp = Path(tempfile.mkdtemp())
    ports = {"both off": gb.free_port(), "decision log + metrics": gb.free_port()}
    mport = gb.free_port()
    procs = {
        "both off": gb.start(["-m", "policyd", "serve", str(gb.ORDERS), "--port",
                              str(ports["both off"])]),
        "decision log + metrics": gb.start([
            "-m", "policyd", "serve", str(gb.ORDERS), "--port",
            str(ports["decision log + metrics"]), "--decision-log", str(tmp / "d.jsonl"),
            "--metrics-port", str(mport)]),
    }
    try:
        for port in ports.values():
            gb.wait_ready(port)
        runs = {name: [] for name in ports}
        cpu = {name: [] for name in ports}
        names = list(ports)
        for i in range(args.rounds):  # ABBA: neither server always goes first
            for name in names if i % 2 == 0 else names[::-1]:
                before = cpu_seconds(procs[name].pid)
                run = gb.drive(f"127.0.0.1:{ports[name]}", "check", args.seconds, 32)
                runs[name].append(run)
                cpu[name].append((cpu_seconds(procs[name].pid) - before)
                                 / (run["per_s"] * args.seconds) * 1e6)
    finally:
        for proc in procs.values():
            gb.stop(proc)
    lines = len((tmp / "d.jsonl").read_text().splitlines())
    base = statistics.median(r["per_s"] for r in runs["both off"])
    ratios = [on["per_s"] / off["per_s"] for on, off in
              zip(runs["decision log + metrics"], runs["both off"], strict=True)]
    print(f"gRPC Check, orders example, 32 in flight; medians of {args.rounds} alternating "
          f"rounds of {args.seconds:.0f} s (ABBA order)")
    print()
    print("| server | calls/s | p50 ms | p99 ms | server CPU µs per call | x both off |")
    print("|---|---|---|---|---|---|")
    for name, rs in runs.items():
        med = gb.median_run(rs)
        print(f"| {name} | {med['per_s']:.0f} | {med['p50_ms']:.2f} | {med['p99_ms']:.2f} | "
              f"{statistics.median(cpu[name]):.0f} | {med['per_s'] / base:.2f}x |")
    print()
    print("round by round, on / off: " + ", ".join(f"{r:.2f}x" for r in ratios)
          + f"; median {statistics.median(ratios):.2f}x (target >= 0.92x)")
    print(f"decision log lines written: {lines:,}")


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
