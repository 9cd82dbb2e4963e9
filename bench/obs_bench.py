"""Observability overhead (issue #6). Prints a table; not a test.

    python bench/obs_bench.py [--seconds 3] [--rounds 3]

`policyd serve` on the orders example with the decision log to a file and
metrics on, against the same server with both off; both started together and
driven in alternating rounds by the grpc_bench load generator (32 in flight).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import grpc_bench as gb  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
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
        for _ in range(args.rounds):
            for name, port in ports.items():
                runs[name].append(gb.drive(f"127.0.0.1:{port}", "check", args.seconds, 32))
    finally:
        for proc in procs.values():
            gb.stop(proc)
    lines = len((tmp / "d.jsonl").read_text().splitlines())
    base = statistics.median(r["per_s"] for r in runs["both off"])
    print(f"gRPC Check, orders example, 32 in flight; medians of {args.rounds} alternating "
          f"rounds of {args.seconds:.0f} s")
    print()
    print("| server | calls/s | p50 ms | p99 ms | x both off |")
    print("|---|---|---|---|---|")
    for name, rs in runs.items():
        med = gb.median_run(rs)
        print(f"| {name} | {med['per_s']:.0f} | {med['p50_ms']:.2f} | {med['p99_ms']:.2f} | "
              f"{med['per_s'] / base:.2f}x |")
    print()
    print(f"decision log lines written: {lines:,} (target ratio >= 0.9x)")


if __name__ == "__main__":
    main()
