"""AuthZEN searches over a large entity data set (issue #28, item 7). Prints a table; not
a test.

    python bench/search_bench.py [--users 200002] [--docs 100000] [--rounds 3]

One `policyd serve --http-port` holds --users principals and --docs resources in its
entity data. Measured over HTTP, medians of --rounds:

- a subject search with `page.limit: 1`: the first page (which counts the total) and a
  later page (which decides only as far as the page needs);
- a resource search (a plan over the data, narrowed by its index) on the first and a
  later page, and the walk over every page;
- `/healthz` while a subject search runs (it must not wait for the search);
- decision log records per search.

Beside it, in process, the cost of what searches did before: every entity decided (and
logged) as an evaluation.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from policyd import Engine  # noqa: E402
from tests.servers import ServeProcess, free_port  # noqa: E402

POLICY = """
principal User { roles: set<string> stored  team: string stored }
role viewer
resource Doc { owner: string stored  team: string stored  actions read }
policy docs for Doc {
  allow read when principal is viewer and principal.team == resource.team
  allow read when resource.owner == principal.id
  show *
}
"""
CONFIG = """
[server]
path = "{path}"
http_port = {http_port}
decision_log = "{log}"
reload = false
"""


def write_set(root: Path, users: int, docs: int) -> None:
    root.mkdir()
    (root / "docs.policy").write_text(POLICY)
    with open(root / "users.data.jsonl", "w") as f:
        for i in range(users):
            f.write(json.dumps({"type": "User", "id": f"u{i:07d}", "attrs": {
                "roles": ["viewer"] if i % 3 == 0 else [], "team": f"t{i % 50}"}}) + "\n")
    with open(root / "docs.data.jsonl", "w") as f:
        for i in range(docs):
            f.write(json.dumps({"type": "Doc", "id": f"d{i:07d}", "attrs": {
                "owner": f"u{i % 1000:07d}", "team": f"t{i % 50}"}}) + "\n")


def timed(client, path: str, body: dict) -> tuple[float, dict]:
    t0 = time.perf_counter()
    r = client.post(path, content=json.dumps(body), headers={"content-type": "application/json"})
    elapsed = time.perf_counter() - t0
    if r.status_code != 200:
        raise SystemExit(f"{path}: {r.status_code} {r.text[:200]}")
    return elapsed, r.json()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=200_002)
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--smoke", action="store_true",
                    help="a quick run that checks the bench still works; its numbers mean nothing")
    args = ap.parse_args()
    if args.smoke:
        args.users, args.docs, args.rounds = 3000, 2000, 1
    tmp = Path(tempfile.mkdtemp(prefix="policyd-search-bench-"))
    root, log = tmp / "set", tmp / "decisions.jsonl"
    write_set(root, args.users, args.docs)
    port = free_port()
    (tmp / "policyd.toml").write_text(CONFIG.format(path=root, http_port=port, log=log))
    server = ServeProcess(root, "--config", str(tmp / "policyd.toml"), tmp=tmp).wait_serving()
    url = f"http://127.0.0.1:{port}"
    end = time.monotonic() + 120
    while True:
        try:
            httpx.get(url + "/healthz", timeout=1)
            break
        except httpx.TransportError:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)
    subject = {"subject": {"type": "User"}, "action": {"name": "read"},
               "resource": {"type": "Doc", "id": "d0000007"}, "page": {"limit": 1}}
    resource = {"subject": {"type": "User", "id": "u0000003"}, "action": {"name": "read"},
                "resource": {"type": "Doc"}, "page": {"limit": 100}}
    rows: dict[str, list[float]] = {}
    health: list[float] = []
    try:
        with httpx.Client(base_url=url, timeout=300) as client:
            lines_before = len(log.read_text().splitlines()) if log.exists() else 0
            searches = 0
            for _ in range(args.rounds):
                t, first = timed(client, "/access/v1/search/subject", subject)
                rows.setdefault("subject search, first page (counts the total)", []).append(t)
                token = first["page"]["next_token"]
                t, _ = timed(client, "/access/v1/search/subject",
                             {**subject, "page": {"limit": 1, "token": token}})
                rows.setdefault("subject search, a later page", []).append(t)
                t, first = timed(client, "/access/v1/search/resource", resource)
                rows.setdefault("resource search, first page (limit 100)", []).append(t)
                walked, token, t0 = len(first["results"]), first["page"]["next_token"], \
                    time.perf_counter()
                while token:
                    t, page = timed(client, "/access/v1/search/resource",
                                    {**resource, "page": {"limit": 100, "token": token}})
                    rows.setdefault("resource search, a later page", []).append(t)
                    walked += len(page["results"])
                    token = page["page"]["next_token"]
                    searches += 1
                rows.setdefault(f"resource search, every page ({walked} results)",
                                []).append(time.perf_counter() - t0)
                searches += 3
                thread = threading.Thread(target=timed, args=(
                    httpx.Client(base_url=url, timeout=300), "/access/v1/search/subject",
                    subject))
                thread.start()
                time.sleep(0.02)
                t0 = time.perf_counter()
                httpx.get(url + "/healthz", timeout=60)
                health.append(time.perf_counter() - t0)
                thread.join()
                searches += 1
            time.sleep(0.5)
            records = len(log.read_text().splitlines()) - lines_before
    finally:
        server.terminate()
    engine = Engine.from_path(root)
    ids = sorted(engine.policy_set.entities.principals["User"].rows)
    t0 = time.perf_counter()
    for eid in ids:  # the old way: each principal decided as an evaluation
        engine.decide({"principal": {"type": "User", "id": eid}, "action": "read",
                       "resource": {"type": "Doc", "id": "d0000007"}})
    before = time.perf_counter() - t0
    print(f"AuthZEN searches: {args.users:,} principals, {args.docs:,} documents in entity "
          f"data; medians of {args.rounds} rounds over HTTP")
    print()
    print("| case | median ms |")
    print("|---|---|")
    for name, values in rows.items():
        print(f"| {name} | {statistics.median(values) * 1000:.1f} |")
    print(f"| /healthz during a subject search | {statistics.median(health) * 1000:.1f} |")
    print(f"| before: every principal decided as an evaluation, in process, no log | "
          f"{before * 1000:.0f} |")
    print()
    print(f"decision log records: {records} for {searches} searches")


if __name__ == "__main__":
    main()
