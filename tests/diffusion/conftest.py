"""Fixtures for the diffusion tests: a model provider with the tiny models registered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import invoke_nb as inb
from invoke_nb.models.local import LocalModels
from invoke_nb.nodes.types import identifier


@pytest.fixture(scope="session")
def models(
    tiny_sd1: Path,
    tiny_sdxl: Path,
    tiny_lora_sd1: Path,
    tiny_lora_sd1_kohya: Path,
    tiny_lora_sdxl: Path,
) -> LocalModels:
    m = LocalModels()
    m.register(tiny_sd1, name="tiny-sd1")
    m.register(tiny_sdxl, name="tiny-sdxl")
    m.register(tiny_lora_sd1, name="tiny-lora")
    m.register(tiny_lora_sd1_kohya, name="tiny-lora-kohya")
    m.register(tiny_lora_sdxl, name="tiny-lora-sdxl")
    return m


def ident(models: LocalModels, name: str) -> Any:
    return identifier(models.store.list(name=name)[0])


@pytest.fixture(scope="session")
def sd1(models: LocalModels) -> Any:
    return ident(models, "tiny-sd1")


@pytest.fixture(scope="session")
def sdxl(models: LocalModels) -> Any:
    return ident(models, "tiny-sdxl")


@pytest.fixture
def runner(models: LocalModels) -> inb.Runner:
    """A fresh runner (empty output cache) on the shared, already-loaded models."""
    return inb.Runner(services=inb.Services(models=models))
