"""Entity data and language 1.1 benchmark (issue #11). Prints a table; not a test.

    python bench/data_bench.py [--entities 1000000] [--requests 20000]

1. Loading: a set whose users (stored roles and workspace roles) come from one
   .data.jsonl file of N entities, compiled in a fresh process: seconds and peak RSS.
2. Lookup: the same decisions over a set with 10 entities and with N, each case in its
   own timed loop (medians): the lookup is one dict get per entity.
3. Structure: a decision that reads a record path and a workspace-scoped role against
   the same rules over flat attributes, both sent in the request.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from policyd import Engine, compile_text  # noqa: E402

SCHEMA = """
record Project { workspace: string  private: bool  members: set<string> }
principal User {
  roles: set<string> stored
  workspace_roles: map<string, set<string>> stored
}
role guest
role member extends guest
role admin extends member
resource Issue { reporter: string  project: Project  actions read, update }
policy issues for Issue {
  deny * when resource.project.private and not (resource.project.members contains principal.id)
              and not principal.workspace_roles[resource.project.workspace] is admin
  allow read when principal.workspace_roles[resource.project.workspace] is guest
  allow update when principal.workspace_roles[resource.project.workspace] is member
  show *
}
"""
SCOPED = SCHEMA.replace(" stored", "")
FLAT = """
principal User { roles: set<string> }
role guest
role member extends guest
role admin extends member
resource Issue { reporter: string  workspace: string  private: bool  members: set<string>
                 actions read, update }
policy issues for Issue {
  deny * when resource.private and not (resource.members contains principal.id)
              and not principal is admin
  allow read when principal is guest
  allow update when principal is member
  show *
}
"""
ROLES = ["guest", "member", "admin"]


def write_set(directory: Path, n: int) -> None:
    (directory / "set.policy").write_text(SCHEMA)
    rnd = random.Random(1)
    with open(directory / "users.data.jsonl", "w") as f:
        for i in range(n):
            ws = {f"w{rnd.randrange(50)}": [rnd.choice(ROLES)] for _ in range(rnd.randint(1, 3))}
            f.write(json.dumps({"type": "User", "id": f"u{i}",
                                "attrs": {"roles": [], "workspace_roles": ws}}) + "\n")


LOAD = """
import resource, sys, time
sys.path.insert(0, {root!r})
t0 = time.perf_counter()
from policyd import compile_path
ps = compile_path({path!r})
print(time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
      ps.entities.count())
"""


def load(path: Path) -> tuple[float, float, int]:
    out = subprocess.run([sys.executable, "-c", LOAD.format(root=str(ROOT), path=str(path))],
                         capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1]), int(out[2])


def issue(rnd: random.Random, flat: bool) -> dict:
    project = {"workspace": f"w{rnd.randrange(50)}", "private": rnd.random() < 0.3,
               "members": [f"u{rnd.randrange(10)}"]}
    attrs = {"reporter": "u1", **project} if flat else {"reporter": "u1", "project": project}
    return {"type": "Issue", "id": f"i{rnd.randrange(1000)}", "attrs": attrs}


def stored_requests(n: int) -> list[dict]:
    rnd = random.Random(7)
    return [{"principal": {"type": "User", "id": f"u{rnd.randrange(10)}"},
             "action": rnd.choice(["read", "update"]), "resource": issue(rnd, False)}
            for _ in range(n)]


def sent_requests(n: int, flat: bool) -> list[dict]:
    rnd = random.Random(9)
    out = []
    for _ in range(n):
        ws, role = f"w{rnd.randrange(50)}", rnd.choice(ROLES)
        attrs = {"roles": [role]} if flat else {"roles": [], "workspace_roles": {ws: [role]}}
        r = issue(rnd, flat)
        out.append({"principal": {"type": "User", "id": f"u{rnd.randrange(10)}", "attrs": attrs},
                    "action": rnd.choice(["read", "update"]), "resource": r})
    return out


def interleaved(cases: list[tuple[Engine, list[dict]]], rounds: int = 15) -> list[float]:
    """Median µs per decision of each case, measured in alternating rounds with the
    collector off, so both see the same machine."""
    samples: list[list[float]] = [[] for _ in cases]
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            for (engine, requests), out in zip(cases, samples, strict=True):
                check = engine.check
                t0 = time.perf_counter()
                for r in requests:
                    check(r)
                out.append((time.perf_counter() - t0) / len(requests) * 1e6)
    finally:
        gc.enable()
    return [statistics.median(s) for s in samples]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entities", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--smoke", action="store_true",
                    help="a quick run that checks the bench still works; its numbers mean nothing")
    args = ap.parse_args()
    if args.smoke:
        args.entities, args.requests = 2000, 200
    with tempfile.TemporaryDirectory() as tmp:
        small, big = Path(tmp) / "small", Path(tmp) / "big"
        small.mkdir()
        big.mkdir()
        write_set(small, 10)
        write_set(big, args.entities)
        size = os.path.getsize(big / "users.data.jsonl") / 1e6
        seconds, rss, count = load(big)
        small_engine, big_engine = Engine.from_path(small), Engine.from_path(big)
        requests = stored_requests(args.requests)
        same = [(d.allowed, d.reasons) for d in map(big_engine.check, requests[:500])]
        assert same == [(d.allowed, d.reasons) for d in map(small_engine.check, requests[:500])]
        t_small, t_big = interleaved([(small_engine, requests), (big_engine, requests)])
        del big_engine
    flat, scoped = Engine(compile_text(FLAT)), Engine(compile_text(SCOPED))
    t_flat, t_scoped = interleaved([(flat, sent_requests(args.requests, True)),
                                    (scoped, sent_requests(args.requests, False))])
    print(f"entity data: {count:,} entities in one .data.jsonl ({size:.0f} MB)\n")
    print("| case | value | target |")
    print("|---|---|---|")
    print(f"| load and check {count:,} entities (fresh process) | {seconds:.2f} s | < 10 s |")
    print(f"| peak RSS after loading | {rss:.0f} MiB | < 1024 MiB |")
    print(f"| decision, 10 entities (median) | {t_small:.2f} µs | |")
    print(f"| decision, {count:,} entities (median) | {t_big:.2f} µs | "
          f"{t_big / t_small:.2f}x (<= 1.2x) |")
    print(f"| decision over flat attributes (median) | {t_flat:.2f} µs | |")
    print(f"| record path + scoped role (median) | {t_scoped:.2f} µs | "
          f"{t_scoped / t_flat:.2f}x (<= 1.5x) |")


if __name__ == "__main__":
    main()
