"""Tiny upscalers installed through the real model manager (module-scoped, offline)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import invoke_nb as inb
from invoke_nb.models.local import identifier
from invoke_nb.testing.tiny_upscale import make_esrgan


@pytest.fixture(scope="session")
def upscale_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from safetensors.torch import save_file

    from invoke_nb.models.load_lama import make_lama

    root = tmp_path_factory.mktemp("upscalers")
    save_file(make_lama(), str(root / "tiny-lama.safetensors"))
    return {
        "lama": root / "tiny-lama.safetensors",
        "realesrgan": make_esrgan(root / "RealESRGAN_x4plus.safetensors", layout="realesrgan"),
        "esrgan": make_esrgan(root / "old-esrgan-x2.safetensors", layout="esrgan", scale=2),
    }


@pytest.fixture(scope="module")
def manager(tmp_path_factory: pytest.TempPathFactory, upscale_files: dict[str, Path]) -> Any:
    from invoke_nb.models.manager import ModelManager
    from invoke_nb.models.records import MemoryModelRecordStore

    m = ModelManager(tmp_path_factory.mktemp("models"), MemoryModelRecordStore())
    m.install(upscale_files["realesrgan"], name="RealESRGAN_x4plus", in_place=True)
    m.install(upscale_files["esrgan"], name="esrgan-x2", in_place=True)
    m.install(upscale_files["lama"], name="tiny-lama", in_place=True)
    return m


@pytest.fixture
def run(manager: Any) -> Any:
    return inb.Runner(services=inb.Services(models=manager)).run


@pytest.fixture
def x4(manager: Any) -> Any:
    return identifier(manager.list(name="RealESRGAN_x4plus")[0])


@pytest.fixture
def x2(manager: Any) -> Any:
    return identifier(manager.list(name="esrgan-x2")[0])
