"""Tiny Z-Image models (built once per session) and a model provider holding them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import invoke_nb as inb
from invoke_nb.models.local import LocalModels, identifier


@pytest.fixture(scope="session")
def tiny_z_image(tiny_models_dir: Path) -> Path:
    from invoke_nb.testing.tiny_z_image import make_z_image

    return make_z_image(tiny_models_dir / "tiny-z-image")


@pytest.fixture(scope="session")
def tiny_z_image_lora(tiny_models_dir: Path, tiny_z_image: Path) -> Path:
    from invoke_nb.testing.tiny_z_image import make_z_image_lora

    return make_z_image_lora(tiny_models_dir / "tiny-z-image-lora.safetensors", tiny_z_image)


@pytest.fixture(scope="session")
def zi_models(tiny_z_image: Path, tiny_z_image_lora: Path) -> LocalModels:
    m = LocalModels()
    m.register(tiny_z_image, name="tiny-z-image", base="z-image")
    m.register(tiny_z_image_lora, name="tiny-z-lora", base="z-image", type="lora")
    return m


@pytest.fixture(scope="session")
def zi(zi_models: LocalModels) -> Any:
    return identifier(zi_models.store.list(name="tiny-z-image")[0])


@pytest.fixture(scope="session")
def zi_lora(zi_models: LocalModels) -> Any:
    return identifier(zi_models.store.list(name="tiny-z-lora")[0])


@pytest.fixture
def runner(zi_models: LocalModels) -> inb.Runner:
    return inb.Runner(services=inb.Services(models=zi_models))


@pytest.fixture(scope="session")
def tiny_z_control(tiny_models_dir: Path) -> Path:
    from invoke_nb.testing.tiny_z_image import make_z_image_control

    return make_z_image_control(tiny_models_dir / "tiny-z-image-control")
