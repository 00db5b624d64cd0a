"""``make bench`` (``python -m benchmarks``) knows every benchmark in benchmarks/."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.__main__ import QUICK, main  # noqa: E402


def test_every_benchmark_is_in_the_quick_plan() -> None:
    modules = {p.stem for p in (ROOT / "benchmarks").glob("*.py") if not p.stem.startswith("_")}
    assert modules == set(QUICK), (
        f"not in QUICK: {modules - set(QUICK)}; gone: {set(QUICK) - modules}"
    )


def test_unknown_names_are_refused_naming_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["katalog"])
    assert "unknown benchmark(s) katalog; choose from: graph_overhead" in capsys.readouterr().err
