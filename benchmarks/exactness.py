"""How exact our images are: the figures the pixel tests only bound.

Tests compare pixels with a tolerance that holds on any x86-64 CPU and newer patch releases
(``invoke_nb.testing.pixels``: at most 2 levels, at most 2% of values). This script prints the
exact figures on this machine, beside the allowed ones:

- each InvokeAI 6.14.2 reference PNG (tests/fixtures/invokeai/) re-run by ``studio.rerun``;
- our txt2img graph (``seeding="diffusers"``) vs diffusers' StableDiffusionPipeline with the
  scheduler class of the same name, on the tiny SD1 model.

    python -m benchmarks.exactness [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# diffusers class and config overrides for our scheduler names (as tests/diffusion/test_parity)
DIFFUSERS_SCHEDULERS = {
    "euler": ("EulerDiscreteScheduler", {}),
    "ddim": ("DDIMScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {"solver_order": 2, "use_karras_sigmas": False}),
}


def invokeai_references(tmp: Path) -> list[tuple[str, object]]:
    """(png name, PixelDiff) of each reference PNG against our re-run of it."""
    from PIL import Image

    from invoke_nb.studio import Studio
    from invoke_nb.testing.pixels import pixel_diff

    sys.path.insert(0, str(ROOT / "tests" / "interchange"))
    from invokeai_root import REFERENCE_PNGS
    from reference_model import build_reference_sd1

    model = build_reference_sd1(tmp / "reference" / "tiny-sd1")
    studio = Studio(tmp / "studio")
    try:
        studio.models.install(model, name="reference", in_place=True)
        out = []
        for png in REFERENCE_PNGS:
            img = studio.rerun(png, progress=False)
            with Image.open(png) as ref:
                out.append((png.name, pixel_diff(img.pil, ref)))
        return out
    finally:
        studio.close()


def diffusers_pipelines(tmp: Path) -> list[tuple[str, object]]:
    """(scheduler, PixelDiff) of our graph against diffusers' pipeline, same seed."""
    import diffusers
    import torch

    import invoke_nb as inb
    from invoke_nb.graph.standard import OUTPUT, txt2img
    from invoke_nb.models.local import LocalModels
    from invoke_nb.nodes.types import identifier
    from invoke_nb.testing.pixels import pixel_diff
    from invoke_nb.testing.tiny_models import make_sd1

    folder = make_sd1(tmp / "tiny-sd1")
    models = LocalModels()
    model = identifier(models.register(folder, name="tiny"))
    runner = inb.Runner(services=inb.Services(models=models))
    pipe = diffusers.StableDiffusionPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    base_config = dict(pipe.scheduler.config)
    common = dict(width=64, height=64, steps=4, cfg_scale=7.5, seed=123)
    out = []
    for name, (cls, extra) in DIFFUSERS_SCHEDULERS.items():
        g = txt2img(
            model,
            "a cute tiger cub",
            negative="blurry",
            scheduler=name,
            seeding="diffusers",
            **common,
        )
        ours = runner.run(g).image(OUTPUT)
        pipe.scheduler = getattr(diffusers, cls).from_config({**base_config, **extra})
        ref = pipe(
            "a cute tiger cub",
            negative_prompt="blurry",
            num_inference_steps=4,
            height=64,
            width=64,
            guidance_scale=7.5,
            generator=torch.Generator("cpu").manual_seed(123),
        ).images[0]
        out.append((name, pixel_diff(ours, ref)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = ap.parse_args(argv)
    import torch

    from invoke_nb.testing.pixels import MAX_LEVELS, MAX_SHARE

    torch.set_num_threads(args.threads)
    import diffusers
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    print(
        f"torch threads={args.threads}  tests allow: max {MAX_LEVELS} levels, "
        f"{100 * MAX_SHARE:.0f}% of values differing"
    )
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        print("InvokeAI 6.14.2 reference PNG vs studio.rerun:")
        for name, diff in invokeai_references(tmp):
            print(f"  {name:36s} {diff}")
        print("our txt2img (seeding=diffusers) vs diffusers StableDiffusionPipeline, tiny SD1:")
        for name, diff in diffusers_pipelines(tmp):
            print(f"  {name:36s} {diff}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
