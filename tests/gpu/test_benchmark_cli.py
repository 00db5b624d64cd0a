"""The GPU benchmark's plumbing, in its CI form on the CPU (tiny model, one pair)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "txt2img_vs_diffusers.py"


def _main():
    spec = importlib.util.spec_from_file_location("bench_txt2img", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_benchmark_prints_both_sides_in_the_chosen_dtype(capsys) -> None:
    argv = ["--device", "cpu", "--dtype", "bf16", "--repeats", "1", "--steps", "2", "--size", "64"]
    assert _main()(argv) == 0
    out = capsys.readouterr().out
    assert "device=cpu  dtype=bfloat16" in out
    figures = {
        m[1]: (float(m[2]), float(m[3]))
        for m in re.finditer(
            r"^(diffusers pipeline|our graph[^\d]*?)\s+([\d.]+)\s+([\d.]+)", out, re.M
        )
    }
    assert len(figures) == 3
    for seconds, its in figures.values():  # it/s is steps per second of a whole image
        assert seconds > 0 and its == pytest.approx(2 / seconds, rel=0.05)
    assert "paired ratio ours/diffusers" in out and "prompts/loaders cached: yes" in out


def test_benchmark_names_a_family_it_does_not_know(capsys) -> None:
    with pytest.raises(SystemExit):
        _main()(["--family", "sdxl-refiner"])
    assert "--family 'sdxl-refiner' is not benchmarked yet" in capsys.readouterr().err
