"""Session fixtures for the FLUX tests: the tiny FLUX set, registered by our own probe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flux_support import register

import invoke_nb as inb
from invoke_nb.models.local import LocalModels, identifier
from invoke_nb.testing.tiny_flux import make_flux_set


@pytest.fixture(scope="session")
def flux_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_flux_set(tmp_path_factory.mktemp("tiny-flux"))


@pytest.fixture(scope="session")
def flux_models(flux_paths: dict[str, Path]) -> LocalModels:
    m = LocalModels()
    for name in ("t5", "clip", "vae", "dev", "schnell", "dev_file", "lora_peft", "lora_kohya"):
        register(m, flux_paths[name], f"flux-{name}")
    return m


@pytest.fixture(scope="session")
def flux(flux_models: LocalModels) -> dict[str, Any]:
    """name -> ModelIdentifierField of each tiny FLUX model."""
    return {r.name.removeprefix("flux-"): identifier(r) for r in flux_models.store.list()}


@pytest.fixture
def flux_runner(flux_models: LocalModels) -> inb.Runner:
    return inb.Runner(services=inb.Services(models=flux_models))
