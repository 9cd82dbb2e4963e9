"""Policy test runner benchmark (issue #5). Prints a table; not a test.

    python bench/policy_tests_bench.py [--tests 1000] [--rounds 5]

Builds a copy of policies/examples whose sets hold about --tests policy tests (the
examples' own tests, repeated under new names), then times `policyd test DIR
--coverage` in process (median of --rounds) and once as a fresh process, and counts
how often each set is compiled. Target: 1,000 tests in under 2 s.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from policyd.cli import main  # noqa: E402
from policyd.testing import suite as suite_module  # noqa: E402

EXAMPLES = ROOT / "policies" / "examples"
_TEST_BLOCK = re.compile(r'^test "([^"]*)" \{\n.*?^\}\n', re.S | re.M)


def test_blocks(set_dir: Path) -> list[tuple[str, str]]:
    found = []
    for f in sorted(set_dir.glob("*.test.policy")):
        found += [(m.group(1), m.group(0)) for m in _TEST_BLOCK.finditer(f.read_text())]
    return found


def build(target: Path, wanted: int) -> int:
    """Copy the examples and add repeated tests until the sets hold about `wanted`."""
    shutil.copytree(EXAMPLES, target)
    sets = [d for d in sorted(target.iterdir()) if d.is_dir()]
    blocks = {d: test_blocks(d) for d in sets}
    total = sum(len(b) for b in blocks.values())
    copies = max(0, math.ceil(wanted / total) - 1)
    for d, found in blocks.items():
        text = "".join(block.replace(f'test "{name}"', f'test "{name} (copy {i})"', 1)
                       for i in range(copies) for name, block in found)
        (d / "bulk.test.policy").write_text(text)
    return total * (copies + 1)


def run_once(directory: Path) -> tuple[float, str, int]:
    out = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = main(["test", str(directory), "--coverage"])
    return time.perf_counter() - t0, out.getvalue().strip().splitlines()[-1], code


def main_bench() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--smoke", action="store_true",
                    help="a quick run that checks the bench still works; its numbers mean nothing")
    args = parser.parse_args()
    if args.smoke:
        args.tests, args.rounds = 20, 1
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "examples"
        count = build(directory, args.tests)
        sets = sum(1 for d in directory.iterdir() if d.is_dir())
        compiles = []
        original = suite_module.compile_checked  # what load() compiles each set with

        def counting(*a, **kw):
            compiles.append(a[1])
            return original(*a, **kw)

        suite_module.compile_checked = counting
        times, summary, code = [], "", 0
        for _ in range(args.rounds):
            elapsed, summary, code = run_once(directory)
            times.append(elapsed)
        suite_module.compile_checked = original
        per_round = len(compiles) // args.rounds
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "policyd", "test", str(directory),
                               "--coverage"], capture_output=True, text=True, cwd=ROOT)
        process = time.perf_counter() - t0
    med = statistics.median(times)
    rows = [
        ("tests", f"{count}"),
        ("result", f"{summary} (exit {code}; process exit {proc.returncode})"),
        ("sets compiled per run", f"{per_round} ({sets} sets: once each)"),
        ("in process, median of rounds", f"{med:.3f} s ({med / count * 1e6:.0f} us per test)"),
        ("in process, min / max", f"{min(times):.3f} / {max(times):.3f} s"),
        ("fresh process (imports included)", f"{process:.3f} s"),
        ("target", "< 2 s for 1,000 tests"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"policyd test --coverage on {count} tests over policies/examples")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


if __name__ == "__main__":
    main_bench()
