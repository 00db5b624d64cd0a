"""Our FLUX graphs reproduce diffusers' Flux pipelines (seeding="diffusers") within 2/255."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from flux_support import parts
from PIL import Image

from invoke_nb.graph import standard_flux
from invoke_nb.graph.model import Graph

PROMPT = "a cute tiger cub in the forest"


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB")).astype(np.int16)


def ours(runner: Any, g: Graph) -> np.ndarray:
    return pixels(runner.run(g).image("l2i"))


@pytest.fixture(scope="module")
def source() -> Image.Image:
    """A 64x64 picture with structure (gradients and blocks) for img2img/inpaint."""
    y, x = np.mgrid[0:64, 0:64]
    rgb = np.stack([x * 4, y * 4, ((x // 16 + y // 16) % 2) * 200 + 20], axis=-1)
    return Image.fromarray(rgb.astype(np.uint8))


def _pipe(name: str, folder: Path) -> Any:
    import diffusers

    pipe = getattr(diffusers, name).from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize("variant", ["dev", "schnell"])
def test_txt2img_matches_flux_pipeline(flux_runner, flux, flux_paths, variant: str) -> None:
    guidance = 3.5 if variant == "dev" else 0.0
    g = standard_flux.txt2img(
        flux[variant], PROMPT, width=64, height=48, steps=3, guidance=guidance, seed=11,
        seeding="diffusers", **parts(flux),
    )  # fmt: skip
    got = ours(flux_runner, g)
    ref = _pipe("FluxPipeline", flux_paths[variant])(
        PROMPT,
        num_inference_steps=3,
        width=64,
        height=48,
        guidance_scale=guidance,
        max_sequence_length=512 if variant == "dev" else 256,
        generator=torch.Generator("cpu").manual_seed(11),
    ).images[0]
    assert got.shape == (48, 64, 3)
    assert np.abs(got - pixels(ref)).max() <= 2
    assert got.std() > 5  # a picture, not a flat field


def test_single_file_transformer_gives_the_folders_pixels(flux_runner, flux) -> None:
    common = dict(width=32, height=32, steps=2, guidance=4.0, seed=3, **parts(flux))
    a = ours(flux_runner, standard_flux.txt2img(flux["dev"], PROMPT, **common))
    b = ours(flux_runner, standard_flux.txt2img(flux["dev_file"], PROMPT, **common))
    assert np.abs(a - b).max() <= 1


def test_img2img_matches_flux_img2img_pipeline(flux_runner, flux, flux_paths, source) -> None:
    g = standard_flux.img2img(
        flux["dev"], source, PROMPT, strength=0.6, steps=4, guidance=3.5, seed=21,
        seeding="diffusers", **parts(flux),
    )  # fmt: skip
    got = ours(flux_runner, g)
    ref = _pipe("FluxImg2ImgPipeline", flux_paths["dev"])(
        PROMPT,
        image=source,
        strength=0.6,
        num_inference_steps=4,
        width=64,
        height=64,
        guidance_scale=3.5,
        generator=torch.Generator("cpu").manual_seed(21),
    ).images[0]
    assert np.abs(got - pixels(ref)).max() <= 2
    assert np.abs(got - pixels(source)).mean() > 2  # it did change the picture


def _inpaint_graph(flux: dict, source: Image.Image, keep: Image.Image) -> Graph:
    g = standard_flux.img2img(
        flux["dev"], source, PROMPT, strength=0.8, steps=4, guidance=3.5, seed=33,
        seeding="diffusers", **parts(flux),
    )  # fmt: skip
    mask = g.add("create_denoise_mask", id="mask", mask=keep)
    g.connect("flux_model_loader", "vae", mask, "vae")
    g.connect(mask, "denoise_mask", "flux_denoise", "denoise_mask")
    return g


def test_inpaint_matches_flux_inpaint_pipeline(flux_runner, flux, flux_paths, source) -> None:
    repaint = np.zeros((64, 64), np.uint8)
    repaint[16:48, 16:64] = 255  # diffusers: white = repaint
    keep = Image.fromarray(255 - repaint)  # ours (InvokeAI's): white = keep
    got = ours(flux_runner, _inpaint_graph(flux, source, keep))
    ref = _pipe("FluxInpaintPipeline", flux_paths["dev"])(
        PROMPT,
        image=source,
        mask_image=Image.fromarray(repaint),
        strength=0.8,
        num_inference_steps=4,
        width=64,
        height=64,
        guidance_scale=3.5,
        generator=torch.Generator("cpu").manual_seed(33),
    ).images[0]
    assert np.abs(got - pixels(ref)).max() <= 2
    # in latent space the kept part ends exactly on the source's latents (the decoder's
    # attention mixes pixels, so the picture is compared with diffusers above)
    r = flux_runner.run(_inpaint_graph(flux, source, keep))
    out = r.value(r.outputs["flux_denoise"].latents)
    init = r.value(r.outputs["flux_vae_encode"].latents)
    diff = (out - init).abs()[0].mean(0)  # (8, 8) latent cells
    assert diff[:2].max() < 1e-5 and diff[6:].max() < 1e-5
    assert diff[2:6, 2:].min() > 1e-3
