"""FLUX Fill: the graph with flux_fill reproduces FluxFillPipeline (seeding="diffusers")."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from invoke_nb.graph import standard_flux
from invoke_nb.graph.errors import NodeError

PROMPT = "a red car on the road"


def _images() -> tuple[Image.Image, Image.Image]:
    y, x = np.mgrid[0:64, 0:64]
    rgb = np.stack([x * 4, y * 4, ((x // 16 + y // 16) % 2) * 200 + 20], axis=-1)
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 8:40] = 255  # white: repaint (diffusers' convention)
    return Image.fromarray(rgb.astype(np.uint8)), Image.fromarray(mask)


def _graph(extras, image, mask, seeding="diffusers"):
    g = standard_flux.txt2img(
        extras["fill"], PROMPT, width=64, height=64, steps=3, guidance=30.0, seed=5,
        seeding=seeding, t5_encoder=extras["t5"], clip_embed=extras["clip"], vae=extras["vae"],
    )  # fmt: skip
    g.add("image_mask_to_tensor", id="mask", image=mask, invert=True)  # True where white
    g.add("flux_fill", id="fill", image=image)
    g.connect("mask", "mask", "fill", "mask")
    g.connect("fill", "fill_cond", "flux_denoise", "fill_conditioning")
    return g


def test_fill_matches_flux_fill_pipeline(extras_runner, extras, extras_paths) -> None:
    from diffusers import FluxFillPipeline

    image, mask = _images()
    ours = np.asarray(extras_runner.run(_graph(extras, image, mask)).image("l2i")).astype(int)
    pipe = FluxFillPipeline.from_pretrained(extras_paths["fill"])
    pipe.set_progress_bar_config(disable=True)
    ref = pipe(
        PROMPT,
        image=image,
        mask_image=mask,
        width=64,
        height=64,
        num_inference_steps=3,
        guidance_scale=30.0,
        generator=torch.Generator("cpu").manual_seed(5),
    ).images[0]
    diff = np.abs(ours - np.asarray(ref).astype(int))
    assert diff.max() <= 2, f"max pixel difference {diff.max()}"
    # the mask matters: another mask gives another picture
    other = Image.fromarray(255 - np.asarray(mask))
    moved = np.asarray(extras_runner.run(_graph(extras, image, other)).image("l2i")).astype(int)
    assert np.abs(moved - ours).max() > 2


def test_fill_model_without_fill_conditioning_names_the_field(extras_runner, extras) -> None:
    g = standard_flux.txt2img(
        extras["fill"], PROMPT, width=64, height=64, steps=1, guidance=30.0,
        t5_encoder=extras["t5"], clip_embed=extras["clip"], vae=extras["vae"],
    )  # fmt: skip
    with pytest.raises(NodeError) as err:
        extras_runner.run(g)
    assert "flux_denoise" in str(err.value) and "fill_conditioning" in str(err.value)
