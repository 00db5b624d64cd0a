"""Opt-in UNet speed-ups: channels_last and torch.compile (off by default), and seamless
tiling that a compiled UNet runs without swapped functions.

Pixels must match the plain run within 1/255 (the same operations in another memory
layout, or traced by dynamo with the eager backend, which is cheap on the CPU).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import invoke_nb as inb
from invoke_nb.graph.standard import OUTPUT, txt2img
from invoke_nb.models.cache import ModelCache
from invoke_nb.models.local import LocalModels
from invoke_nb.nodes.types import identifier


def _image(models: LocalModels, model, seamless=()) -> np.ndarray:
    g = txt2img(model, "tiles", width=64, height=64, steps=2, seed=7, seamless=seamless)
    return np.asarray(inb.Runner(services=inb.Services(models=models)).run(g).image(OUTPUT)).astype(
        int
    )


def _provider(folder: Path, **options) -> tuple[LocalModels, object]:
    models = LocalModels(cache=ModelCache(ram_bytes=1 << 40, **options))
    return models, identifier(models.register(folder, name="m"))


@pytest.fixture(scope="module")
def plain(tiny_sd1: Path) -> dict[str, np.ndarray]:
    models, model = _provider(tiny_sd1)
    with models.load(model, "unet") as unet:
        assert unet.conv_in.weight.is_contiguous()  # off by default
        assert getattr(unet, "_compiled_call_impl", None) is None
    return {"plain": _image(models, model), "seamless": _image(models, model, ("x", "y"))}


def test_channels_last_takes_effect_and_keeps_pixels(plain, tiny_sd1: Path) -> None:
    models, model = _provider(tiny_sd1, channels_last=True)
    with models.load(model, "unet") as unet:
        w = unet.conv_in.weight
        assert w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
    assert np.abs(_image(models, model) - plain["plain"]).max() <= 1
    assert np.abs(_image(models, model, ("x", "y")) - plain["seamless"]).max() <= 1


def test_compiled_unet_runs_seamless_and_plain(plain, tiny_sd1: Path) -> None:
    torch._dynamo.reset()
    models, model = _provider(tiny_sd1, compile={"backend": "eager", "fullgraph": False})
    with models.load(model, "unet") as unet:
        assert unet._compiled_call_impl is not None
    assert np.abs(_image(models, model, ("x", "y")) - plain["seamless"]).max() <= 1
    with models.load(model, "unet") as unet:  # the wrap setting is undone after the block
        flags = {m._invoke_nb_wrap for m in unet.modules() if hasattr(m, "_invoke_nb_wrap")}
    assert flags == {(False, False)}
    torch._dynamo.reset()
