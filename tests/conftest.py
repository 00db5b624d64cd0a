"""Session-wide fixtures shared by every test folder: tiny random-weight models, built once.

Each fixture returns a path inside one session temp folder; building all of them takes a
few seconds on CPU. Torch is limited to one thread (the test machines are shared).
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _torch_one_thread() -> None:
    try:
        import torch
    except ImportError:  # torch-free test subsets
        return
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session folder holding every tiny model."""
    return tmp_path_factory.mktemp("tiny-models")


@pytest.fixture(scope="session")
def tiny_sd1(tiny_models_dir: Path) -> Path:
    """A tiny SD1 diffusers folder (UNet cross-attention 768, 768-wide CLIP, 4-block VAE)."""
    from invoke_nb.testing.tiny_models import make_sd1

    return make_sd1(tiny_models_dir / "tiny-sd1")


@pytest.fixture(scope="session")
def tiny_sd1_file(tiny_models_dir: Path, tiny_sd1: Path) -> Path:
    """The same weights as ``tiny_sd1`` as one LDM-layout .safetensors (config: ``tiny_sd1``)."""
    from invoke_nb.testing.tiny_models import make_sd1_single_file

    return make_sd1_single_file(tiny_models_dir / "tiny-sd1.safetensors", folder=tiny_sd1)


@pytest.fixture(scope="session")
def tiny_sdxl(tiny_models_dir: Path) -> Path:
    """A tiny SDXL diffusers folder (cross-attention 2048, two text encoders, text_time)."""
    from invoke_nb.testing.tiny_models import make_sdxl

    return make_sdxl(tiny_models_dir / "tiny-sdxl")


@pytest.fixture(scope="session")
def tiny_lora_sd1(tiny_models_dir: Path) -> Path:
    """A PEFT-format LoRA for ``tiny_sd1`` (UNet attention + text encoder)."""
    from invoke_nb.testing.tiny_models import make_lora

    return make_lora(tiny_models_dir / "tiny-lora-sd1.safetensors", base="sd-1", format="peft")


@pytest.fixture(scope="session")
def tiny_lora_sd1_kohya(tiny_models_dir: Path) -> Path:
    """A kohya-format LoRA for ``tiny_sd1``."""
    from invoke_nb.testing.tiny_models import make_lora

    return make_lora(
        tiny_models_dir / "tiny-lora-sd1-kohya.safetensors", base="sd-1", format="kohya"
    )


@pytest.fixture(scope="session")
def tiny_lora_sdxl(tiny_models_dir: Path) -> Path:
    """A kohya-format LoRA for ``tiny_sdxl`` (UNet + both text encoders)."""
    from invoke_nb.testing.tiny_models import make_lora

    return make_lora(tiny_models_dir / "tiny-lora-sdxl.safetensors", base="sdxl", format="kohya")


@pytest.fixture(scope="session")
def tiny_vae(tiny_models_dir: Path) -> Path:
    """A standalone tiny VAE diffusers folder."""
    from invoke_nb.testing.tiny_models import make_vae

    return make_vae(tiny_models_dir / "tiny-vae")


@pytest.fixture(scope="session")
def tiny_sd1_inpaint(tiny_models_dir: Path) -> Path:
    """A tiny SD1 inpainting model (UNet with 9 input channels)."""
    from invoke_nb.testing.tiny_models import make_sd1

    return make_sd1(tiny_models_dir / "tiny-sd1-inpaint", seed=3, inpaint=True)


@pytest.fixture(scope="session")
def tiny_sdxl_refiner(tiny_models_dir: Path) -> Path:
    """A tiny SDXL refiner (cross-attention 1280, text encoder 2 only, aesthetic time ids)."""
    from invoke_nb.testing.tiny_models import make_sdxl_refiner

    return make_sdxl_refiner(tiny_models_dir / "tiny-sdxl-refiner")


@pytest.fixture(autouse=True)
def _fresh_default_output_cache() -> None:
    """Each test starts with an empty output cache on `inb.run`'s default runner, so what a
    test sees as executed or cached does not depend on the tests before it."""
    from invoke_nb.graph import default_runner

    default_runner().cache.clear()
