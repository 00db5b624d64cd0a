"""Behaviour of the diffusion nodes on the tiny models: seeds, cache, cancel, img2img, inpaint."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from PIL import Image

import invoke_nb as inb
from invoke_nb.graph.standard import OUTPUT, img2img, inpaint, output_node, txt2img
from invoke_nb.nodes.diffusion.schedulers import SCHEDULER_NAMES

SMALL = dict(width=64, height=64, steps=3)


def pixels(result, node_id: str) -> np.ndarray:
    return np.asarray(result.image(node_id).convert("RGB")).astype(np.int16)


def test_same_seed_same_image_other_seed_other_image(models, sd1) -> None:
    a = pixels(
        inb.Runner(services=inb.Services(models=models)).run(
            txt2img(sd1, "a dog", seed=11, **SMALL)
        ),
        OUTPUT,
    )
    b = pixels(
        inb.Runner(services=inb.Services(models=models)).run(
            txt2img(sd1, "a dog", seed=11, **SMALL)
        ),
        OUTPUT,
    )
    c = pixels(
        inb.Runner(services=inb.Services(models=models)).run(
            txt2img(sd1, "a dog", seed=12, **SMALL)
        ),
        OUTPUT,
    )
    assert np.array_equal(a, b)
    assert np.abs(a - c).max() > 10


def test_noise_is_invokeai_cpu_noise(runner) -> None:
    g = inb.Graph()
    n = g.add("noise", seed=42, width=64, height=96)
    r = runner.run(g)
    out = r.outputs[n]
    noise = r.value(out.noise.latents_name)
    expected = torch.randn((1, 4, 12, 8), generator=torch.Generator("cpu").manual_seed(42))
    assert torch.equal(noise, expected)
    assert (out.width, out.height, out.noise.seed) == (64, 96, 42)


def test_changing_only_the_seed_reuses_prompts_and_loaders(runner, sd1) -> None:
    g = txt2img(sd1, "a red car", seed=1, **SMALL)
    first = runner.run(g)
    assert {"pos_cond", "neg_cond", "model_loader"} <= first.executed
    g.set("seed", value=2)
    second = runner.run(g)
    assert {"pos_cond", "neg_cond", "model_loader"} <= second.cached
    assert {"noise", "denoise_latents", OUTPUT} <= second.executed
    assert np.abs(pixels(first, OUTPUT) - pixels(second, OUTPUT)).max() > 10


def test_progress_reports_every_step_with_a_preview(models, sd1) -> None:
    events: list[dict] = []
    services = inb.Services(
        models=models, emit=lambda kind, p: events.append({"kind": kind, **p}), preview_every=1
    )
    inb.Runner(services=services).run(txt2img(sd1, "a cat", width=64, height=64, steps=4))
    steps = [
        e
        for e in events
        if e["kind"] == "progress" and e.get("node_type") == "denoise_latents" and e.get("step")
    ]
    assert [e["step"] for e in steps] == [1, 2, 3, 4]
    assert all(e["total"] == 4 for e in steps)
    assert all(isinstance(e["image"], Image.Image) and e["image"].size == (8, 8) for e in steps)


def test_cancel_mid_denoise_stops_within_one_step(models, sd1) -> None:
    cancel = threading.Event()
    steps: list[int] = []

    def emit(kind: str, payload: dict) -> None:
        if (
            kind == "progress"
            and payload.get("node_type") == "denoise_latents"
            and payload.get("step")
        ):
            steps.append(payload["step"])
            if payload["step"] == 2:
                cancel.set()

    services = inb.Services(models=models, emit=emit, cancel=cancel)
    with pytest.raises(inb.Cancelled):
        inb.Runner(services=services).run(txt2img(sd1, "a cat", width=64, height=64, steps=10))
    assert steps == [1, 2]


@pytest.mark.parametrize("name", SCHEDULER_NAMES)
def test_every_scheduler_name_runs(runner, sd1, name: str) -> None:
    g = txt2img(sd1, "a cat", width=64, height=64, steps=2, scheduler=name, seed=3)
    img = pixels(runner.run(g), OUTPUT)
    assert img.shape == (64, 64, 3)


def test_unknown_scheduler_is_refused_by_name(sd1) -> None:
    with pytest.raises(inb.GraphError, match="scheduler"):
        txt2img(sd1, "a cat", scheduler="euler_fast", **SMALL).validate()


def _photo(size: int = 64) -> Image.Image:
    rng = np.random.default_rng(0)
    arr = np.zeros((size, size, 3), np.uint8)
    arr[: size // 2] = (200, 40, 40)
    arr[size // 2 :] = (30, 60, 200)
    arr = np.clip(arr.astype(int) + rng.integers(-10, 10, arr.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(arr)


def test_img2img_strength_zero_returns_the_input_latents_decoded(runner, models, sd1) -> None:
    photo = _photo()
    g = img2img(sd1, photo, "a cat", strength=0.0, steps=4)
    r = runner.run(g)
    # decode the i2l latents directly: the graph's image must be exactly that
    g2 = inb.Graph()
    ml = g2.add("main_model_loader", model=sd1)
    enc = g2.add("i2l", image=photo, fp32=True)
    dec = g2.add("l2i", fp32=True)
    g2.connect(ml, "vae", enc, "vae")
    g2.connect(ml, "vae", dec, "vae")
    g2.connect(enc, "latents", dec, "latents")
    direct = pixels(inb.Runner(services=inb.Services(models=models)).run(g2), dec)
    assert np.array_equal(pixels(r, OUTPUT), direct)


def test_img2img_strength_changes_the_image_progressively(runner, sd1) -> None:
    photo = _photo()
    low = pixels(runner.run(img2img(sd1, photo, "a cat", strength=0.3, steps=4)), OUTPUT)
    high = pixels(runner.run(img2img(sd1, photo, "a cat", strength=1.0, steps=4)), OUTPUT)
    base = pixels(runner.run(img2img(sd1, photo, "a cat", strength=0.0, steps=4)), OUTPUT)
    assert np.abs(low - base).mean() < np.abs(high - base).mean()


def _mask(size: int = 64) -> Image.Image:
    m = np.full((size, size), 255, np.uint8)  # white = keep
    q = size // 4
    m[q : size - q, q : size - q] = 0  # black = repaint
    return Image.fromarray(m, mode="L")


def test_inpaint_with_paste_back_keeps_unmasked_pixels_exactly(runner, sd1) -> None:
    photo = _photo(128)
    g = inpaint(sd1, photo, _mask(128), "a cat", steps=4, edge_radius=8)
    r = runner.run(g)
    out = pixels(r, output_node(g))
    src = np.asarray(photo).astype(np.int16)
    expanded = np.asarray(
        r.value(r.outputs["gradient_mask"].expanded_mask_area.image_name).convert("L")
    )
    keep = expanded == 255
    assert keep.sum() > 4000 and (~keep).sum() >= 64 * 64
    assert np.array_equal(out[keep], src[keep])
    assert np.abs(out[32:96, 32:96] - src[32:96, 32:96]).mean() > 10


def test_inpaint_without_paste_back_keeps_unmasked_latents(runner, sd1) -> None:
    photo = _photo(128)
    g = inpaint(sd1, photo, _mask(128), "a cat", steps=4, edge_radius=0, paste_back=False)
    r = runner.run(g)
    den = r.value(r.outputs["denoise_latents"].latents.latents_name)
    enc = r.value(r.outputs["i2l"].latents.latents_name)
    # latent pixels wholly outside the repainted square are the encoded ones, exactly
    assert torch.equal(den[..., :2, :], enc[..., :2, :])
    assert torch.equal(den[..., :, 14:], enc[..., :, 14:])
    assert (den[..., 4:12, 4:12] - enc[..., 4:12, 4:12]).abs().mean() > 0.05


def test_outpaint_fills_the_transparent_side_and_keeps_the_rest(runner, sd1) -> None:
    from invoke_nb.graph.standard import outpaint

    rgba = np.zeros((128, 128, 4), np.uint8)
    rgba[:, :64, :3] = np.asarray(_photo(128))[:, :64]
    rgba[:, :64, 3] = 255  # left half is the picture, right half is empty canvas
    g = outpaint(sd1, Image.fromarray(rgba, "RGBA"), "a cat", steps=3, edge_radius=8)
    r = runner.run(g)
    out = pixels(r, output_node(g))
    assert out.shape == (128, 128, 3)
    assert np.array_equal(out[:, :40], rgba[:, :40, :3].astype(np.int16))
    assert out[:, 80:].std() > 5  # something was painted where there was nothing


def test_sdxl_img2img_runs_and_keeps_size(runner, sdxl) -> None:
    photo = _photo(64)
    r = runner.run(img2img(sdxl, photo, "a cat", strength=0.5, steps=2))
    assert r.image(OUTPUT).size == (64, 64)


def test_inpainting_model_gets_mask_and_masked_latents(models, tiny_sd1_inpaint) -> None:
    from invoke_nb.nodes.types import identifier

    found = models.store.list(name="tiny-sd1-inpaint")
    rec = found[0] if found else models.register(tiny_sd1_inpaint, name="tiny-sd1-inpaint")
    photo = _photo(128)
    g = inpaint(identifier(rec), photo, _mask(128), "a cat", steps=3, edge_radius=8)
    r = inb.Runner(services=inb.Services(models=models)).run(g)
    gm = r.outputs["gradient_mask"].denoise_mask
    assert gm.masked_latents_name is not None  # made only for inpainting models
    assert r.value(gm.masked_latents_name).shape == (1, 4, 16, 16)
    out = pixels(r, output_node(g))
    src = np.asarray(photo).astype(np.int16)
    assert np.abs(out[40:88, 40:88] - src[40:88, 40:88]).mean() > 10
    assert np.array_equal(out[:8], src[:8])


def test_sdxl_base_then_refiner(models, sdxl, tiny_sdxl_refiner) -> None:
    """InvokeAI's refiner shape: base denoises to 0.7, the refiner finishes from there."""
    from invoke_nb.nodes.types import identifier

    found = models.store.list(name="tiny-sdxl-refiner")
    rec = found[0] if found else models.register(tiny_sdxl_refiner, name="tiny-sdxl-refiner")
    assert rec.base == "sdxl-refiner"
    g = txt2img(sdxl, "a cat", width=64, height=64, steps=4, seed=2)
    g.set("denoise_latents", denoising_end=0.7)
    ref = g.add("sdxl_refiner_model_loader", id="refiner", model=identifier(rec))
    for pid, text, score in (("refiner_pos", "a cat", 6.0), ("refiner_neg", "", 2.5)):
        g.add(
            "sdxl_refiner_compel_prompt",
            id=pid,
            style=text,
            aesthetic_score=score,
            original_width=64,
            original_height=64,
        )
        g.connect(ref, "clip2", pid, "clip2")
    den = g.add(
        "denoise_latents", id="refiner_denoise", steps=4, denoising_start=0.7, cfg_scale=5.0
    )
    g.connect(ref, "unet", den, "unet")
    g.connect("refiner_pos", "conditioning", den, "positive_conditioning")
    g.connect("refiner_neg", "conditioning", den, "negative_conditioning")
    g.connect("denoise_latents", "latents", den, "latents")
    g.disconnect("denoise_latents", "latents", OUTPUT, "latents")
    g.connect(den, "latents", OUTPUT, "latents")
    r = inb.Runner(services=inb.Services(models=models)).run(g)
    base = r.value(r.outputs["denoise_latents"].latents.latents_name)
    refined = r.value(r.outputs[den].latents.latents_name)
    assert refined.shape == base.shape and not torch.equal(refined, base)
    assert r.image(OUTPUT).size == (64, 64)


def test_noise_seed_wraps_like_invokeai() -> None:
    """Node validation takes any integer modulo 2**32 (graph fields keep InvokeAI's 0..2**32-1)."""
    from invoke_nb.nodes.diffusion.sd.latents import NoiseNode

    assert NoiseNode.model_validate({"seed": -1}).seed == 0xFFFFFFFF
    assert NoiseNode.model_validate({"seed": 2**32 + 5}).seed == 5
