"""Speed of our txt2img graph vs diffusers' pipeline on the same model, device and dtype.

Both run the same loaded modules (our model cache places them on the device in the chosen
precision; the pipeline is built from those very modules), prompt, seed, scheduler, steps
and size, with diffusers-compatible seeding. Runs are paired and alternate which side goes
first, so load from other processes (or GPU clocks) hits both alike. Each of our runs uses
a fresh output cache (every node executes, as a first run does). Printed per side: median
seconds per image, iterations per second (denoise steps / seconds per image, text encoding
and VAE decode included) and the median of the paired ratios. A last check re-runs our graph
with only the seed changed: prompt and loader nodes must come from the cache.

On a GPU machine (one command):

    .venv/bin/python benchmarks/txt2img_vs_diffusers.py --device cuda --dtype fp16 \\
        --family sdxl --model /path/to/sdxl-diffusers-folder --size 1024 --steps 30

CI form on the CPU (tiny random-weight model):

    .venv/bin/python benchmarks/txt2img_vs_diffusers.py --device cpu --dtype bf16
    .venv/bin/python benchmarks/txt2img_vs_diffusers.py --device cpu --dtype fp32 --family flux

FLUX compares our FLUX graph (flux_model_loader -> flux_text_encoder -> flux_denoise ->
flux_vae_decode, guidance 3.5, T5 length 512) with diffusers' FluxPipeline built from the
same transformer, T5, CLIP-L and VAE modules.

``--channels-last`` and ``--compile`` turn on the opt-in UNet speed-ups (the pipeline runs the
same UNet object, so both sides get them). ``--family`` picks the pipeline (``sd-1``, ``sdxl``,
``sd-3``, ``flux``, ``flux2`` (FLUX.2 Klein, cfg 1), ``cogview4``, ``z-image``; more families as
they arrive). Without
``--model`` a tiny random-weight model of that family is built (``--full-size``: SD1.5-size
UNet/VAE, slow on a CPU).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# This folder holds other scripts (e.g. queue.py) that would shadow stdlib modules.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import numpy as np  # noqa: E402
import torch  # noqa: E402

FAMILIES = ("sd-1", "sdxl", "sd-3", "flux", "flux2", "cogview4", "z-image")
# transformer families: their diffusers pipeline and our graph share these parts
_TRANSFORMER_PIPES = {"cogview4": "CogView4Pipeline", "z-image": "ZImagePipeline"}
# guidance per family: (ours, the pipeline's); Z-Image-Turbo runs without CFG (diffusers: 0)
_GUIDANCE = {"cogview4": (3.5, 3.5), "z-image": (1.0, 0.0), "flux2": (1.0, 1.0)}
DTYPES = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32", "auto": "auto"}


def _pipeline(family: str, parts: dict[str, Any], scheduler: Any) -> Any:
    import diffusers

    if family in _TRANSFORMER_PIPES:
        pipe = getattr(diffusers, _TRANSFORMER_PIPES[family])(scheduler=scheduler, **parts)
        pipe.set_progress_bar_config(disable=True)
        return pipe
    if family == "flux2":  # FLUX.2 Klein, distilled: no CFG
        pipe = diffusers.Flux2KleinPipeline(
            scheduler=scheduler,
            vae=parts["vae"],
            text_encoder=parts["text_encoder"],
            tokenizer=parts["tokenizer"],
            transformer=parts["transformer"],
            is_distilled=True,
        )
    elif family == "sd-3":
        pipe = diffusers.StableDiffusion3Pipeline(scheduler=scheduler, **parts)
    elif family == "sd-1":
        pipe = diffusers.StableDiffusionPipeline(
            vae=parts["vae"],
            text_encoder=parts["text_encoder"],
            tokenizer=parts["tokenizer"],
            unet=parts["unet"],
            scheduler=scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
    else:
        pipe = diffusers.StableDiffusionXLPipeline(
            vae=parts["vae"],
            text_encoder=parts["text_encoder"],
            text_encoder_2=parts["text_encoder_2"],
            tokenizer=parts["tokenizer"],
            tokenizer_2=parts["tokenizer_2"],
            unet=parts["unet"],
            scheduler=scheduler,
        )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    elif device == "mps":
        torch.mps.synchronize()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--device", default="auto", help="cuda, cuda:N, mps, cpu or auto")
    ap.add_argument(
        "--dtype", default="auto", choices=sorted(DTYPES), help="auto: InvokeAI's per device"
    )
    ap.add_argument("--family", default="sd-1", help=f"model family: {', '.join(FAMILIES)}")
    ap.add_argument("--size", type=int, default=128, help="image width and height (px)")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5, help="pairs of runs")
    ap.add_argument("--scheduler", default="euler")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument(
        "--full-size", action="store_true", help="SD1.5-size random-weight model (sd-1 only)"
    )
    ap.add_argument("--model", type=Path, help="an existing diffusers folder of --family")
    ap.add_argument("--channels-last", action="store_true", help="UNet in channels_last layout")
    ap.add_argument("--compile", action="store_true", help="torch.compile the UNet (both sides)")
    args = ap.parse_args(argv)
    if args.family not in FAMILIES:
        ap.error(f"--family {args.family!r} is not benchmarked yet; one of {', '.join(FAMILIES)}")
    torch.set_num_threads(args.threads)

    import invoke_nb as inb
    from invoke_nb.graph.standard import OUTPUT, txt2img
    from invoke_nb.models.cache import ModelCache
    from invoke_nb.models.local import LocalModels
    from invoke_nb.nodes.diffusion.schedulers import make_scheduler
    from invoke_nb.nodes.types import identifier
    from invoke_nb.testing.tiny_models import make_sd1, make_sdxl

    tmp = tempfile.TemporaryDirectory()
    if args.family == "flux":
        return _flux(args, Path(tmp.name))
    if args.model:
        folder = args.model
    elif args.family == "sd-1":
        folder = make_sd1(Path(tmp.name) / "sd1", full_size=args.full_size)
    elif args.family == "sd-3":
        from invoke_nb.testing.tiny_sd3 import make_sd3

        folder = make_sd3(Path(tmp.name) / "sd3")
    elif args.family == "cogview4":
        from invoke_nb.testing.tiny_cogview4 import make_cogview4

        folder = make_cogview4(Path(tmp.name) / "cogview4")
    elif args.family == "z-image":
        from invoke_nb.testing.tiny_z_image import make_z_image

        folder = make_z_image(Path(tmp.name) / "z-image")
    elif args.family == "flux2":
        from invoke_nb.testing.tiny_flux2 import build_tiny_flux2

        folder = build_tiny_flux2(Path(tmp.name) / "flux2")
    else:
        folder = make_sdxl(Path(tmp.name) / "sdxl")
    cache = ModelCache(
        ram_bytes=1 << 62,
        device=None if args.device == "auto" else args.device,
        precision=DTYPES[args.dtype],
        channels_last=args.channels_last,
        compile=args.compile,
    )
    models = LocalModels(cache=cache)
    device, dtype = models.cache.device, models.cache.dtype
    model = identifier(models.register(folder, name="bench", base=args.family, type="main"))
    flux2 = args.family == "flux2"
    prompt, negative = "a cute tiger cub, photograph", "blurry"
    cfg, pipe_cfg = _GUIDANCE.get(args.family, (7.5, 7.5))
    common = dict(
        width=args.size, height=args.size, steps=args.steps, cfg_scale=cfg, scheduler=args.scheduler
    )

    def graph(seed: int) -> inb.Graph:
        g = txt2img(model, prompt, negative=negative, seed=seed, seeding="diffusers", **common)
        if args.family == "sd-3":  # SD3's seed lives on its denoiser; its VAE node has no fp32
            g.set("sd3_denoise", seeding="diffusers")
        elif args.family not in _TRANSFORMER_PIPES and not flux2:  # VAE dtype as diffusers
            g.set(OUTPUT, fp32=dtype == torch.float32)
        return g

    def run_ours(seed: int, runner: Any = None) -> tuple[np.ndarray, Any]:
        runner = runner or inb.Runner(services=inb.Services(models=models))
        r = runner.run(graph(seed))
        _sync(device)
        return np.asarray(r.image(OUTPUT)), r

    # warm-up (imports, first-call allocations, modules placed on the device)
    a, _ = run_ours(1)
    names = ["transformer" if flux2 else "unet", "vae", "text_encoder", "tokenizer"]
    if args.family in _TRANSFORMER_PIPES:
        names[0] = "transformer"
    if args.family in ("sdxl", "sd-3"):
        names += ["text_encoder_2", "tokenizer_2"]
    if args.family == "sd-3":
        names = ["transformer", *names[1:], "text_encoder_3", "tokenizer_3"]
    parts: dict[str, Any] = {}
    for name in names:
        with models.load(model, name) as part:  # the very modules our graph ran
            parts[name] = part
    with models.load(model, "scheduler") as sched_cfg:
        if flux2:
            from invoke_nb.nodes.diffusion.flux2.denoise import make_scheduler as flux2_scheduler

            scheduler = flux2_scheduler(args.scheduler)
        elif args.family == "sd-3" or args.family in _TRANSFORMER_PIPES:  # flow-matching Euler
            from diffusers import FlowMatchEulerDiscreteScheduler

            scheduler = FlowMatchEulerDiscreteScheduler.from_config(sched_cfg)
        else:
            scheduler = make_scheduler(args.scheduler, sched_cfg, seed=0)
    pipe = _pipeline(args.family, parts, scheduler)

    def run_pipe(seed: int) -> np.ndarray:
        with torch.inference_mode():
            extra = {} if flux2 else {"negative_prompt": negative}
            img = pipe(
                prompt=prompt,
                num_inference_steps=args.steps,
                height=args.size,
                width=args.size,
                guidance_scale=pipe_cfg,
                generator=torch.Generator("cpu").manual_seed(seed),
                **extra,
            ).images[0]
        _sync(device)
        return np.asarray(img)

    b = run_pipe(1)
    diff = int(np.abs(a.astype(int) - b.astype(int)).max())

    warm = inb.Runner(services=inb.Services(models=models))
    run_ours(7, warm)
    wall: dict[str, list[float]] = {"ours": [], "pipe": [], "seed": []}
    cached_ok = True

    def timed(kind: str, fn: Any, *a: Any) -> Any:
        t = time.perf_counter()
        out = fn(*a)
        wall[kind].append(time.perf_counter() - t)
        return out

    for i in range(args.repeats):
        pair = [("ours", run_ours), ("pipe", run_pipe)]
        for kind, fn in pair if i % 2 == 0 else pair[::-1]:
            timed(kind, fn, 100 + i)
        _, r = timed("seed", run_ours, 200 + i, warm)
        prompts = {"pos_cond", "neg_cond", "model_loader"} & set(graph(0).nodes)
        cached_ok &= prompts <= r.cached
    med = {k: statistics.median(v) for k, v in wall.items()}
    ratio = statistics.median(o / p for o, p in zip(wall["ours"], wall["pipe"], strict=True))
    seed_ratio = statistics.median(o / p for o, p in zip(wall["seed"], wall["pipe"], strict=True))

    kind = "SD1.5-size" if args.full_size else ("given" if args.model else "tiny")
    print(
        f"{args.family} ({kind} model)  device={device}  dtype={str(dtype).removeprefix('torch.')}  "
        f"{args.size}x{args.size}  {args.steps} steps  {args.scheduler}  pairs={args.repeats}"
        f"{'  channels_last' if args.channels_last else ''}{'  compiled' if args.compile else ''}"
    )
    why = "" if dtype == torch.float32 else " (diffusers draws its noise in the model dtype)"
    if args.family in _TRANSFORMER_PIPES:  # noise in float32 on both sides
        why = " (our decoder truncates to uint8 as InvokeAI's does; diffusers rounds)"
    print(f"max pixel difference ours vs diffusers: {diff}/255{why}")
    print(f"{'':26}{'s/image':>10}{'it/s':>10}")
    rows = [
        ("diffusers pipeline", "pipe", ""),
        ("our graph (cold cache)", "ours", f"paired ratio ours/diffusers x{ratio:.3f}"),
        (
            "our graph, seed changed",
            "seed",
            f"x{seed_ratio:.3f}; prompts/loaders cached: {'yes' if cached_ok else 'NO'}",
        ),
    ]
    for label, k, note in rows:
        print(f"{label:<26}{med[k]:>10.3f}{args.steps / med[k]:>10.2f}  {note}")
    tmp.cleanup()
    return 0 if cached_ok else 1


def _flux(args: argparse.Namespace, tmp: Path) -> int:
    """The FLUX comparison: our standard FLUX graph vs FluxPipeline on the same modules."""
    import diffusers

    import invoke_nb as inb
    from invoke_nb.graph import standard_flux
    from invoke_nb.models.cache import ModelCache
    from invoke_nb.models.local import LocalModels, identifier
    from invoke_nb.models.probe import probe
    from invoke_nb.models.records import ModelRecord
    from invoke_nb.testing.tiny_flux import make_flux_set

    paths = make_flux_set(tmp / "flux")
    if args.model:
        paths["dev"] = args.model
    cache = ModelCache(
        ram_bytes=1 << 62,
        device=None if args.device == "auto" else args.device,
        precision=DTYPES[args.dtype],
    )
    models = LocalModels(cache=cache)
    device, dtype = models.cache.device, models.cache.dtype
    ids = {}
    for name in ("dev", "t5", "clip", "vae"):
        found = probe(paths[name])
        rec = ModelRecord(
            key=name, hash=name, path=str(paths[name]), name=name, base=found.base,
            type=found.type, format=found.format, variant=found.variant,
        )  # fmt: skip
        ids[name] = identifier(models.store.add(rec))
    prompt, guidance = "a cute tiger cub, photograph", 3.5
    common = dict(width=args.size, height=args.size, steps=args.steps, guidance=guidance)

    def graph(seed: int) -> inb.Graph:
        return standard_flux.txt2img(
            ids["dev"], prompt, seed=seed, seeding="diffusers", t5_encoder=ids["t5"],
            clip_embed=ids["clip"], vae=ids["vae"], **common,
        )  # fmt: skip

    def run_ours(seed: int, runner: Any = None) -> tuple[np.ndarray, Any]:
        runner = runner or inb.Runner(services=inb.Services(models=models))
        r = runner.run(graph(seed))
        _sync(device)
        return np.asarray(r.image("l2i")), r

    a, _ = run_ours(1)
    parts: dict[str, Any] = {}
    for key, (ident, sub) in {
        "transformer": (ids["dev"], "transformer"),
        "text_encoder_2": (ids["t5"], "text_encoder_2"),
        "tokenizer_2": (ids["t5"], "tokenizer_2"),
        "text_encoder": (ids["clip"], "text_encoder"),
        "tokenizer": (ids["clip"], "tokenizer"),
        "vae": (ids["vae"], "vae"),
    }.items():
        with models.load(ident, sub) as part:
            parts[key] = part
    sched = diffusers.FlowMatchEulerDiscreteScheduler.from_pretrained(paths["dev"] / "scheduler")
    pipe = diffusers.FluxPipeline(scheduler=sched, **parts)
    pipe.set_progress_bar_config(disable=True)

    def run_pipe(seed: int) -> np.ndarray:
        with torch.inference_mode():
            img = pipe(
                prompt, num_inference_steps=args.steps, height=args.size, width=args.size,
                guidance_scale=guidance, max_sequence_length=512,
                generator=torch.Generator("cpu").manual_seed(seed),
            ).images[0]  # fmt: skip
        _sync(device)
        return np.asarray(img)

    b = run_pipe(1)
    diff = int(np.abs(a.astype(int) - b.astype(int)).max())
    warm = inb.Runner(services=inb.Services(models=models))
    run_ours(7, warm)
    wall: dict[str, list[float]] = {"ours": [], "pipe": [], "seed": []}
    cached_ok = True
    for i in range(args.repeats):
        pair = [("ours", run_ours), ("pipe", run_pipe)]
        for kind, fn in pair if i % 2 == 0 else pair[::-1]:
            t = time.perf_counter()
            fn(100 + i)
            wall[kind].append(time.perf_counter() - t)
        t = time.perf_counter()
        _, r = run_ours(200 + i, warm)
        wall["seed"].append(time.perf_counter() - t)
        cached_ok &= {"flux_text_encoder", "flux_model_loader"} <= r.cached
    med = {k: statistics.median(v) for k, v in wall.items()}
    ratio = statistics.median(o / p for o, p in zip(wall["ours"], wall["pipe"], strict=True))
    seed_ratio = statistics.median(o / p for o, p in zip(wall["seed"], wall["pipe"], strict=True))
    print(
        f"flux ({'given' if args.model else 'tiny'} model)  device={device}  "
        f"dtype={str(dtype).removeprefix('torch.')}  {args.size}x{args.size}  {args.steps} steps"
        f"  euler  pairs={args.repeats}"
    )
    print(f"max pixel difference ours vs diffusers: {diff}/255")
    print(f"{'':26}{'s/image':>10}{'it/s':>10}")
    for label, k, note in (
        ("diffusers FluxPipeline", "pipe", ""),
        ("our graph (cold cache)", "ours", f"paired ratio ours/diffusers x{ratio:.3f}"),
        ("our graph, seed changed", "seed",
         f"ratio x{seed_ratio:.3f}; prompt/loader cached: {'yes' if cached_ok else 'NO'}"),
    ):  # fmt: skip
        print(f"{label:<26}{med[k]:>10.3f}{args.steps / med[k]:>10.2f}  {note}")
    return 0 if cached_ok else 1


if __name__ == "__main__":
    sys.exit(main())
