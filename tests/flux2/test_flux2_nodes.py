"""FLUX.2 Klein nodes: seeding rules, img2img plumbing, schedulers and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from invoke_nb.graph.errors import GraphError, NodeError
from invoke_nb.graph.standard_flux2 import DENOISE, OUTPUT, img2img, txt2img
from invoke_nb.nodes.diffusion.flux2 import sampling


def test_invokeai_noise_rule() -> None:
    """torch 2.7's float16 draw of (1, 32, 2*ceil(h/16), 2*ceil(w/16)), cast, then packed."""
    from invoke_nb.nodes.diffusion.torch27_noise import randn_float16_torch27

    x = sampling.noise(123, 48, 72, "invokeai")
    assert x.shape == (1, 3 * 5, 128) and x.dtype == torch.float32
    want = randn_float16_torch27(123, (1, 32, 6, 10)).float()
    assert torch.equal(sampling.unpack(x, 48, 72), want)
    # the 2x2 patch of latent pixel (0, 0..1, 0..1) of channel 0 is token 0, channels 0..3
    assert torch.equal(x[0, 0, :4], want[0, 0, :2, :2].reshape(4))
    # the packing is InvokeAI's einops "b c (h ph) (w pw) -> b (h w) (c ph pw)"
    assert torch.equal(x[0, 1, 4:8], want[0, 1, :2, 2:4].reshape(4))


def test_diffusers_noise_rule() -> None:
    x = sampling.noise(9, 64, 32, "diffusers")
    g = torch.Generator("cpu").manual_seed(9)
    want = torch.randn((1, 128, 4, 2), generator=g)
    assert torch.equal(x, want.reshape(1, 128, 8).permute(0, 2, 1))


def test_seedings_differ_and_repeat(runner, klein) -> None:
    def run(seeding: str, seed: int) -> np.ndarray:
        g = txt2img(klein, "a dog", width=64, height=64, steps=2, seed=seed, seeding=seeding)
        return np.asarray(runner.run(g).image(OUTPUT)).astype(np.int16)

    a = run("invokeai", 1)
    assert np.array_equal(a, run("invokeai", 1))
    assert np.abs(a - run("diffusers", 1)).max() > 2
    assert np.abs(a - run("invokeai", 2)).max() > 2


def test_a_new_seed_reruns_no_encoder(runner, klein) -> None:
    g = txt2img(klein, "a dog", width=64, height=64, steps=1, seed=1)
    runner.run(g)
    g.set("seed", value=2)
    second = runner.run(g)
    assert "pos_cond" in second.cached and DENOISE in second.executed


@pytest.mark.parametrize("scheduler", ["heun", "lcm"])
def test_other_schedulers_run(runner, klein, scheduler: str) -> None:
    g = txt2img(klein, "a cat", width=64, height=64, steps=2, seed=3, scheduler=scheduler)
    result = runner.run(g)
    lat = result.outputs[DENOISE]
    assert (lat.width, lat.height) == (64, 64)
    assert np.asarray(result.image(OUTPUT)).std() > 1.0
    again = type(runner)(services=runner.services).run(g)  # LCM's step noise is seeded
    assert np.array_equal(np.asarray(again.image(OUTPUT)), np.asarray(result.image(OUTPUT)))


def test_img2img_strength_zero_keeps_the_encoded_latents(runner, klein) -> None:
    """denoising_start 1 leaves nothing to do: the init latents come back unchanged."""
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    g = img2img(klein, image, "a cat", strength=0.0, steps=4)
    r = runner.run(g)
    enc = r.value(r.outputs["i2l"].latents)
    out = r.outputs[DENOISE]
    assert (out.width, out.height) == (64, 64)
    assert enc.shape == (1, 32, 8, 8)
    assert torch.allclose(r.value(out.latents), enc, atol=1e-5)
    half = runner.run(img2img(klein, image, "a cat", strength=0.5, steps=4))
    assert (
        np.abs(
            np.asarray(half.image(OUTPUT)).astype(int) - np.asarray(r.image(OUTPUT)).astype(int)
        ).max()
        > 2
    )


def test_size_not_a_multiple_of_16_names_node_and_field(runner, klein) -> None:
    with pytest.raises(GraphError) as err:
        txt2img(klein, "a cat", width=72, height=64, steps=1)
    assert DENOISE in str(err.value) and "width" in str(err.value)


def test_wrong_encoder_names_node_and_field(runner, klein, sd1_model) -> None:
    g = txt2img(klein, "a cat", width=64, height=64, steps=1)
    g.set("model_loader", model=sd1_model)
    with pytest.raises(NodeError) as err:
        runner.run(g)
    assert "model_loader" in str(err.value) and "'model'" in str(err.value)
    g = txt2img(klein, "a cat", width=64, height=64, steps=1)
    g.set("model_loader", qwen3_encoder_model=sd1_model)
    with pytest.raises(NodeError) as err:
        runner.run(g)
    # refused before anything loads: the field's model-type hint is qwen3_encoder
    assert "model_loader" in str(err.value) and "qwen3_encoder_model" in str(err.value)


def test_cfg_without_negative_names_the_field(runner, klein) -> None:
    g = txt2img(klein, "a cat", width=64, height=64, steps=1)
    g.set(DENOISE, cfg_scale=4.0)
    with pytest.raises(NodeError) as err:
        runner.run(g)
    assert DENOISE in str(err.value) and "negative_text_conditioning" in str(err.value)


def test_denoise_mask_that_keeps_everything_returns_the_image_latents(runner, klein) -> None:
    """Inpainting with nothing to repaint follows the image's own noise trajectory to t=0."""
    from invoke_nb.graph.standard_flux2 import inpaint

    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    keep_all = Image.new("L", (64, 64), 255)
    r = runner.run(inpaint(klein, image, keep_all, "a cat", steps=3, paste_back=False))
    enc = r.value(r.outputs["i2l"].latents)
    assert torch.allclose(r.value(r.outputs[DENOISE].latents), enc, atol=1e-4)
    hole = Image.new("L", (64, 64), 255)
    hole.paste(0, (24, 24, 40, 40))
    r2 = runner.run(inpaint(klein, image, hole, "a cat", steps=3, paste_back=False, edge_radius=4))
    out = r2.value(r2.outputs[DENOISE].latents)
    assert torch.allclose(out[..., 0, 0], enc[..., 0, 0], atol=1e-4)  # a kept corner
    assert (out[..., 3:5, 3:5] - enc[..., 3:5, 3:5]).abs().max() > 1e-2  # the repainted middle
