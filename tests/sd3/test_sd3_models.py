"""Tiny SD3 models: built offline, identified as InvokeAI names them, loaded part by part."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from invoke_nb.models.cache import ModelCache
from invoke_nb.models.manager import ModelManager
from invoke_nb.models.probe import probe
from invoke_nb.models.records import MemoryModelRecordStore


def test_diffusers_folder_installs_as_sd3(sd3_manager: ModelManager) -> None:
    rec = sd3_manager.get("tiny-sd3")
    assert (rec.base, rec.type, rec.format, rec.variant) == ("sd-3", "main", "diffusers", None)
    assert rec.hash.startswith("blake3:") and len(rec.hash) == len("blake3:") + 64
    assert "text_encoder_3" in rec.extra["submodels"]
    assert rec.extra["layout"] == "medium"
    no_t5 = sd3_manager.get("tiny-sd3-no-t5")
    assert no_t5.base == "sd-3" and "text_encoder_3" not in no_t5.extra["submodels"]
    assert no_t5.extra["layout"] == "large"


def test_single_file_is_identified_and_loads_the_same_weights(
    tmp_path: Path, tiny_sd3: Path, tiny_sd3_file: Path
) -> None:
    found = probe(tiny_sd3_file)
    assert (found.base, found.type, found.format) == ("sd-3", "main", "checkpoint")
    assert found.extra["encoders"] == ["clip_l", "clip_g", "t5xxl"]
    manager = ModelManager(tmp_path, MemoryModelRecordStore(), ModelCache(ram_bytes=1 << 32))
    rec = manager.install(tiny_sd3_file, name="sd3-file", in_place=True, config=tiny_sd3)
    folder = manager.install(tiny_sd3, name="sd3-folder", in_place=True)
    for part in ("transformer", "text_encoder_2", "text_encoder_3", "vae"):
        with manager.load(rec, part) as a, manager.load(folder, part) as b:
            sa, sb = a.state_dict(), b.state_dict()
            assert set(sa) >= {k for k in sb if "position_ids" not in k}, part
            assert all(torch.equal(sa[k], sb[k]) for k in sb if k in sa), part
    # each part is its own cache entry
    cached = manager.cache.keys()
    keys = {k for k in cached if k[0] == rec.key}
    assert {k[1] for k in keys} == {"transformer", "text_encoder_2", "text_encoder_3", "vae"}


def test_bare_transformer_folder_is_sd3(tiny_sd3: Path) -> None:
    found = probe(tiny_sd3 / "transformer")
    assert (found.base, found.type, found.format) == ("sd-3", "main", "diffusers")
    cfg = json.loads((tiny_sd3 / "transformer" / "config.json").read_text())
    assert cfg["in_channels"] == 16 and cfg["dual_attention_layers"] == [0]


def test_missing_part_is_named(sd3_manager: ModelManager) -> None:
    from invoke_nb.models.errors import MissingComponentError

    rec = sd3_manager.get("tiny-sd3-no-t5")
    with (
        pytest.raises(MissingComponentError, match="text_encoder_3"),
        sd3_manager.load(rec, "text_encoder_3"),
    ):
        pass
    assert (rec.key, "text_encoder_3") not in sd3_manager.cache
