"""Scale-out benchmark: throughput of N tiny txt2img jobs on the local executor, on 1 Ray
worker and on 2 Ray workers, in one run, through the real Studio queue (catalog writes
included).

Every mode runs with one torch thread per process doing the work (the kernel for ``local``,
each worker for ``ray``), after a warm-up job per worker so that model loads are not
counted. Reported: jobs/s per mode, the 2-worker / local ratio (target >= 1.6x on 2 cores),
and the Ray path's per-job overhead, two ways: wall time per job on 1 worker minus the local
wall time per job (messages, PNG transfer, routing; inflated by CPU contention), and the
round trip of an empty graph run directly on each executor.

    .venv/bin/python benchmarks/scale_out.py [--jobs 24] [--steps 10] [--rounds 3] [--json out.json]

Modes are interleaved (local, 1 worker, 2 workers, then again) so that load from other
processes hits them alike; the best and the median round of each mode are reported.

The cluster is local (``ray.init(num_cpus=2)``, loopback, no dashboard) with HOME pointed at
a temporary folder. On a shared machine other processes compete for the same two cores;
the numbers are then lower bounds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def run_batch(studio: Any, graph: Any, seeds: list[int]) -> tuple[float, list[Any]]:
    """Queue one job per seed, wait for all; (wall seconds, results)."""
    t0 = time.perf_counter()
    ids = studio.enqueue(graph, batch={"seed.value": seeds})
    results = [studio.wait(i, timeout=600) for i in ids]
    return time.perf_counter() - t0, results


def measure(studio: Any, graph: Any, jobs: int, label: str, rnd: int) -> dict[str, Any]:
    wall, results = run_batch(studio, graph, list(range(rnd * jobs, (rnd + 1) * jobs)))
    compute = statistics.fmean(r.seconds for r in results)
    row = {
        "mode": label,
        "round": rnd,
        "jobs": jobs,
        "wall_s": round(wall, 3),
        "jobs_per_s": round(jobs / wall, 3),
        "wall_per_job_ms": round(1000 * wall / jobs, 1),
        "graph_compute_ms": round(1000 * compute, 1),
    }
    print(
        f"round {rnd} {label:8} {jobs} jobs in {wall:6.2f} s  {jobs / wall:6.2f} jobs/s  "
        f"{1000 * wall / jobs:7.1f} ms/job  (graph compute {1000 * compute:6.1f} ms)",
        flush=True,
    )
    return row


def round_trip_ms(executor: Any, n: int = 50) -> float:
    """Median ms of running a two-node arithmetic graph directly on ``executor`` (no queue,
    no catalog): the fixed cost of a job on that path."""
    import invoke_nb as inb

    g = inb.Graph()
    a = g.add("integer", value=2)
    b = g.add("add", b=3)
    g.connect(a, "value", b, "a")
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        executor.run(g, session_id=f"rt-{i}", services=inb.Services())
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def switch(studio: Any, executor: Any) -> None:
    """Point the queue at ``executor`` without closing the others (they are measured again)."""
    studio.executor = executor
    studio.queue.executor = executor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=24)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3, help="modes are interleaved per round")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    args = ap.parse_args()
    # benchmarks/ holds a queue.py: run as a script, this folder would shadow the stdlib's queue
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]

    tmp = Path(tempfile.mkdtemp(prefix="invoke-nb-scale-out-"))
    os.environ["HOME"] = str(tmp / "home")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    import ray

    torch.set_num_threads(1)

    from invoke_nb.executors.local import LocalExecutor
    from invoke_nb.executors.ray import RayExecutor, start_local_ray
    from invoke_nb.graph.standard import txt2img
    from invoke_nb.nodes.types import identifier
    from invoke_nb.studio import Studio
    from invoke_nb.testing.tiny_models import make_sd1

    executors: dict[str, Any] = {}
    try:
        model_dir = make_sd1(tmp / "tiny-sd1")
        studio = Studio(tmp / "studio")
        rec = studio.models.install(model_dir, name="tiny-sd1", in_place=True)
        graph = txt2img(
            identifier(rec),
            "a lighthouse at dusk",
            width=args.size,
            height=args.size,
            steps=args.steps,
        )
        t0 = time.perf_counter()
        # 3 logical CPUs: the idle 1-worker executor keeps its actor while 2 workers run
        # (Ray's CPU count is a scheduling label; the machine's cores are what they are).
        start_local_ray(num_cpus=3)
        print(f"ray.init: {time.perf_counter() - t0:.1f} s", flush=True)
        executors["local"] = LocalExecutor()
        for workers in (1, 2):
            ex = RayExecutor(workers=workers, torch_threads=1)
            t0 = time.perf_counter()
            ex.wait_ready()
            print(f"{workers} worker(s) ready in {time.perf_counter() - t0:.1f} s", flush=True)
            executors[f"ray-{workers}"] = ex
        for ex in executors.values():  # warm-up: model loads on every worker
            switch(studio, ex)
            run_batch(studio, graph, list(range(10_000, 10_000 + getattr(ex, "concurrency", 1))))
        rows = []
        for rnd in range(args.rounds):
            for label, ex in executors.items():
                switch(studio, ex)
                rows.append(measure(studio, graph, args.jobs, label, rnd))
        switch(studio, executors["local"])
        studio.close()
        round_trip = {m: round_trip_ms(executors[m]) for m in ("local", "ray-1")}
        print(
            f"empty-graph round trip: local {round_trip['local']:.2f} ms, "
            f"1 Ray worker {round_trip['ray-1']:.2f} ms (median of 50)",
            flush=True,
        )

        best = {m: max(r["jobs_per_s"] for r in rows if r["mode"] == m) for m in executors}
        med = {
            m: statistics.median(r["jobs_per_s"] for r in rows if r["mode"] == m) for m in executors
        }
        per_job = {
            m: statistics.median(r["wall_per_job_ms"] for r in rows if r["mode"] == m)
            for m in executors
        }
        summary = {
            "steps": args.steps,
            "size": args.size,
            "jobs": args.jobs,
            "rounds": args.rounds,
            "ray_version": ray.__version__,
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
            "best_jobs_per_s": best,
            "median_jobs_per_s": med,
            "ratio_ray2_vs_local_best": round(best["ray-2"] / best["local"], 2),
            "ratio_ray2_vs_local_median": round(med["ray-2"] / med["local"], 2),
            "ratio_ray2_vs_ray1_median": round(med["ray-2"] / med["ray-1"], 2),
            "ray_overhead_per_job_ms": round(per_job["ray-1"] - per_job["local"], 1),
            "empty_graph_round_trip_ms": round_trip,
            "rows": rows,
        }
        print(
            f"2 workers vs local: best-of-rounds {summary['ratio_ray2_vs_local_best']}x, "
            f"median {summary['ratio_ray2_vs_local_median']}x (target >= 1.6x); "
            f"2 vs 1 worker (median): {summary['ratio_ray2_vs_ray1_median']}x; "
            f"Ray path overhead: {summary['ray_overhead_per_job_ms']} ms/job through the queue, "
            f"{round_trip['ray-1'] - round_trip['local']:.1f} ms/job for an empty graph; "
            f"load average {summary['load_average'][0]:.1f} on {os.cpu_count()} CPUs",
            flush=True,
        )
        if args.json:
            args.json.write_text(json.dumps(summary, indent=2))
    finally:
        for ex in executors.values():
            ex.close()
        if ray.is_initialized():
            ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
