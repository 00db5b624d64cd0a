"""``tiled_multi_diffusion_denoise_latents`` on the tiny SD1 model: one tile equals
``denoise_latents``; several tiles equal InvokeAI's MultiDiffusion loop (one scheduler copy
per tile, scheduler outputs merged with linear ramps), written out here as the reference."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch

import invoke_nb as inb
from invoke_nb.models.local import LocalModels, identifier
from invoke_nb.nodes.diffusion.schedulers import make_scheduler
from invoke_nb.nodes.upscale.multidiffusion import tile_weights
from invoke_nb.nodes.upscale.tile_math import tiles_min_overlap

W, H = 192, 128  # latents 24 x 16


@pytest.fixture(scope="module")
def sd1(tiny_sd1: Path) -> tuple[LocalModels, Any]:
    m = LocalModels()
    m.register(tiny_sd1, name="tiny-sd1")
    return m, identifier(m.store.list(name="tiny-sd1")[0])


def _graph(model: Any, node_type: str, **fields: Any) -> inb.Graph:
    g = inb.Graph()
    g.add("main_model_loader", id="loader", model=model)
    for cid, text in (("pos", "a cat on a hill"), ("neg", "")):
        g.add("compel", id=cid, prompt=text)
        g.connect("loader", "clip", cid, "clip")
    g.add("noise", id="noise", width=W, height=H, seed=7, use_cpu=True)
    g.add(node_type, id="den", steps=3, cfg_scale=5.0, scheduler="euler", **fields)
    g.connect("loader", "unet", "den", "unet")
    g.connect("pos", "conditioning", "den", "positive_conditioning")
    g.connect("neg", "conditioning", "den", "negative_conditioning")
    g.connect("noise", "noise", "den", "noise")
    return g


def _latents(sd1: tuple[LocalModels, Any], node_type: str, **fields: Any) -> tuple[Any, Any]:
    models, model = sd1
    r = inb.Runner(services=inb.Services(models=models)).run(_graph(model, node_type, **fields))
    return r, r.value(r.outputs["den"].latents)


def test_one_tile_equals_denoise_latents(sd1: tuple[LocalModels, Any]) -> None:
    _, plain = _latents(sd1, "denoise_latents")
    _, tiled = _latents(
        sd1, "tiled_multi_diffusion_denoise_latents", tile_width=256, tile_height=256
    )
    assert tiled.shape == plain.shape == (1, 4, 16, 24)
    assert torch.allclose(tiled, plain, atol=1e-5)


def _invokeai_multidiffusion(
    sd1: tuple[LocalModels, Any], r: Any, tile: int, overlap: int
) -> torch.Tensor:
    """InvokeAI 6.11.1's algorithm, step by step, on the same UNet, prompts and noise."""
    models, model = sd1
    noise = r.value(r.outputs["noise"].noise)
    pos = r.value(r.outputs["pos"].conditioning).embeds
    neg = r.value(r.outputs["neg"].conditioning).embeds
    tiles = tiles_min_overlap(16, 24, tile, tile, overlap)
    with models.load(model.model_copy(update={"submodel_type": "scheduler"})) as cfg:
        scheduler = make_scheduler("euler", cfg, seed=7)
    scheduler.set_timesteps(3)
    timesteps = scheduler.timesteps
    latents = scheduler.add_noise(torch.zeros_like(noise), noise, timesteps[:1])
    per_tile = [copy.deepcopy(scheduler) for _ in tiles]
    embeds = torch.cat([neg, pos])
    with torch.no_grad(), models.load(model.model_copy(update={"submodel_type": "unet"})) as unet:
        for t in timesteps:
            merged = torch.zeros_like(latents)
            weights = torch.zeros((1, 1, 16, 24))
            for tl, sched in zip(tiles, per_tile, strict=True):
                c = tl.coords
                part = latents[..., c.top : c.bottom, c.left : c.right]
                x = sched.scale_model_input(part, t)
                u, p = unet(torch.cat([x, x]), t, encoder_hidden_states=embeds).sample.chunk(2)
                prev = sched.step(u + 5.0 * (p - u), t, part).prev_sample
                w = tile_weights(tl, prev)
                merged[..., c.top : c.bottom, c.left : c.right] += prev * w
                weights[..., c.top : c.bottom, c.left : c.right] += w
            latents = torch.where(weights > 0, merged / weights, merged)
    return latents


def test_tiles_equal_invokeai_multidiffusion(sd1: tuple[LocalModels, Any]) -> None:
    r, tiled = _latents(
        sd1,
        "tiled_multi_diffusion_denoise_latents",
        tile_width=96,
        tile_height=96,
        tile_overlap=32,
    )
    expected = _invokeai_multidiffusion(sd1, r, tile=12, overlap=4)
    assert len(tiles_min_overlap(16, 24, 12, 12, 4)) == 6
    assert torch.allclose(tiled, expected, atol=1e-4), (tiled - expected).abs().max()
    _, whole = _latents(sd1, "denoise_latents")
    assert (tiled - whole).abs().max() > 1e-3  # tiling did change the result


def test_bad_overlap_is_named(sd1: tuple[LocalModels, Any]) -> None:
    with pytest.raises(Exception, match="tile_overlap 64 must be smaller"):
        _latents(
            sd1,
            "tiled_multi_diffusion_denoise_latents",
            tile_width=64,
            tile_height=64,
            tile_overlap=64,
        )


def test_one_tile_with_a_controlnet_equals_denoise_latents(
    sd1: tuple[LocalModels, Any], tmp_path: Path, tiny_sd1: Path
) -> None:
    """The control path of the tiled node: on one tile, a ControlNet (its image resized to
    the latents, weights and step window applied) acts as in ``denoise_latents``."""
    import numpy as np
    from PIL import Image

    from invoke_nb.testing.tiny_control import make_controlnet

    models, model = sd1
    models.register(make_controlnet(tmp_path / "cn", tiny_sd1, seed=5), name="md-cn")
    cn = identifier(models.store.list(name="md-cn")[0])
    hint = np.zeros((50, 70, 3), np.uint8)  # not the latents' size: resized as InvokeAI does
    hint[10:40, 20:30] = 255
    runner = inb.Runner(services=inb.Services(models=models))
    out = {}
    for node_type, fields in (
        ("denoise_latents", {}),
        ("tiled_multi_diffusion_denoise_latents", {"tile_width": 256, "tile_height": 256}),
    ):
        g = _graph(model, node_type, **fields)
        c = g.add("controlnet", control_model=cn, image=Image.fromarray(hint),
                  control_weight=0.7, end_step_percent=0.7)  # fmt: skip
        col = g.add("collect")
        g.connect(c, "control", col, "item")
        g.connect(col, "collection", "den", "control")
        r = runner.run(g)
        out[node_type] = r.value(r.outputs["den"].latents)
    _, plain = _latents(sd1, "denoise_latents")
    tiled, whole = out["tiled_multi_diffusion_denoise_latents"], out["denoise_latents"]
    assert (whole - plain).abs().max() > 1e-2  # the ControlNet acts
    assert torch.allclose(tiled, whole, atol=1e-5), (tiled - whole).abs().max()
