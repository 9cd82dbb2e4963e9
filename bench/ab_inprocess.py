"""A/B of the in-process hot path against another checkout of policyd, in one process.
Prints a few lines; not a test.

    python bench/ab_inprocess.py OLD_CHECKOUT [--rounds 40]

Separate runs of bench/inprocess.py on this noisy 2-core machine move by 2x from run to
run; here the old engine (copied in as `policyd_before`, with its own grammar) and this
one decide the same orders requests in interleaved blocks, with the hand-written if
chain as a third column, so the ratio compares like with like.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", type=Path, nargs="?", help="a checkout of an older policyd")
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--smoke", action="store_true",
                    help="this checkout against itself, briefly: checks the bench works")
    args = ap.parse_args()
    if args.smoke:
        args.old, args.rounds = args.old or ROOT, 2
    if args.old is None:
        ap.error("give the older checkout (OLD_CHECKOUT)")
    tmp = Path(tempfile.mkdtemp())
    shutil.copytree(args.old / "policyd", tmp / "policyd_before")
    shutil.copytree(args.old / "grammar", tmp / "grammar")
    sys.path.insert(0, str(tmp))
    import inprocess as ip  # noqa: PLC0415
    import policyd_before as old  # noqa: PLC0415

    import policyd as new  # noqa: PLC0415

    requests = ip.scenario(500 if args.smoke else 5000)
    engines = {"before": old.Engine(old.compile_text(ip.POLICY)),
               "now": new.Engine(new.compile_text(ip.POLICY))}
    for r in requests:
        a, b = engines["before"].check(r), engines["now"].check(r)
        assert (a.allowed, list(a.reasons)) == (b.allowed, list(b.reasons)), r
    cases = {"before": engines["before"].check, "now": engines["now"].check,
             "hand-written": ip.handwritten}
    samples: dict[str, list[float]] = {name: [] for name in cases}
    gc.disable()
    for _ in range(args.rounds):
        for name, fn in cases.items():
            t0 = time.perf_counter()
            for r in requests:
                fn(r)
            samples[name].append((time.perf_counter() - t0) / len(requests) * 1e6)
    gc.enable()
    m = {name: statistics.median(v) for name, v in samples.items()}
    print(f"median µs per decision, {args.rounds} interleaved rounds of {len(requests)} requests")
    print("| before | now | hand-written | now / before | before x hand | now x hand |")
    print("|---|---|---|---|---|---|")
    print(f"| {m['before']:.2f} | {m['now']:.2f} | {m['hand-written']:.2f} | "
          f"{m['now'] / m['before']:.3f}x | {m['before'] / m['hand-written']:.2f}x | "
          f"{m['now'] / m['hand-written']:.2f}x |")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
