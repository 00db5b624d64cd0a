"""The model cache's GPU paths, run on the CPU with a device budget set on a CPU cache.

Tolerances: partial loading and taking turns compute the same operations on the same
weights, so pixels must agree within 1/255; a VAE decode that falls back to tiles blends
tile seams: its image matches an explicitly tiled decode within 1/255, and the whole decode
by mean absolute difference only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import invoke_nb as inb
from invoke_nb.graph.standard import OUTPUT, txt2img
from invoke_nb.models.cache import ModelCache, object_size
from invoke_nb.models.local import LocalModels
from invoke_nb.nodes.types import identifier

PROMPT = "a lighthouse at dusk"


@pytest.fixture(scope="module")
def reference(tiny_sd1: Path, tiny_lora_sd1: Path) -> dict[str, Any]:
    """Images and part sizes from an unbudgeted provider."""
    models = LocalModels()
    model = identifier(models.register(tiny_sd1, name="sd"))
    lora = identifier(models.register(tiny_lora_sd1, name="lora"))
    sizes = {}
    for part in ("unet", "vae", "text_encoder"):
        with models.load(model, part) as m:
            sizes[part] = object_size(m)
    return {
        "sizes": sizes,
        "plain": _image(models, model, ()),
        "lora": _image(models, model, ((lora, 0.8),)),
    }


def _image(
    models: LocalModels, model: Any, loras: tuple, size: int = 64, tiled: bool = False
) -> np.ndarray:
    g = txt2img(model, PROMPT, width=size, height=size, steps=3, seed=5, loras=loras)
    if tiled:
        g.set(OUTPUT, tiled=True)
    r = inb.Runner(services=inb.Services(models=models)).run(g)
    return np.asarray(r.image(OUTPUT)).astype(int)


def _budgeted(tiny_sd1: Path, tiny_lora_sd1: Path, vram: int) -> tuple[LocalModels, Any, Any]:
    cache = ModelCache(ram_bytes=1 << 40, vram_bytes=vram, device="cpu")
    models = LocalModels(cache=cache)
    model = identifier(models.register(tiny_sd1, name="sd"))
    lora = identifier(models.register(tiny_lora_sd1, name="lora"))
    return models, model, lora


@pytest.mark.parametrize("share", [0.0, 0.5])
def test_unet_bigger_than_the_budget_runs_partly_loaded(
    reference, tiny_sd1, tiny_lora_sd1, share
) -> None:
    budget = max(int(reference["sizes"]["unet"] * share), 1)
    models, model, lora = _budgeted(tiny_sd1, tiny_lora_sd1, budget)
    got = _image(models, model, ())
    assert np.abs(got - reference["plain"]).max() <= 1
    stats = models.cache.stats()
    assert stats.partial_loads >= 1 and stats.bytes_vram <= budget
    # LoRAs patch the streamed weights at their CPU source, and are undone after
    assert np.abs(_image(models, model, ((lora, 0.8),)) - reference["lora"]).max() <= 1
    assert np.abs(_image(models, model, ()) - reference["plain"]).max() <= 1


def test_models_that_do_not_fit_together_take_turns(reference, tiny_sd1, tiny_lora_sd1) -> None:
    sizes = reference["sizes"]
    budget = max(sizes.values()) + 1024  # any one part fits; the two largest do not
    assert sum(sorted(sizes.values())[-2:]) > budget
    models, model, _ = _budgeted(tiny_sd1, tiny_lora_sd1, budget)
    got = _image(models, model, ())
    assert np.abs(got - reference["plain"]).max() <= 1
    stats = models.cache.stats()
    assert stats.partial_loads == 0 and stats.offloads >= 1 and stats.bytes_vram <= budget


def test_vae_out_of_memory_falls_back_to_tiles(tiny_sd1: Path) -> None:
    models = LocalModels()
    model = identifier(models.register(tiny_sd1, name="sd"))
    full = _image(models, model, (), size=128)
    with models.load(model, "vae") as vae:
        tile = vae.tile_latent_min_size
        calls: list[tuple[int, int]] = []

        def small_only(_module: Any, args: Any) -> None:
            calls.append(tuple(args[0].shape[-2:]))
            if max(args[0].shape[-2:]) > tile:
                raise torch.OutOfMemoryError("simulated: CUDA out of memory")

        hook = vae.decoder.register_forward_pre_hook(small_only)
    try:
        tiled = _image(models, model, (), size=128)
    finally:
        hook.remove()
    assert calls[0] == (16, 16) and len(calls) > 2  # the whole latent failed, tiles ran
    # the fallback is the node's own tiled decode; with random weights, per-tile GroupNorm
    # statistics make tiles differ visibly from the whole decode, so that bound is loose
    assert np.abs(tiled - _image(models, model, (), size=128, tiled=True)).max() <= 1
    assert np.abs(tiled - full).mean() < 24
    with models.load(model, "vae") as vae:
        assert not vae.use_tiling  # the node's setting is back


def test_ray_worker_with_a_fraction_of_a_gpu_budgets_that_fraction(
    tmp_path: Path, monkeypatch
) -> None:
    from invoke_nb.executors.ray_worker import GraphWorker
    from invoke_nb.models import cache as cache_mod

    gib = 1024**3
    monkeypatch.setattr(cache_mod, "device_memory", lambda device: (20 * gib, 24 * gib))
    whole = GraphWorker(0, model_dir=str(tmp_path / "a")).models.cache
    quarter = GraphWorker(1, model_dir=str(tmp_path / "b"), gpu_fraction=0.25).models.cache
    whole._device = quarter._device = "cuda"
    assert whole.vram_budget == 20 * gib - whole.working_memory
    assert quarter.vram_budget == 6 * gib - quarter.working_memory
