"""Tiled MultiDiffusion upscale: a 256 px image to 1024 px on the tiny SD1 model.

    PYTHONPATH=src .venv/bin/python -m benchmarks.tiled_upscale [--steps 4] [--tile 512]

The graph is InvokeAI's tiled-upscaling shape: a x4 ESRGAN (tiny random Real-ESRGAN layout)
enlarges the image, ``i2l`` encodes it, ``tiled_multi_diffusion_denoise_latents`` refines
the 128x128 latents in overlapping tiles (denoising from 0.6), ``l2i`` decodes. The baseline,
run the same way, is the same graph without the diffusion pass (ESRGAN, encode, decode), so
the difference is what MultiDiffusion costs. (``--plain`` adds plain ``denoise_latents`` on
the whole 128x128 latents: its attention over 16k tokens needs GBs and minutes on a CPU.)
Each case runs in a fresh process (the first run of the case is a warm-up), so the peak RSS
printed is that case's own (ru_maxrss).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def _graph(model: object, upscaler: object, image: Image.Image, case: str, args) -> object:
    import invoke_nb as inb

    g = inb.Graph()
    g.add("main_model_loader", id="loader", model=model)
    g.add("spandrel_image_to_image", id="esrgan", image=image, image_to_image_model=upscaler)
    g.add("i2l", id="i2l", fp32=True)
    g.connect("esrgan", "image", "i2l", "image")
    g.connect("loader", "vae", "i2l", "vae")
    for cid, text in (("pos", "a detailed landscape"), ("neg", "")):
        g.add("compel", id=cid, prompt=text)
        g.connect("loader", "clip", cid, "clip")
    size = image.width * 4
    g.add("noise", id="noise", width=size, height=size, seed=1, use_cpu=True)
    if case == "none":
        g.add("l2i", id="l2i", fp32=True)
        g.connect("i2l", "latents", "l2i", "latents")
        g.connect("loader", "vae", "l2i", "vae")
        return g
    if case == "tiled":
        g.add(
            "tiled_multi_diffusion_denoise_latents",
            id="den",
            tile_width=args.tile,
            tile_height=args.tile,
            tile_overlap=64,
            steps=args.steps,
            denoising_start=0.6,
        )
    else:
        g.add("denoise_latents", id="den", steps=args.steps, denoising_start=0.6)
    for a, b, c, d in (
        ("loader", "unet", "den", "unet"),
        ("pos", "conditioning", "den", "positive_conditioning"),
        ("neg", "conditioning", "den", "negative_conditioning"),
        ("noise", "noise", "den", "noise"),
        ("i2l", "latents", "den", "latents"),
    ):
        g.connect(a, b, c, d)
    g.add("l2i", id="l2i", fp32=True)
    g.connect("den", "latents", "l2i", "latents")
    g.connect("loader", "vae", "l2i", "vae")
    return g


def _case(case: str, args) -> dict:
    import invoke_nb as inb
    from invoke_nb.models.local import LocalModels, identifier
    from invoke_nb.testing.tiny_models import make_sd1
    from invoke_nb.testing.tiny_upscale import make_esrgan

    root = Path(args.work)
    models = LocalModels()
    models.register(make_sd1(root / "sd1") if not (root / "sd1").exists() else root / "sd1")
    esr = root / "x4.safetensors"
    if not esr.exists():
        make_esrgan(esr)
    models.register(esr, name="x4", type="spandrel_image_to_image", base="any")
    sd1 = identifier(models.store.list(type="main")[0])
    x4 = identifier(models.store.list(name="x4")[0])
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8))
    times = []
    for _ in range(2):  # warm-up, then measured
        runner = inb.Runner(services=inb.Services(models=models))
        t0 = time.perf_counter()
        r = runner.run(_graph(sd1, x4, image, case, args))
        times.append(time.perf_counter() - t0)
    out = r.outputs["l2i"]
    return {
        "seconds": times[-1],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "size": [out.width, out.height],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--case", choices=["tiled", "plain", "none"])
    ap.add_argument("--plain", action="store_true", help="also time untiled denoise_latents")
    ap.add_argument("--work")
    args = ap.parse_args()
    if args.case:
        print(json.dumps(_case(args.case, args)))
        return
    work = tempfile.mkdtemp(prefix="tiled-upscale-")
    results = {}
    for case in ("tiled", "none", *(("plain",) if args.plain else ())):
        cmd = [sys.executable, "-m", "benchmarks.tiled_upscale", "--case", case, "--work", work]
        cmd += ["--steps", str(args.steps), "--tile", str(args.tile)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        results[case] = json.loads(proc.stdout.strip().splitlines()[-1])
    t, n = results["tiled"], results["none"]
    print(
        f"256 px -> {t['size'][0]}x{t['size'][1]} px, {args.steps} steps from 0.6, tiles {args.tile} px"
    )
    print(f"tiled MultiDiffusion upscale: {t['seconds']:.2f} s, peak RSS {t['peak_rss_mb']:.0f} MB")
    print(f"baseline, no diffusion pass: {n['seconds']:.2f} s, peak RSS {n['peak_rss_mb']:.0f} MB")
    if "plain" in results:
        p = results["plain"]
        print(f"untiled denoise_latents: {p['seconds']:.2f} s, peak RSS {p['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
