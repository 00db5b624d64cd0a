"""Speed of a ControlNet generation: our graph vs diffusers' StableDiffusionControlNetPipeline.

Both sides run the same loaded modules (UNet, VAE, text encoder and ControlNet from our model
cache; the pipeline is built from those very objects), prompt, control image, seed, steps,
scheduler and size, with diffusers-compatible seeding. Runs are paired and alternate which
side goes first, so load from other processes hits both alike; each of our runs uses a fresh
output cache (every node executes). Printed: median seconds per image for each side, the
median of the paired ratios (goal <= 1.05) and the largest pixel difference.

    .venv/bin/python benchmarks/controlnet_vs_diffusers.py            # tiny SD1, CPU, fp32
    .venv/bin/python benchmarks/controlnet_vs_diffusers.py --device cuda --dtype fp16 \\
        --model /path/to/sd15 --controlnet /path/to/controlnet --size 512 --steps 30
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

DTYPES = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32", "auto": "auto"}


def _control_image(size: int) -> Image.Image:
    arr = np.zeros((size, size, 3), np.uint8)
    arr[size // 6 : size * 5 // 6, size // 3 : size // 3 + 3] = 255
    arr[size // 2 : size // 2 + 3, size // 8 : size * 7 // 8] = 255
    return Image.fromarray(arr)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--device", default="cpu", help="cuda, cuda:N, mps, cpu or auto")
    ap.add_argument("--dtype", default="fp32", choices=sorted(DTYPES))
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5, help="pairs of runs")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--model", type=Path, help="an SD1 diffusers folder (default: tiny)")
    ap.add_argument("--controlnet", type=Path, help="its ControlNet folder (default: tiny)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    import diffusers

    import invoke_nb as inb
    from invoke_nb.graph.standard import OUTPUT, txt2img
    from invoke_nb.models.cache import ModelCache
    from invoke_nb.models.local import LocalModels, identifier
    from invoke_nb.nodes.diffusion.schedulers import make_scheduler
    from invoke_nb.testing.tiny_control import make_controlnet
    from invoke_nb.testing.tiny_models import make_sd1

    tmp = tempfile.TemporaryDirectory()
    folder = args.model or make_sd1(Path(tmp.name) / "sd1")
    cn_folder = args.controlnet or make_controlnet(Path(tmp.name) / "cn", folder)
    cache = ModelCache(
        ram_bytes=1 << 62,
        device=None if args.device == "auto" else args.device,
        precision=DTYPES[args.dtype],
    )
    models = LocalModels(cache=cache)
    device, dtype = models.cache.device, models.cache.dtype
    model = identifier(models.register(folder, name="bench", base="sd-1"))
    cn = identifier(models.register(cn_folder, name="bench-cn"))
    image = _control_image(args.size)
    prompt, negative = "a cute tiger cub, photograph", "blurry"

    def graph(seed: int) -> inb.Graph:
        g = txt2img(
            model, prompt, negative=negative, seed=seed, seeding="diffusers",
            width=args.size, height=args.size, steps=args.steps, cfg_scale=7.5,
            scheduler="euler", control=[dict(model=cn, image=image, weight=0.8)],
        )  # fmt: skip
        g.set(OUTPUT, fp32=dtype == torch.float32)
        return g

    def run_ours(seed: int) -> np.ndarray:
        r = inb.Runner(services=inb.Services(models=models)).run(graph(seed))
        _sync(device)
        return np.asarray(r.image(OUTPUT))

    a = run_ours(1)  # warm-up: modules loaded and placed
    parts: dict[str, Any] = {}
    for name in ("unet", "vae", "text_encoder", "tokenizer"):
        with models.load(model, name) as part:
            parts[name] = part
    with models.load(cn) as net:
        parts["controlnet"] = net
    with models.load(model, "scheduler") as sched_cfg:
        scheduler = make_scheduler("euler", sched_cfg, seed=0)
    pipe = diffusers.StableDiffusionControlNetPipeline(
        **parts, scheduler=scheduler, safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    )  # fmt: skip
    pipe.set_progress_bar_config(disable=True)

    def run_pipe(seed: int) -> np.ndarray:
        with torch.inference_mode():
            img = pipe(
                prompt, image=image, negative_prompt=negative, num_inference_steps=args.steps,
                height=args.size, width=args.size, guidance_scale=7.5,
                controlnet_conditioning_scale=0.8,
                generator=torch.Generator("cpu").manual_seed(seed),
            ).images[0]  # fmt: skip
        _sync(device)
        return np.asarray(img)

    diff = int(np.abs(a.astype(int) - run_pipe(1).astype(int)).max())
    wall: dict[str, list[float]] = {"ours": [], "pipe": []}
    for i in range(args.repeats):
        pair = [("ours", run_ours), ("pipe", run_pipe)]
        for kind, fn in pair if i % 2 == 0 else pair[::-1]:
            t = time.perf_counter()
            fn(100 + i)
            wall[kind].append(time.perf_counter() - t)
    ratio = statistics.median(o / p for o, p in zip(wall["ours"], wall["pipe"], strict=True))
    kind = "given" if args.model else "tiny"
    print(
        f"ControlNet txt2img, sd-1 ({kind} model)  device={device}  "
        f"dtype={str(dtype).removeprefix('torch.')}  {args.size}x{args.size}  {args.steps} steps"
        f"  euler  pairs={args.repeats}"
    )
    print(f"max pixel difference ours vs diffusers: {diff}/255")
    print(
        f"diffusers StableDiffusionControlNetPipeline  {statistics.median(wall['pipe']):.3f} s/image"
    )
    print(
        f"our graph (cold output cache)               {statistics.median(wall['ours']):.3f} s/image"
    )
    print(f"median paired ratio ours/diffusers x{ratio:.3f}  (goal <= 1.05)")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
