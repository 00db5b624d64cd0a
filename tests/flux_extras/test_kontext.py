"""FLUX Kontext: reference images through flux_kontext reproduce FluxKontextPipeline."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from invoke_nb.graph import standard_flux
from invoke_nb.graph.model import Graph

PROMPT = "make the car blue"


def _reference(w: int = 64, h: int = 48) -> Image.Image:
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 3, y * 5, ((x // 16 + y // 16) % 2) * 200 + 20], axis=-1)
    return Image.fromarray(rgb.astype(np.uint8))


def _graph(extras, refs: list[Image.Image]) -> Graph:
    g = standard_flux.txt2img(
        extras["dev"], PROMPT, width=64, height=64, steps=3, guidance=2.5, seed=9,
        seeding="diffusers", t5_encoder=extras["t5"], clip_embed=extras["clip"],
        vae=extras["vae"],
    )  # fmt: skip
    collect = g.add("collect", id="refs")
    for i, ref in enumerate(refs):
        k = g.add("flux_kontext", id=f"kontext_{i}", image=ref)
        g.connect(k, "kontext_cond", collect, "item")
    g.connect(collect, "collection", "flux_denoise", "kontext_conditioning")
    return g


def test_kontext_matches_flux_kontext_pipeline(extras_runner, extras, extras_paths) -> None:
    from diffusers import FluxKontextPipeline, FluxPipeline

    ref_image = _reference()
    ours = np.asarray(extras_runner.run(_graph(extras, [ref_image])).image("l2i")).astype(int)
    base = FluxPipeline.from_pretrained(extras_paths["dev"])
    pipe = FluxKontextPipeline(**base.components)
    pipe.set_progress_bar_config(disable=True)
    ref = pipe(
        image=ref_image,
        prompt=PROMPT,
        width=64,
        height=64,
        num_inference_steps=3,
        guidance_scale=2.5,
        generator=torch.Generator("cpu").manual_seed(9),
        _auto_resize=False,
        max_area=64 * 64,
    ).images[0]
    diff = np.abs(ours - np.asarray(ref).astype(int))
    assert diff.max() <= 2, f"max pixel difference {diff.max()}"
    plain = standard_flux.txt2img(
        extras["dev"], PROMPT, width=64, height=64, steps=3, guidance=2.5, seed=9,
        seeding="diffusers", t5_encoder=extras["t5"], clip_embed=extras["clip"],
        vae=extras["vae"],
    )  # fmt: skip
    without = np.asarray(extras_runner.run(plain).image("l2i")).astype(int)
    assert np.abs(without - ours).max() > 2  # the reference changed the picture
    two = np.asarray(
        extras_runner.run(_graph(extras, [ref_image, _reference(32, 32)])).image("l2i")
    ).astype(int)
    assert np.abs(two - ours).max() > 2


def test_image_prep_sizes(extras_runner) -> None:
    g = Graph()
    g.add("flux_kontext_image_prep", id="prep", images=[_reference(64, 48)])
    out = extras_runner.run(g).outputs["prep"]
    assert (out.width, out.height) == (1184, 880)  # nearest preferred ratio to 4:3
    g = Graph()
    g.add(
        "flux_kontext_image_prep",
        id="prep",
        images=[_reference(64, 48), _reference(32, 32)],
        use_preferred_resolution=False,
    )
    r = extras_runner.run(g)
    out = r.outputs["prep"]
    assert (out.width, out.height) == (64 + 48, 48)
    pixels = np.asarray(r.image("prep"))
    assert np.array_equal(pixels[:, :64], np.asarray(_reference(64, 48)))
