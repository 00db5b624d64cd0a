"""``python -m benchmarks`` (``make bench``): every benchmark once, briefly.

Each benchmark is its own command (``python -m benchmarks.<name> --help``) whose defaults
measure the README's figures and take minutes; this runs each with small sizes, one after the
other, to check that they all still work and to show their figures at a glance. A benchmark
that needs something this machine lacks (the InvokeAI reference venv, Chromium, Ray) is
skipped with the reason.

    python -m benchmarks                 # all, quick sizes
    python -m benchmarks catalog widgets # some of them
    python -m benchmarks --full          # the defaults (long)
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
INVOKEAI_PY = "/work/ext/invokeai-6.11.1/bin/python"

# name -> (quick arguments, what it needs: a path or a module, or None)
QUICK: dict[str, tuple[list[str], str | None]] = {
    "graph_overhead": (["--nodes", "200", "--repeat", "2"], None),
    "catalog": (["--rows", "20000", "--repeat", "2"], None),
    "import_invokeai": (["--images", "2000"], None),
    "kill9_catalog": (["--trials", "5"], None),
    "queue_throughput": (["--items", "8"], None),
    "model_cache": (["--channels", "32", "--rounds", "2"], None),
    "txt2img_vs_diffusers": (["--size", "64", "--steps", "2", "--repeats", "1"], None),
    "exactness": ([], None),
    "preprocessor_exactness": ([], "onnxruntime"),
    "scale_out": (["--jobs", "4", "--steps", "2", "--rounds", "1"], "ray"),
    "widgets": (["--images", "500", "--repeat", "2", "--nodes", "50"], "/usr/bin/chromium"),
    "invokeai_node_parity": ([], INVOKEAI_PY),
    "invokeai_workflow_roundtrip": ([], INVOKEAI_PY),
    "controlnet_vs_diffusers": (["--size", "64", "--steps", "2", "--repeats", "1"], None),
    "tiled_upscale": (["--steps", "1", "--tile", "256"], None),
    "sd3_vs_invokeai": (["--steps", "2"], INVOKEAI_PY),
    "face_parity": ([], INVOKEAI_PY),
}


def missing(need: str | None) -> str | None:
    """Why a benchmark cannot run here, or None."""
    if need is None:
        return None
    if need.startswith("/"):
        return None if Path(need).exists() else f"needs {need}"
    return None if importlib.util.find_spec(need) else f"needs the {need!r} package"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help=f"benchmarks to run (default all: {', '.join(QUICK)})")
    ap.add_argument("--full", action="store_true", help="run with each benchmark's defaults")
    args = ap.parse_args(argv)
    unknown = [n for n in args.names if n not in QUICK]
    if unknown:
        ap.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from: {', '.join(QUICK)}")
    summary = []
    for name in args.names or list(QUICK):
        quick, need = QUICK[name]
        why = missing(need)
        if why:
            summary.append((name, "skipped", why))
            continue
        cmd = [sys.executable, "-m", f"benchmarks.{name}", *([] if args.full else quick)]
        print(f"\n=== {' '.join(cmd[2:])}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call(cmd, cwd=HERE.parent)
        summary.append(
            (name, "ok" if rc == 0 else f"FAILED (exit {rc})", f"{time.perf_counter() - t0:.0f} s")
        )
    print("\n=== summary")
    for name, status, note in summary:
        print(f"{name:<30}{status:<20}{note}")
    return 0 if all(s in ("ok", "skipped") for _, s, _ in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
