"""Kill -9 trials on a catalog: a process saving images is killed at a random moment, the
catalog is reopened (which finishes or undoes interrupted saves) and checked.

Used by ``tests/catalog/test_kill9.py`` (20 trials) and ``benchmarks/kill9_catalog.py``
(any number). Each trial checks that every row has its PNG and thumbnail, that no file is
left without a row (PNGs, thumbnails, pending files), and that the image count never
shrinks, neither below the previous trial's nor below the saves the killed process had
seen committed."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Trial", "kill9_trials"]

SAVER = Path(__file__).with_name("kill9_saver.py")


@dataclass
class Trial:
    """One kill and what the reopened catalog showed."""

    delay: float
    acked: int  # saves the killed process printed as committed
    rows: int  # images in the catalog after reopening
    completed: int  # interrupted saves recovery finished
    discarded: int  # interrupted saves recovery undid
    problems: list[str] = field(default_factory=list)


def _check(root: Path, previous: int, acked: int) -> tuple[int, int, int, list[str]]:
    from invoke_nb.catalog.catalog import Catalog

    problems: list[str] = []
    cat = Catalog(root, busy_timeout=60)
    try:
        rec = cat.recovery
        names = {r[0] for r in cat.sql("SELECT image_name FROM images").fetchall()}
        report = cat.check()
        if report.missing_files:
            problems.append(f"rows without PNG: {report.missing_files[:3]}")
        if report.untracked_files:
            problems.append(f"PNGs without row: {report.untracked_files[:3]}")
        thumbs = {p.stem for p in cat.files.thumbnails_dir.glob("*.webp")}
        stems = {Path(n).stem for n in names}
        if stems - thumbs:
            problems.append(f"rows without thumbnail: {sorted(stems - thumbs)[:3]}")
        if thumbs - stems:
            problems.append(f"thumbnails without row: {sorted(thumbs - stems)[:3]}")
        for d in (cat.files.pending_dir, cat.files.thumbnail_pending_dir):
            if d.is_dir() and any(d.iterdir()):
                problems.append(f"files left in {d.name}: {[p.name for p in d.iterdir()][:3]}")
        if len(names) < previous:
            problems.append(f"count shrank from {previous} to {len(names)}")
        if len(names) < acked:
            problems.append(f"{acked} saves were committed but only {len(names)} rows exist")
        return len(names), len(rec.completed), len(rec.discarded), problems
    finally:
        cat.close()


def kill9_trials(root: Path, trials: int, *, seed: int = 0, max_delay: float = 0.6) -> list[Trial]:
    """Run ``trials`` kill -9 trials on the catalog at ``root`` (created if needed)."""
    rng = random.Random(seed)
    root = Path(root)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    previous = 0
    out: list[Trial] = []
    for _ in range(trials):
        proc = subprocess.Popen(
            [sys.executable, str(SAVER), str(root)], stdout=subprocess.PIPE, text=True, env=env
        )
        assert proc.stdout is not None
        first = proc.stdout.readline()
        if first.strip() != "ready":
            proc.kill()
            proc.wait()
            raise RuntimeError(f"the saver did not start (said {first!r})")
        delay = rng.uniform(0.02, max_delay)
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        rest = proc.stdout.read()
        proc.wait()
        # only whole lines count: the kill may land in the middle of one
        whole = rest.split("\n")[:-1]
        acked = max(
            [int(m[1]) for line in whole if (m := re.fullmatch(r"saved (\d+)", line))] or [previous]
        )
        rows, completed, discarded, problems = _check(root, previous, acked)
        out.append(Trial(delay, acked, rows, completed, discarded, problems))
        previous = rows
    return out
