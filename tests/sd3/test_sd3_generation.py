"""SD3 nodes against diffusers' SD3 pipelines and InvokeAI's SD3 sampler (rebuilt here)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from invoke_nb.graph.standard import img2img, inpaint, txt2img
from invoke_nb.nodes.diffusion.sd3.sampling import clip_schedule
from invoke_nb.nodes.diffusion.torch27_noise import randn_float16_torch27

PROMPT, NEGATIVE = "a cute tiger cub photo", "blurry"


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB")).astype(np.int16)


def within(ours: np.ndarray, ref: np.ndarray, levels: int = 2) -> None:
    diff = np.abs(ours - ref)
    assert diff.max() <= levels, f"max difference {diff.max()} levels"


@pytest.fixture(scope="module")
def pipe(tiny_sd3: Path) -> Any:
    from diffusers import StableDiffusion3Pipeline

    p = StableDiffusion3Pipeline.from_pretrained(tiny_sd3, local_files_only=True)
    p.set_progress_bar_config(disable=True)
    return p


def test_txt2img_matches_stable_diffusion_3_pipeline(sd3_runner, sd3, pipe) -> None:
    g = txt2img(sd3, PROMPT, negative=NEGATIVE, width=64, height=48, steps=4, cfg_scale=4.0)
    g.set("seed", value=11)
    g.set("sd3_denoise", seeding="diffusers")
    ours = pixels(sd3_runner.run(g).image("l2i"))
    ref = pipe(
        PROMPT,
        negative_prompt=NEGATIVE,
        num_inference_steps=4,
        height=48,
        width=64,
        guidance_scale=4.0,
        generator=torch.Generator("cpu").manual_seed(11),
    ).images[0]
    assert ours.shape == (48, 64, 3) and ours.std() > 5
    within(ours, pixels(ref))


def test_img2img_matches_img2img_pipeline(sd3_runner, sd3, pipe, tiny_sd3: Path) -> None:
    from diffusers import StableDiffusion3Img2ImgPipeline

    source = Image.fromarray(
        np.random.default_rng(3).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    ).resize((64, 64))
    g = img2img(sd3, source, PROMPT, negative=NEGATIVE, strength=0.6, steps=5, cfg_scale=3.0)
    g.set("seed", value=5)
    g.set("sd3_denoise", seeding="diffusers")
    result = sd3_runner.run(g)
    latents = result.value(result.outputs["i2l"].latents)  # InvokeAI's: z * scaling_factor
    vae = pipe.vae.config
    i2i = StableDiffusion3Img2ImgPipeline(**pipe.components)
    i2i.set_progress_bar_config(disable=True)
    ref = i2i(
        PROMPT,
        image=latents - vae.shift_factor * vae.scaling_factor,  # diffusers' latent space
        negative_prompt=NEGATIVE,
        strength=0.6,
        num_inference_steps=5,
        guidance_scale=3.0,
        generator=torch.Generator("cpu").manual_seed(5),
    ).images[0]
    within(pixels(result.image("l2i")), pixels(ref))


def _invokeai_reference(pipe: Any, seed: int, steps: int, cfg: float) -> np.ndarray:
    """InvokeAI 6.11's SD3 sampler written out from its algorithm, on the same parts."""
    embeds, neg, pooled, neg_pooled = pipe.encode_prompt(
        PROMPT, PROMPT, PROMPT, negative_prompt=NEGATIVE, do_classifier_free_guidance=True
    )
    # float16 CPU noise as torch 2.7 (InvokeAI's) draws it: checked in test_sd3_noise.py
    x = randn_float16_torch27(seed, (1, 16, 8, 8)).float()
    ts = torch.linspace(1, 0, steps + 1).tolist()
    with torch.no_grad():
        for t, t_prev in itertools.pairwise(ts):
            out = pipe.transformer(
                hidden_states=torch.cat([x, x]),
                timestep=torch.tensor([t * 1000]).expand(2),
                encoder_hidden_states=torch.cat([neg, embeds]),
                pooled_projections=torch.cat([neg_pooled, pooled]),
                return_dict=False,
            )[0]
            u, c = out.chunk(2)
            x = x + (t_prev - t) * (u + cfg * (c - u))
        img = pipe.vae.decode(x / pipe.vae.config.scaling_factor, return_dict=False)[0]
    img = img.clamp(-1, 1)[0].permute(1, 2, 0)
    return (127.5 * (img + 1.0)).byte().numpy().astype(np.int16)


def test_default_seeding_is_invokeais_sd3_sampler(sd3_runner, sd3, pipe) -> None:
    g = txt2img(sd3, PROMPT, negative=NEGATIVE, width=64, height=64, steps=3, cfg_scale=3.5)
    g.set("seed", value=42)
    ours = pixels(sd3_runner.run(g).image("l2i"))
    within(ours, _invokeai_reference(pipe, 42, 3, 3.5))
    g.set("sd3_denoise", seeding="diffusers")
    assert np.abs(pixels(sd3_runner.run(g).image("l2i")) - ours).max() > 2  # a different rule


def test_invokeai_schedule_cuts_at_denoising_start_and_end() -> None:
    assert clip_schedule(4, 0.0, 1.0) == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0])
    assert clip_schedule(4, 0.4, 1.0) == pytest.approx([0.6, 0.5, 0.25, 0.0])
    assert clip_schedule(4, 0.0, 0.9) == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.1])


def test_inpaint_keeps_unmasked_pixels(sd3_runner, sd3) -> None:
    source = Image.new("RGB", (64, 64), (40, 120, 200))
    mask = Image.new("L", (64, 64), 255)
    mask.paste(0, (16, 16, 48, 48))  # black = repaint
    g = inpaint(sd3, source, mask, PROMPT, steps=3, edge_radius=4)
    out = pixels(sd3_runner.run(g).image("paste_back"))
    src = pixels(source)
    assert (out[:8] == src[:8]).all() and (out[:, -8:] == src[:, -8:]).all()
    assert np.abs(out[24:40, 24:40] - src[24:40, 24:40]).max() > 10
