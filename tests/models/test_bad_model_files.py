"""Damaged and pickled model files get a named error and leave nothing installed."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch

from invoke_nb.models.cache import ModelCache
from invoke_nb.models.errors import CorruptModelError, UnsafeModelError
from invoke_nb.models.manager import ModelManager
from invoke_nb.models.records import MemoryModelRecordStore


@pytest.fixture
def manager(tmp_path: Path) -> ModelManager:
    return ModelManager(
        tmp_path / "models", MemoryModelRecordStore(), ModelCache(ram_bytes=1 << 28, device="cpu")
    )


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_empty_and_truncated_checkpoints(manager: ModelManager, tmp_path: Path) -> None:
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    with pytest.raises(CorruptModelError, match=r"empty\.ckpt: the file is empty"):
        manager.install(empty, allow_unsafe=True)
    full = tmp_path / "full.ckpt"
    torch.save({"emb_params": torch.zeros(2, 768)}, full)
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(CorruptModelError, match=r"cut\.ckpt: not a readable checkpoint"):
        manager.install(cut, allow_unsafe=True)
    assert manager.list() == [] and not any(manager.models_dir.rglob("*.ckpt"))


def _vae_folder(folder: Path, weights: object) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(
        json.dumps(
            {"_class_name": "AutoencoderKL", "latent_channels": 4, "scaling_factor": 0.18215}
        )
    )
    (folder / "diffusion_pytorch_model.bin").write_bytes(pickle.dumps(weights))
    return folder


def test_pickles_in_a_folder_follow_the_single_file_rule(
    manager: ModelManager, tmp_path: Path
) -> None:
    evil = _vae_folder(tmp_path / "evil-vae", {"state_dict": Evil()})
    with pytest.raises(
        UnsafeModelError, match=r"diffusion_pytorch_model\.bin in evil-vae/ is a pickle"
    ):
        manager.install(evil)
    with pytest.raises(UnsafeModelError, match=r"dangerous.*system"):
        manager.install(evil, allow_unsafe=True)
    assert manager.list() == [] and not any(manager.models_dir.rglob("*.bin"))
    plain = _vae_folder(tmp_path / "plain-vae", {"decoder.conv_in.bias": [0.0] * 4})
    with pytest.raises(UnsafeModelError, match="allow_unsafe=True"):
        manager.install(plain)
    rec = manager.install(plain, allow_unsafe=True)  # opted in and the scan found nothing
    assert rec.type == "vae"
