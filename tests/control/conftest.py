"""Tiny control models (real file layouts, random weights) registered beside the tiny SD
models, built once per session."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import invoke_nb as inb
from invoke_nb.models.local import LocalModels, identifier
from invoke_nb.testing import tiny_control as tc


@pytest.fixture(scope="session")
def control_dir(tiny_models_dir: Path) -> Path:
    d = tiny_models_dir / "control"
    d.mkdir(exist_ok=True)
    return d


@pytest.fixture(scope="session")
def tiny_sdxl_xl_blocks(control_dir: Path, tiny_sdxl: Path) -> Path:
    """The tiny SDXL with SDXL's down-block layout (for the SDXL T2I-Adapter)."""
    dest = control_dir / "tiny-sdxl-xl-blocks"
    shutil.copytree(tiny_sdxl, dest)
    return tc.make_sdxl_adapter_unet(dest)


@pytest.fixture(scope="session")
def cmodels(
    control_dir: Path, tiny_sd1: Path, tiny_sdxl: Path, tiny_sdxl_xl_blocks: Path
) -> LocalModels:
    d = control_dir
    m = LocalModels()
    m.register(tiny_sd1, name="tiny-sd1")
    m.register(tiny_sdxl, name="tiny-sdxl")
    m.register(tiny_sdxl_xl_blocks, name="tiny-sdxl-xl-blocks")
    m.register(tc.make_controlnet(d / "cn-sd1-a", tiny_sd1, seed=21), name="cn-sd1-a")
    m.register(tc.make_controlnet(d / "cn-sd1-b", tiny_sd1, seed=22), name="cn-sd1-b")
    m.register(tc.make_controlnet(d / "cn-sdxl", tiny_sdxl, seed=23), name="cn-sdxl")
    m.register(tc.make_t2i_adapter(d / "t2i-sd1", "sd-1"), name="t2i-sd1")
    m.register(tc.make_t2i_adapter(d / "t2i-sdxl", "sdxl"), name="t2i-sdxl")
    m.register(tc.make_clip_vision(d / "ip_adapter_sd_image_encoder"))
    for variant in ("plain", "plus", "full"):
        m.register(
            tc.make_ip_adapter(d / f"ip-sd1-{variant}", tiny_sd1, variant),
            name=f"ip-sd1-{variant}",
        )
    m.register(tc.make_ip_adapter(d / "ip-sdxl-plus", tiny_sdxl, "plus"), name="ip-sdxl-plus")
    m.register(
        tc.make_ip_adapter(d / "ip-sd1-no-encoder", tiny_sd1, encoder="someone/missing_encoder"),
        name="ip-sd1-no-encoder",
    )
    return m


def cident(models: LocalModels, name: str) -> Any:
    return identifier(models.store.list(name=name)[0])


@pytest.fixture
def crunner(cmodels: LocalModels) -> inb.Runner:
    return inb.Runner(services=inb.Services(models=cmodels))


@pytest.fixture(scope="session")
def control_image() -> Image.Image:
    """A 64 px edge-map-like picture: white strokes on black."""
    arr = np.zeros((64, 64, 3), np.uint8)
    arr[10:54, 20:24] = 255
    arr[30:34, 8:56] = 255
    arr[12:20, 40:60] = 200
    return Image.fromarray(arr)


@pytest.fixture(scope="session")
def reference_image() -> Image.Image:
    rng = np.random.default_rng(4)
    return Image.fromarray(rng.integers(0, 255, (96, 80, 3), dtype=np.uint8))
