"""Session fixtures for the FLUX tests: the tiny FLUX set, registered by our own probe."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

import invoke_nb as inb
from invoke_nb.models.local import LocalModels, identifier
from invoke_nb.models.probe import probe
from invoke_nb.models.records import ModelRecord
from invoke_nb.testing.tiny_flux import make_flux_set


@pytest.fixture(scope="session")
def flux_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_flux_set(tmp_path_factory.mktemp("tiny-flux"))


def register(models: LocalModels, path: Path, name: str) -> ModelRecord:
    """Add ``path`` as the probe identifies it (type, base, format, variant)."""
    found = probe(path)
    assert found.type != "unknown", found.unknown_reason
    rec = ModelRecord(
        key=uuid.uuid4().hex,
        hash="local:" + uuid.uuid4().hex,
        path=str(path),
        name=name,
        base=found.base,
        type=found.type,
        format=found.format,
        variant=found.variant,
        source=str(path),
        owned=False,
    )
    return models.store.add(rec)


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


def parts(flux: dict[str, Any]) -> dict[str, Any]:
    """The encoder/VAE keywords of the standard FLUX graphs."""
    return {"t5_encoder": flux["t5"], "clip_embed": flux["clip"], "vae": flux["vae"]}
