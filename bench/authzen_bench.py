"""The AuthZEN benchmark (issue #14). Prints a table; not a test.

    python bench/authzen_bench.py [--seconds 5] [--clients 32]

One `policyd serve --http-port` on the certification fixture (tests/authzen) answers
both front doors. In the same run and in interleaved rounds:

1. `POST /access/v1/evaluation` over HTTP/1.1 keep-alive from N client threads (each
   with its own connection), against `Check` over gRPC from N threads, on the same
   server. Target: HTTP at least 0.7x of gRPC.
2. `POST /access/v1/evaluations` with 100 items, in decisions per second. Target: at
   least 30,000.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.loadgen import load  # noqa: E402
from policyd.client import DecisionClient  # noqa: E402
from tests.servers import ServeProcess, free_port  # noqa: E402

CERT = ROOT / "tests" / "authzen"
CONFIG = """
[server]
path = "{path}"
http_port = {http_port}
reload = false
threads = 4

[authzen]
types = {{ user = "User", record = "Record" }}
"""
ONE = json.dumps({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
                  "resource": {"type": "record", "id": "record-1"}}).encode()
HUNDRED = json.dumps({"subject": {"type": "user", "id": "alice"}, "action": {"name": "write"},
                      "evaluations": [{"resource": {"type": "record",
                                                    "id": f"record-{1 + i % 2}"}}
                                      for i in range(100)]}).encode()
CHECK = {"principal": {"type": "User", "id": "alice"}, "action": "read",
         "resource": {"type": "Record", "id": "record-1"}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--smoke", action="store_true",
                    help="a quick run that checks the bench still works; its numbers mean nothing")
    args = ap.parse_args()
    if args.smoke:
        args.seconds, args.clients = 0.3, 2
    tmp = Path(tempfile.mkdtemp(prefix="policyd-authzen-bench-"))
    http_port = free_port()
    (tmp / "policyd.toml").write_text(CONFIG.format(path=CERT, http_port=http_port))
    server = ServeProcess(CERT, "--config", str(tmp / "policyd.toml"), tmp=tmp).wait_serving()
    time.sleep(0.5)

    def post(body: bytes, expect: bytes):
        def call(state):
            conn = state.get("c") or http.client.HTTPConnection("127.0.0.1", http_port,
                                                                timeout=30)
            state["c"] = conn
            conn.request("POST", "/access/v1/evaluation" if body is ONE else
                         "/access/v1/evaluations", body=body,
                         headers={"content-type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200 or expect not in data:
                raise SystemExit(f"unexpected answer {resp.status}: {data[:200]!r}")
        return call

    def check(state):
        client = state.get("c") or DecisionClient(server.target, timeout=30)
        state["c"] = client
        if not client.check(CHECK).allowed:
            raise SystemExit("unexpected deny")

    try:
        rounds = []
        for _ in range(2):
            rounds.append(("AuthZEN evaluation over HTTP", load(post(ONE, b"true"),
                                                                args.clients, args.seconds)[0]))
            rounds.append(("policyd Check over gRPC", load(check, args.clients,
                                                            args.seconds)[0]))
            batch = load(post(HUNDRED, b"evaluations"), 4, args.seconds)[0]
            rounds.append(("evaluations x100 (decisions)", batch * 100))
    finally:
        server.terminate()
    print(f"AuthZEN over HTTP vs gRPC Check: {args.clients} client threads (4 for the "
          f"batches), {args.seconds:g} s per round, 2 rounds")
    print(f"{'path':<32}{'per second':>12}")
    best: dict[str, float] = {}
    for name, rate in rounds:
        best[name] = max(best.get(name, 0), rate)
        print(f"{name:<32}{rate:>12,.0f}")
    ratio = best["AuthZEN evaluation over HTTP"] / best["policyd Check over gRPC"]
    print(f"HTTP / gRPC (best round each): {ratio:.2f}x (target 0.7x)")
    print(f"evaluations x100: {best['evaluations x100 (decisions)']:,.0f} decisions/s "
          "(target 30,000)")


if __name__ == "__main__":
    main()
