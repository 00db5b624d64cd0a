"""Queue throughput: N queued tiny txt2img items vs calling the graph runner directly.

Both paths use the same studio (catalog sink, model manager, caches warm) and the same
graphs (seeds 1..N); the direct path calls ``Runner.run`` in a loop on this thread, the
queue path enqueues all N as one batch and waits for the last. Prints items/s for both,
their ratio (target >= 0.95) and the enqueue latency.

    .venv/bin/python -m benchmarks.queue_throughput [--items 100] [--size 64] [--steps 4]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from invoke_nb.graph import Runner, standard
from invoke_nb.nodes.context import Services
from invoke_nb.studio import Studio
from invoke_nb.testing.tiny_models import make_sd1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=100)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    tmp = Path(tempfile.mkdtemp(prefix="inb-bench-queue-"))
    studio = Studio(tmp / "studio")
    rec = studio.models.install(str(make_sd1(tmp / "tiny-sd1")), name="tiny", in_place=True)
    ident = studio._model(rec.name)

    def graph(seed: int):
        return standard.txt2img(
            ident, "a lighthouse", width=args.size, height=args.size, steps=args.steps, seed=seed
        )

    # warm models and prompt encoding once for both paths
    studio.run(graph(0), progress=False)

    runner = Runner()
    services = Services(image_sink=studio.sink, models=studio.models)
    runner.run(graph(0), services=services)
    t0 = time.perf_counter()
    for seed in range(1, args.items + 1):
        runner.run(graph(seed), services=services)
    direct = time.perf_counter() - t0

    g = graph(1)
    t0 = time.perf_counter()
    ids = studio.enqueue(g, batch={"seed.value": list(range(1, args.items + 1))})
    enqueue_s = time.perf_counter() - t0
    studio.wait(ids[-1], timeout=3600)
    queued = time.perf_counter() - t0
    failed = [i.item_id for i in studio.queue_items() if i.status != "completed"]
    studio.close()

    print(
        f"{args.items} tiny txt2img items ({args.size}x{args.size}, {args.steps} steps, {args.threads} torch thread)"
    )
    print(f"  direct runner loop   {direct:8.2f} s   {args.items / direct:7.2f} items/s")
    print(f"  queue (one batch)    {queued:8.2f} s   {args.items / queued:7.2f} items/s")
    print(f"  ratio queue/direct   {direct / queued:8.3f}   (target >= 0.95)")
    print(f"  enqueue latency      {enqueue_s * 1e3:8.1f} ms for {args.items} items")
    print(f"  per-item queue cost  {(queued - direct) / args.items * 1e3:8.1f} ms")
    print(
        "  anchor: InvokeAI 6.14.2 here needs ~1.0 s per tiny image (0.55 s of it a gc.collect())"
    )
    if failed:
        print(f"  FAILED items: {failed}")


if __name__ == "__main__":
    main()
