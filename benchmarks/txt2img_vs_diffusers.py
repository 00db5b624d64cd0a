"""Wall time of our txt2img graph vs diffusers' StableDiffusionPipeline on the same model.

Both run the same components (loaded once, outside the timing), prompt, seed, scheduler,
steps and size, with diffusers-compatible seeding so the images are the same (checked).
Each repetition runs our graph on a fresh output cache (every node executes, as a first
run does) and the pipeline once; the script prints the medians and their ratio (target
<= 1.05). It then re-runs our graph on a warm cache with only the seed changed: the
prompt and loader nodes must come from the cache.

    .venv/bin/python benchmarks/txt2img_vs_diffusers.py [--size 128] [--steps 10] [--repeats 7]
    .venv/bin/python benchmarks/txt2img_vs_diffusers.py --full-size --size 512 --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

# This folder holds other scripts (e.g. queue.py) that would shadow stdlib modules.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import numpy as np  # noqa: E402
import torch  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size", type=int, default=128, help="image width and height (px)")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--scheduler", default="euler")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument(
        "--full-size", action="store_true", help="SD1.5-size random-weight model (slow on CPU)"
    )
    ap.add_argument("--model", type=Path, help="an existing SD1 diffusers folder to use instead")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    import diffusers

    import invoke_nb as inb
    from invoke_nb.graph.standard import OUTPUT, txt2img
    from invoke_nb.models.local import LocalModels, identifier
    from invoke_nb.testing.tiny_models import make_sd1

    tmp = tempfile.TemporaryDirectory()
    folder = args.model or make_sd1(Path(tmp.name) / "sd1", full_size=args.full_size)
    models = LocalModels()
    model = identifier(models.register(folder, name="bench"))
    prompt, negative = "a cute tiger cub, photograph", "blurry"
    common = dict(
        width=args.size, height=args.size, steps=args.steps, cfg_scale=7.5, scheduler=args.scheduler
    )

    def graph(seed: int) -> inb.Graph:
        return txt2img(model, prompt, negative=negative, seed=seed, seeding="diffusers", **common)

    # Share the loaded parts with the pipeline so both time the same modules.
    with (
        models.load(model, "unet") as unet,
        models.load(model, "vae") as vae,
        models.load(model, "text_encoder") as te,
        models.load(model, "tokenizer") as tok,
    ):
        pass
    from invoke_nb.nodes.diffusion.schedulers import make_scheduler

    with models.load(model, "scheduler") as sched_cfg:
        scheduler = make_scheduler(args.scheduler, sched_cfg, seed=0)
    pipe = diffusers.StableDiffusionPipeline(
        vae=vae,
        text_encoder=te,
        tokenizer=tok,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)

    def run_pipe(seed: int) -> np.ndarray:
        with torch.inference_mode():
            img = pipe(
                prompt,
                negative_prompt=negative,
                num_inference_steps=args.steps,
                height=args.size,
                width=args.size,
                guidance_scale=7.5,
                generator=torch.Generator("cpu").manual_seed(seed),
            ).images[0]
        return np.asarray(img)

    def run_ours(seed: int, runner: inb.Runner | None = None) -> tuple[np.ndarray, inb.RunResult]:
        runner = runner or inb.Runner(services=inb.Services(models=models))
        r = runner.run(graph(seed))
        return np.asarray(r.image(OUTPUT)), r

    # warm-up (imports, first-call allocations) and a correctness check
    a, _ = run_ours(1)
    b = run_pipe(1)
    diff = int(np.abs(a.astype(int) - b.astype(int)).max())

    # Interleave the three measurements so that load from other processes hits them alike.
    warm = inb.Runner(services=inb.Services(models=models))
    run_ours(7, warm)
    wall: dict[str, list[float]] = {"ours": [], "pipe": [], "seed": []}
    cpu: dict[str, list[float]] = {"ours": [], "pipe": [], "seed": []}
    cached_ok = True

    def timed(kind: str, fn, *a) -> object:
        w, c = time.perf_counter(), time.process_time()
        out = fn(*a)
        wall[kind].append(time.perf_counter() - w)
        cpu[kind].append(time.process_time() - c)
        return out

    for i in range(args.repeats):
        timed("ours", run_ours, 100 + i)
        timed("pipe", run_pipe, 100 + i)
        _, r = timed("seed", run_ours, 200 + i, warm)
        cached_ok &= {"pos_cond", "neg_cond", "model_loader"} <= r.cached
    med = {k: statistics.median(v) for k, v in wall.items()}
    cmed = {k: statistics.median(v) for k, v in cpu.items()}
    pipe_med = med["pipe"]

    print(
        f"model: {'SD1.5-size' if args.full_size else 'tiny SD1'}  {args.size}x{args.size}  "
        f"{args.steps} steps  {args.scheduler}  threads={args.threads}  repeats={args.repeats}"
    )
    print(f"max pixel difference ours vs diffusers: {diff}/255")
    print("                          wall median          CPU-time median")
    rows = [
        ("diffusers pipeline", "pipe", ""),
        ("our graph (cold cache)", "ours", "(target <= 1.05)"),
        (
            "our graph, seed changed",
            "seed",
            f"prompts/loaders cached: {'yes' if cached_ok else 'NO'}",
        ),
    ]
    for label, k, note in rows:
        print(
            f"{label:<24} {med[k] * 1000:8.1f} ms x{med[k] / pipe_med:.3f}  "
            f"{cmed[k] * 1000:8.1f} ms x{cmed[k] / cmed['pipe']:.3f}  {note}"
        )
    tmp.cleanup()
    return 0 if cached_ok and diff <= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
