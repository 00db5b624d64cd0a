"""FLUX.2 fixtures: one tiny Klein folder per session, registered in a local model provider."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import invoke_nb as inb
from invoke_nb.models.local import LocalModels, identifier
from invoke_nb.testing.tiny_flux2 import build_tiny_flux2


@pytest.fixture(scope="session")
def tiny_flux2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_flux2(tmp_path_factory.mktemp("flux2") / "tiny-klein")


@pytest.fixture(scope="session")
def flux2_models(tiny_flux2: Path, tiny_sd1: Path) -> LocalModels:
    m = LocalModels()
    m.register(tiny_flux2, name="tiny-klein", base="flux2", type="main")
    m.register(tiny_flux2 / "vae", name="tiny-klein-vae", base="flux2", type="vae")
    m.register(tiny_sd1, name="tiny-sd1")
    return m


@pytest.fixture(scope="session")
def klein(flux2_models: LocalModels) -> Any:
    return identifier(flux2_models.store.list(name="tiny-klein")[0])


@pytest.fixture(scope="session")
def sd1_model(flux2_models: LocalModels) -> Any:
    return identifier(flux2_models.store.list(name="tiny-sd1")[0])


@pytest.fixture
def runner(flux2_models: LocalModels) -> inb.Runner:
    return inb.Runner(services=inb.Services(models=flux2_models))


@pytest.fixture(scope="session")
def klein_pipe(tiny_flux2: Path) -> Any:
    from diffusers import Flux2KleinPipeline

    pipe = Flux2KleinPipeline.from_pretrained(tiny_flux2)
    pipe.set_progress_bar_config(disable=True)
    return pipe
