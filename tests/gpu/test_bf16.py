"""SD1 and SDXL end to end in bfloat16 on the CPU (the dtype plumbing a GPU uses), against
float32 on the same tiny models.

Tolerance: mean absolute pixel difference <= 4/255 and max <= 48/255 (measured here: means
1.0-1.6, max 8-16 for 4 steps at 64 px); an image from another seed is >= 20/255 away on
average, so the bound tells "same image, rounded" from "another image".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import invoke_nb as inb
from invoke_nb.graph.standard import OUTPUT, img2img, txt2img
from invoke_nb.models.local import LocalModels
from invoke_nb.nodes.types import identifier

MEAN, MAX = 4.0, 48


def _run(models: LocalModels, g: inb.Graph) -> tuple[np.ndarray, Any]:
    img = inb.Runner(services=inb.Services(models=models)).run(g).image(OUTPUT)
    return np.asarray(img).astype(int), img


def _paths(folder: Path, precision: str, init: Any = None) -> tuple[dict[str, np.ndarray], Any]:
    models = LocalModels(precision=precision)
    model = identifier(models.register(folder, name="m"))
    out: dict[str, np.ndarray] = {}
    g = txt2img(model, "a cat on a mat", width=64, height=64, steps=4, seed=3)
    out["txt2img"], image = _run(models, g)
    g.set(OUTPUT, fp32=False)  # as imported InvokeAI graphs often have it: VAE in bf16 too
    out["txt2img, VAE in model precision"], _ = _run(models, g)
    g2 = img2img(model, init if init is not None else image, "a dog", strength=0.6, steps=4, seed=4)
    out["img2img"], _ = _run(models, g2)
    out["other seed"], _ = _run(
        models, txt2img(model, "a cat on a mat", width=64, height=64, steps=4, seed=9)
    )
    with models.load(model, "unet") as unet:
        assert next(unet.parameters()).dtype == getattr(torch, precision)
    return out, image


@pytest.mark.parametrize("family", ["tiny_sd1", "tiny_sdxl"])
def test_bf16_matches_fp32_within_tolerance(family: str, request) -> None:
    folder = request.getfixturevalue(family)
    fp32, init = _paths(folder, "float32")
    bf16, _ = _paths(folder, "bfloat16", init)
    for name in ("txt2img", "txt2img, VAE in model precision", "img2img"):
        diff = np.abs(fp32[name] - bf16[name])
        assert diff.mean() <= MEAN and diff.max() <= MAX, (name, diff.mean(), diff.max())
    assert np.abs(fp32["txt2img"] - fp32["other seed"]).mean() >= 20
