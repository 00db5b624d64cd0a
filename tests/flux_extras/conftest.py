"""Session fixtures for FLUX.1's extras: tiny FLUX encoders/VAE and the extra models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import invoke_nb as inb
from invoke_nb.models.local import LocalModels, identifier
from invoke_nb.models.probe import probe
from invoke_nb.models.records import ModelRecord
from invoke_nb.testing import tiny_flux
from invoke_nb.testing.tiny_flux_extras import (
    SIGLIP_NAME,
    make_flux_controlnet,
    make_flux_controlnet_file,
    make_flux_controlnet_xlabs,
    make_flux_fill,
    make_flux_redux,
    make_siglip,
)


@pytest.fixture(scope="session")
def extras_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("flux-extras")
    t5 = tiny_flux.make_flux_t5(root / "t5")
    clip = tiny_flux.make_flux_clip(root / "clip")
    vae = tiny_flux.make_flux_vae(root / "vae")
    fill = make_flux_fill(root / "fill", t5=t5, clip=clip, vae=vae)
    dev = tiny_flux.make_flux(root / "dev", "dev", t5=t5, clip=clip, vae=vae)
    controlnet = make_flux_controlnet(root / "controlnet")
    return {
        "t5": t5,
        "clip": clip,
        "vae": vae,
        "fill": fill,
        "dev": dev,
        "controlnet": controlnet,
        "controlnet_file": make_flux_controlnet_file(root / "instantx.safetensors", controlnet),
        **dict(
            zip(
                ("xlabs", "xlabs_diffusers"),
                make_flux_controlnet_xlabs(root / "xlabs"),
                strict=True,
            )
        ),
        "siglip": make_siglip(root / "siglip"),
        "redux": make_flux_redux(root / "redux.safetensors"),
    }


@pytest.fixture(scope="session")
def extras_models(extras_paths: dict[str, Path]) -> LocalModels:
    m = LocalModels()
    for name, path in extras_paths.items():
        found = probe(path)
        assert found.type != "unknown", found.unknown_reason
        m.store.add(
            ModelRecord(
                key=f"key-{name}",
                hash=f"local:{name}",
                path=str(path),
                name=SIGLIP_NAME if name == "siglip" else f"flux-{name}",
                base=found.base,
                type=found.type,
                format=found.format,
                variant=found.variant,
                source=str(path),
                owned=False,
            )
        )
    return m


@pytest.fixture(scope="session")
def extras(extras_models: LocalModels) -> dict[str, Any]:
    """name -> ModelIdentifierField of each tiny model."""
    return {r.name.removeprefix("flux-"): identifier(r) for r in extras_models.store.list()}


@pytest.fixture
def extras_runner(extras_models: LocalModels) -> inb.Runner:
    return inb.Runner(services=inb.Services(models=extras_models))


@pytest.fixture
def budgeted_runner(extras_models: LocalModels) -> inb.Runner:
    """A runner whose cache (on the CPU) has a device budget half the tiny transformer's:
    the transformer is loaded partly, its other layers streaming from RAM through ``meta``
    (the GPU code paths), with every model registered in ``extras_models``."""
    from invoke_nb.models.cache import ModelCache, object_size

    dev = next(r for r in extras_models.store.list() if r.name == "flux-dev")
    with extras_models.load(identifier(dev), "transformer") as model:
        budget = object_size(model) // 2
    m = LocalModels(cache=ModelCache(ram_bytes=1 << 40, vram_bytes=budget, device="cpu"))
    for rec in extras_models.store.list():
        m.store.add(rec)
    return inb.Runner(services=inb.Services(models=m))
