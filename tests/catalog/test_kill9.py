"""20 kill -9 trials of a process saving images: after each reopen every row has its PNG and
thumbnail, no file lacks a row and the count never shrinks (more: benchmarks/kill9_catalog.py)."""

from __future__ import annotations

from pathlib import Path

from invoke_nb.testing.kill9 import kill9_trials


def test_kill9_20_trials(tmp_path: Path) -> None:
    trials = kill9_trials(tmp_path / "studio", 20, seed=16)
    problems = [(i, t.problems) for i, t in enumerate(trials) if t.problems]
    assert problems == []
    assert trials[-1].rows > 0
    rows = [t.rows for t in trials]
    assert rows == sorted(rows)
