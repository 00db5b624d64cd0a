"""A tiny CogView4 folder (built once per session) and a model provider holding it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import invoke_nb as inb
from invoke_nb.models.local import LocalModels, identifier


@pytest.fixture(scope="session")
def tiny_cogview4(tiny_models_dir: Path) -> Path:
    from invoke_nb.testing.tiny_cogview4 import make_cogview4

    return make_cogview4(tiny_models_dir / "tiny-cogview4")


@pytest.fixture(scope="session")
def cv4_models(tiny_cogview4: Path, tiny_sd1: Path) -> LocalModels:
    m = LocalModels()
    m.register(tiny_cogview4, name="tiny-cogview4", base="cogview4")
    m.register(tiny_sd1, name="tiny-sd1")
    return m


@pytest.fixture(scope="session")
def cv4(cv4_models: LocalModels) -> Any:
    return identifier(cv4_models.store.list(name="tiny-cogview4")[0])


@pytest.fixture
def runner(cv4_models: LocalModels) -> inb.Runner:
    return inb.Runner(services=inb.Services(models=cv4_models))
