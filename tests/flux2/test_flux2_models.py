"""FLUX.2 Klein models install through the real model manager and load by part."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import save_file

from invoke_nb.models.cache import ModelCache
from invoke_nb.models.manager import ModelManager
from invoke_nb.models.probe import probe
from invoke_nb.models.records import MemoryModelRecordStore


@pytest.fixture
def manager(tmp_path: Path) -> ModelManager:
    return ModelManager(tmp_path / "models", MemoryModelRecordStore(), ModelCache(device="cpu"))


def test_klein_folder_installs_as_flux2(manager: ModelManager, tiny_flux2: Path) -> None:
    rec = manager.install(tiny_flux2, name="klein")
    assert (rec.type, rec.base, rec.format, rec.variant) == (
        "main",
        "flux2",
        "diffusers",
        "klein_4b",
    )
    with manager.load(rec, "transformer") as t:
        assert type(t).__name__ == "Flux2Transformer2DModel"
        assert t.config.in_channels == 128
    with manager.load(rec, "text_encoder") as te:
        assert te.config.model_type == "qwen3"
    with manager.load(rec, "vae") as vae:
        assert type(vae).__name__ == "AutoencoderKLFlux2"
    with manager.load(rec, "tokenizer") as tok:
        assert "<|im_start|>" in tok.apply_chat_template(
            [{"role": "user", "content": "a"}], tokenize=False, add_generation_prompt=True
        )
    vae_rec = manager.install(tiny_flux2 / "vae", name="klein-vae")
    assert (vae_rec.type, vae_rec.base, vae_rec.format) == ("vae", "flux2", "diffusers")


def test_variant_from_text_width(tmp_path: Path, tiny_flux2: Path) -> None:
    """Klein 9B reads Qwen3-8B states (12288 wide); with a guidance embedding it is the base model."""
    import shutil

    folder = tmp_path / "klein9"
    shutil.copytree(tiny_flux2, folder)
    cfg_file = folder / "transformer" / "config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg_file.write_text(json.dumps({**cfg, "joint_attention_dim": 12288}))
    assert probe(folder).variant == "klein_9b"
    cfg_file.write_text(json.dumps({**cfg, "joint_attention_dim": 12288, "guidance_embeds": True}))
    assert probe(folder).variant == "klein_9b_base"


def test_single_file_headers(tmp_path: Path) -> None:
    """BFL-layout transformers and FLUX.2 VAE checkpoints are told apart from FLUX.1 by shape."""
    import torch

    klein = tmp_path / "klein.safetensors"
    save_file(
        {
            "double_blocks.0.img_attn.qkv.weight": torch.zeros(2, 2),
            "img_in.weight": torch.zeros(4, 128),
            "txt_in.weight": torch.zeros(4, 7680),
        },
        klein,
    )
    found = probe(klein)
    assert (found.type, found.base, found.variant) == ("main", "flux2", "klein_4b")
    flux1 = tmp_path / "flux1.safetensors"
    save_file(
        {
            "double_blocks.0.img_attn.qkv.weight": torch.zeros(2, 2),
            "img_in.weight": torch.zeros(4, 64),
            "txt_in.weight": torch.zeros(4, 4096),
        },
        flux1,
    )
    assert probe(flux1).base != "flux2"  # FLUX.1 (its own probe needs more keys)
    vae = tmp_path / "vae.safetensors"
    save_file(
        {
            "decoder.conv_in.weight": torch.zeros(8, 32, 3, 3),
            "encoder.conv_in.weight": torch.zeros(8, 3, 3, 3),
            "bn.running_mean": torch.zeros(128),
        },
        vae,
    )
    assert (probe(vae).type, probe(vae).base) == ("vae", "flux2")
