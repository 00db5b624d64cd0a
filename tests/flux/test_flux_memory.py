"""FLUX under a device budget smaller than transformer + T5, on the CPU (a CPU cache given a
VRAM budget runs the GPU code paths: placement, offload, partial loading with streamed
weights on ``meta``). The cache must free the encoders from the device before it loads the
transformer partly, and the pixels must not change: same ops on the same weights, so
within 1/255 of the unbudgeted run (they are in practice identical)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flux_support import parts, register

import invoke_nb as inb
from invoke_nb.graph import standard_flux
from invoke_nb.models.cache import ModelCache, object_size
from invoke_nb.models.local import LocalModels, identifier


def _image(models: LocalModels, ids: dict[str, Any], loras: list) -> np.ndarray:
    g = standard_flux.txt2img(
        ids["dev"], "a lighthouse", width=64, height=64, steps=2, seed=8, loras=loras,
        **parts(ids),
    )  # fmt: skip
    r = inb.Runner(services=inb.Services(models=models)).run(g)
    return np.asarray(r.image("l2i")).astype(int)


def _ids(models: LocalModels, paths: dict[str, Path]) -> dict[str, Any]:
    return {
        n: identifier(register(models, paths[n], f"flux-{n}"))
        for n in ("t5", "clip", "vae", "dev", "lora_peft")
    }


@pytest.fixture(scope="module")
def reference(flux_paths: dict[str, Path]) -> dict[str, Any]:
    models = LocalModels()
    ids = _ids(models, flux_paths)
    sizes = {}
    for part in ("transformer", "text_encoder_2"):
        with models.load(ids["dev"], part) as m:
            sizes[part] = object_size(m)
    return {
        "sizes": sizes,
        "plain": _image(models, ids, []),
        "lora": _image(models, ids, [(ids["lora_peft"], 0.9)]),
    }


def test_flux_runs_under_a_budget_below_transformer_plus_t5(reference, flux_paths) -> None:
    sizes = reference["sizes"]
    budget = sizes["transformer"] // 2
    assert sizes["text_encoder_2"] <= budget < sizes["transformer"] + sizes["text_encoder_2"]
    cache = ModelCache(ram_bytes=1 << 40, vram_bytes=budget, device="cpu")
    models = LocalModels(cache=cache)
    ids = _ids(models, flux_paths)
    events: list[tuple[str, str | None, int]] = []

    def listen(kind: str, payload: dict[str, Any]) -> None:
        if kind in ("model_offloaded", "model_partially_loaded"):
            events.append((kind, payload["submodel"], cache.stats().bytes_vram))

    cache.add_listener(listen)
    got = _image(models, ids, [])
    assert np.abs(got - reference["plain"]).max() <= 1
    first_partial = next(
        i for i, e in enumerate(events) if e[:2] == ("model_partially_loaded", "transformer")
    )
    offloaded_before = {sub for kind, sub, _ in events[:first_partial] if kind == "model_offloaded"}
    assert {"text_encoder", "text_encoder_2"} <= offloaded_before, events
    assert events[first_partial][2] <= budget  # only transformer layers on the device then
    stats = cache.stats()
    assert stats.partial_loads >= 1 and stats.offloads >= 2 and stats.bytes_vram <= budget
    # LoRAs patch the streamed weights at their CPU source and are undone afterwards
    lora = _image(models, ids, [(ids["lora_peft"], 0.9)])
    assert np.abs(lora - reference["lora"]).max() <= 1
    assert np.abs(_image(models, ids, []) - reference["plain"]).max() <= 1
