"""Session fixtures for the SD3 tests: tiny SD3 models installed through the real manager."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import invoke_nb as inb
from invoke_nb.models.cache import ModelCache
from invoke_nb.models.local import identifier
from invoke_nb.models.manager import ModelManager
from invoke_nb.models.records import MemoryModelRecordStore


@pytest.fixture(scope="session")
def tiny_sd3(tiny_models_dir: Path) -> Path:
    """SD3.5 Medium-shaped diffusers folder with CLIP-L, CLIP-G and T5."""
    from invoke_nb.testing.tiny_sd3 import make_sd3

    return make_sd3(tiny_models_dir / "tiny-sd3-medium", layout="medium")


@pytest.fixture(scope="session")
def tiny_sd3_no_t5(tiny_models_dir: Path) -> Path:
    """SD3.5 Large-shaped diffusers folder without T5 (text_encoder_3 left out)."""
    from invoke_nb.testing.tiny_sd3 import make_sd3

    return make_sd3(tiny_models_dir / "tiny-sd3-large-no-t5", layout="large", seed=1, t5=False)


@pytest.fixture(scope="session")
def tiny_sd3_file(tiny_models_dir: Path, tiny_sd3: Path) -> Path:
    """``tiny_sd3``'s weights as one SD3.5-layout single file (encoders included)."""
    from invoke_nb.testing.tiny_sd3 import make_sd3_single_file

    return make_sd3_single_file(tiny_models_dir / "tiny-sd3-medium.safetensors", folder=tiny_sd3)


@pytest.fixture(scope="session")
def sd3_manager(
    tmp_path_factory: pytest.TempPathFactory, tiny_sd3: Path, tiny_sd3_no_t5: Path, tiny_sd1: Path
) -> ModelManager:
    """A model manager with the tiny SD3 models (and an SD1 model) installed in place."""
    root = tmp_path_factory.mktemp("sd3-models")
    m = ModelManager(root, MemoryModelRecordStore(), ModelCache(ram_bytes=1 << 34, device="cpu"))
    m.install(tiny_sd3, name="tiny-sd3", in_place=True)
    m.install(tiny_sd3_no_t5, name="tiny-sd3-no-t5", in_place=True)
    m.install(tiny_sd1, name="tiny-sd1", in_place=True)
    return m


@pytest.fixture(scope="session")
def sd3(sd3_manager: ModelManager) -> Any:
    return identifier(sd3_manager.get("tiny-sd3"))


@pytest.fixture
def sd3_runner(sd3_manager: ModelManager) -> inb.Runner:
    """A fresh runner (empty output cache) on the shared manager."""
    return inb.Runner(services=inb.Services(models=sd3_manager))
