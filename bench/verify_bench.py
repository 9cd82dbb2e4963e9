"""`policyd verify` (issue 25): how long the proofs take. Prints tables; not a test.

    python bench/verify_bench.py [--smoke]

1. rules: `verify SET` (dead and shadowed rules) on every example set, seconds each.
   Target: the whole of it under 30 s.
2. equivalent: a generated 100-rule set over the random-policy schema of the tests
   (conditions the model covers) against itself with one allow rule's condition
   negated (the first such change that makes a difference), and against itself (a proof: every request shape explored). Target:
   10 s each.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from policyd import compile_text  # noqa: E402
from policyd.engine.compiler import compile_path  # noqa: E402
from policyd.verify.analysis import equivalent, rule_findings  # noqa: E402
from tests.strategies import ACTIONS, ATOMS, FIELDS, SCHEMA  # noqa: E402

MODELLED = [a for a in ATOMS if not any(word in a for word in (
    "hour(", "weekday(", "context.time", "lower(", "len("))]


def rules_section() -> None:
    print("`policyd verify SET`: dead and shadowed rules")
    print("| set | rules | seconds | dead | shadowed | not decided |")
    print("|---|---|---|---|---|---|")
    total = 0.0
    for root in sorted((ROOT / "policies" / "examples").iterdir()):
        if not root.is_dir():
            continue
        ps = compile_path(root)
        t = time.perf_counter()
        found = rule_findings(ps)
        seconds = time.perf_counter() - t
        total += seconds
        print(f"| {root.name} | {sum(len(r) for r in ps.rules.values())} | {seconds:.2f} | "
              f"{len(found.dead)} | {len(found.shadowed)} | {len(found.unknown)} |")
    print(f"| all | | {total:.2f} | | | |")
    print("target: all under 30 s\n")


def generated(rng: random.Random, n: int) -> str:
    def expr(depth: int) -> str:
        if depth == 0 or rng.random() < 0.4:
            return rng.choice(MODELLED)
        op = rng.choice(["and", "or", "not"])
        if op == "not":
            return f"not ({expr(depth - 1)})"
        return f"({expr(depth - 1)}) {op} ({expr(depth - 1)})"

    body = []
    for i in range(n):
        effect = rng.choice(["allow", "allow", "deny", "show", "write"])
        names = ACTIONS if effect in ("allow", "deny") else \
            (FIELDS if effect == "show" else FIELDS[1:])
        targets = ", ".join(rng.sample(names, rng.randint(1, 2)))
        cond = expr(2)
        if effect == "deny":  # each deny fences one tenant: allows still decide elsewhere
            cond = f'({cond}) and principal.tenant == "t{i}"'
        body.append(f"  r{i}: {effect} {targets} when {cond}")
    return SCHEMA + "policy p for Doc {\n" + "\n".join(body) + "\n}\n"


def equivalent_section(n: int) -> None:
    rng = random.Random(25)
    text = generated(rng, n)
    old = compile_text(text, "old.policy")
    print(f"`policyd verify --equivalent` of two {n}-rule sets")
    print("| pair | seconds | answer |")
    print("|---|---|---|")
    # one allow rule's condition negated: the first such mutation that changes a decision
    # (a rule a deny always overrides changes nothing, and is proved so)
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if ": allow " not in line:
            continue
        head, cond = line.split(" when ", 1)
        new = compile_text("\n".join(lines[:i] + [f"{head} when not ({cond})"] + lines[i + 1:]),
                           "new.policy")
        t = time.perf_counter()
        found = equivalent(old, new)
        seconds = time.perf_counter() - t
        answer = "equivalent" if found is None else \
            f"counterexample ({found['request']['action']})"
        print(f"| {head.strip().split(':')[0]}'s condition negated | {seconds:.2f} | {answer} |")
        if found is not None:
            break
    t = time.perf_counter()
    found = equivalent(old, old)
    print(f"| the set against itself | {time.perf_counter() - t:.2f} | "
          f"{'equivalent' if found is None else 'counterexample'} |")
    print("target: 10 s each\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="small sets: checks the bench runs")
    args = ap.parse_args()
    rules_section()
    equivalent_section(10 if args.smoke else 100)


if __name__ == "__main__":
    main()
