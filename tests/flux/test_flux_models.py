"""Tiny FLUX models: identified without loading, installed and hashed, loaded part by part."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from flux_support import parts

from invoke_nb.graph import standard_flux
from invoke_nb.models.cache import ModelCache
from invoke_nb.models.flux_keys import bfl_to_diffusers, diffusers_to_bfl
from invoke_nb.models.hashing import model_hash
from invoke_nb.models.manager import ModelManager
from invoke_nb.models.probe import probe
from invoke_nb.models.records import MemoryModelRecordStore

EXPECTED = {
    "dev": ("main", "flux", "diffusers", "dev"),
    "schnell": ("main", "flux", "diffusers", "schnell"),
    "dev_file": ("main", "flux", "checkpoint", "dev"),
    "t5": ("t5_encoder", "any", "t5_encoder", None),
    "clip": ("clip_embed", "any", "diffusers", "large"),
    "vae": ("vae", "flux", "diffusers", None),
    "lora_peft": ("lora", "flux", "lycoris", None),
    "lora_kohya": ("lora", "flux", "lycoris", None),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_probe_names_type_base_format_variant(flux_paths, name: str) -> None:
    r = probe(flux_paths[name])
    assert (r.type, r.base, r.format, r.variant) == EXPECTED[name]


def test_schnell_single_file_and_fill_variants_from_shapes() -> None:
    from invoke_nb.models.probe_flux import checkpoint

    base = {"double_blocks.0.img_attn.norm.key_norm.scale": (32,), "img_in.weight": (64, 64)}
    assert checkpoint(base).variant == "schnell"
    dev = {**base, "guidance_in.out_layer.weight": (64, 64)}
    assert checkpoint(dev).variant == "dev"
    fill = {**dev, "img_in.weight": (64, 384)}
    assert checkpoint(fill).variant == "dev_fill"
    prefixed = {"model.diffusion_model." + k: v for k, v in dev.items()}
    assert checkpoint(prefixed).variant == "dev"


def test_bfl_keys_round_trip(flux_paths) -> None:
    from safetensors.torch import load_file

    bfl = load_file(str(flux_paths["dev_file"]))
    assert "double_blocks.0.img_attn.qkv.weight" in bfl and "single_blocks.0.linear1.weight" in bfl
    back = diffusers_to_bfl(bfl_to_diffusers(bfl))
    assert set(back) == set(bfl)
    assert all(torch.equal(back[k], bfl[k]) for k in bfl)


def test_install_hashes_as_invokeai_and_keeps_variant(tmp_path: Path, flux_paths) -> None:
    mgr = ModelManager(tmp_path / "models", MemoryModelRecordStore(), ModelCache(device="cpu"))
    rec = mgr.install(str(flux_paths["dev_file"]), name="dev-file")
    assert (rec.base, rec.type, rec.format, rec.variant) == ("flux", "main", "checkpoint", "dev")
    assert rec.hash == model_hash(flux_paths["dev_file"]) and rec.hash.startswith("blake3:")
    t5 = mgr.install(str(flux_paths["t5"]), name="t5")
    assert (t5.type, t5.format) == ("t5_encoder", "t5_encoder")
    with mgr.load(rec, "transformer") as model:
        assert type(model).__name__ == "FluxTransformer2DModel" and model.config.guidance_embeds
    with mgr.load(t5, "text_encoder_2") as enc:
        assert type(enc).__name__ == "T5EncoderModel"


def test_transformer_t5_clip_are_separate_cache_entries(flux_runner, flux_models, flux) -> None:
    common = dict(width=32, height=32, steps=1, seed=1, **parts(flux))
    flux_runner.run(standard_flux.txt2img(flux["schnell"], "a cat", **common))
    entries = flux_models.cache.keys()  # (record key, submodel) pairs
    keys = {k[1] for k in entries}
    assert {"transformer", "text_encoder_2", "text_encoder"} <= keys
    loads = flux_models.loads
    # a new prompt re-encodes with the cached encoders and reuses the cached transformer
    r = flux_runner.run(standard_flux.txt2img(flux["schnell"], "a dog", **common))
    assert flux_models.loads == loads
    assert "flux_text_encoder" in r.executed
    # a new seed runs no encoder
    r = flux_runner.run(standard_flux.txt2img(flux["schnell"], "a dog", **{**common, "seed": 2}))
    assert "flux_text_encoder" not in r.executed and "flux_denoise" in r.executed


def test_model_loader_reports_t5_length_by_variant(flux_runner, flux) -> None:
    from invoke_nb.graph.model import Graph

    for variant, length in (("dev", 512), ("schnell", 256)):
        g = Graph()
        g.add("flux_model_loader", id="l", model=flux[variant], t5_encoder_model=flux["t5"],
              clip_embed_model=flux["clip"], vae_model=flux["vae"])  # fmt: skip
        out = flux_runner.run(g).outputs["l"]
        assert out.max_seq_len == length
        assert out.t5_encoder.text_encoder.submodel_type == "text_encoder_2"
        assert json.loads(out.transformer.model_dump_json())["transformer"]["submodel_type"] == (
            "transformer"
        )


def test_bfl_vae_file_loads_like_the_folder(tmp_path: Path, flux_paths) -> None:
    from diffusers import AutoencoderKL
    from safetensors.torch import load_file, save_file

    from invoke_nb.models.load_flux import load_flux_part
    from invoke_nb.models.records import ModelRecord
    from invoke_nb.testing.ldm_keys import vae_to_ldm

    folder = flux_paths["vae"]
    cfg = json.loads((folder / "config.json").read_text())
    ae = tmp_path / "ae.safetensors"  # BFL's layout: LDM names, no prefix
    save_file(vae_to_ldm(load_file(str(folder / "diffusion_pytorch_model.safetensors")), cfg,
                         prefix=""), str(ae))  # fmt: skip
    found = probe(ae)
    assert (found.type, found.base, found.format) == ("vae", "flux", "checkpoint")
    rec = ModelRecord(key="k", hash="h", path=str(ae), name="ae", base="flux", type="vae",
                      format="checkpoint")  # fmt: skip
    ours = load_flux_part(rec, None, torch.float32)
    ref = AutoencoderKL.from_pretrained(folder)
    z = torch.randn(1, 16, 4, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(ours.decode(z).sample, ref.decode(z).sample, atol=1e-5)


@pytest.mark.parametrize(
    "key",
    [
        "transformer.transformer_blocks.0.attn.to_q.lora_A.weight",
        "lora_transformer_transformer_blocks_0_attn_to_q.lora_down.weight",
        "lora_unet_single_blocks_0_linear1.lora_down.weight",
        "diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight",
    ],
)
def test_flux_lora_layouts_are_identified(key: str) -> None:
    from invoke_nb.models.probe import probe_state_dict

    found = probe_state_dict({key: (4, 64)}, "x.safetensors")
    assert (found.type, found.base) == ("lora", "flux")
