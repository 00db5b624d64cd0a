"""Kill -9 trials: a process saving images into a catalog is killed at random moments.

    .venv/bin/python benchmarks/kill9_catalog.py              # 50 trials
    .venv/bin/python benchmarks/kill9_catalog.py --trials 200

After each kill the catalog is reopened (recovery finishes or undoes interrupted saves) and
checked: every row has its PNG and thumbnail, no file without a row, the count never
shrinks below the previous trial's or below the saves the killed process saw committed.
Prints the trials with problems (the figure to keep at 0) and how often recovery acted.
"""

from __future__ import annotations

import sys
from pathlib import Path

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import argparse
import tempfile
import time

from invoke_nb.testing.kill9 import kill9_trials


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-delay", type=float, default=0.6)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="kill9-") as tmp:
        t0 = time.perf_counter()
        trials = kill9_trials(
            Path(tmp) / "studio", args.trials, seed=args.seed, max_delay=args.max_delay
        )
        took = time.perf_counter() - t0
    bad = [(i, t.problems) for i, t in enumerate(trials) if t.problems]
    print(f"trials: {len(trials)} in {took:.1f} s")
    print(f"trials with problems: {len(bad)}")
    for i, problems in bad:
        print(f"  trial {i}: {'; '.join(problems)}")
    print(f"images at the end: {trials[-1].rows}")
    print(
        "recovery finished an interrupted save in "
        f"{sum(t.completed > 0 for t in trials)} trials, undid one in "
        f"{sum(t.discarded > 0 for t in trials)}"
    )
    print(
        f"saves lost after the process had seen them committed: {sum(t.rows < t.acked for t in trials)}"
    )


if __name__ == "__main__":
    main()
