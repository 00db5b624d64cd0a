"""Model loading from diffusers folders and single files, and its error messages."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import invoke_nb as inb
from invoke_nb.graph.standard import OUTPUT, txt2img
from invoke_nb.models.errors import MissingComponentError, UnsafeModelError
from invoke_nb.models.loaders import ModelLoadError, load_submodel
from invoke_nb.models.local import LocalModels
from invoke_nb.models.records import ModelRecord
from invoke_nb.nodes.types import identifier


def _record(path: Path, **kw) -> ModelRecord:
    base = dict(
        key="k1", hash="h", path=str(path), name="m", base="sd-1", type="main", format="diffusers"
    )
    return ModelRecord(**{**base, **kw})


def test_folder_parts_have_the_real_shapes(tiny_sd1: Path) -> None:
    rec = _record(tiny_sd1)
    unet = load_submodel(rec, "unet")
    te = load_submodel(rec, "text_encoder")
    vae = load_submodel(rec, "vae")
    tok = load_submodel(rec, "tokenizer")
    sched = load_submodel(rec, "scheduler")
    assert unet.config.cross_attention_dim == 768 and te.config.hidden_size == 768
    assert 2 ** (len(vae.config.block_out_channels) - 1) == 8
    assert tok("a cat").input_ids[0] == tok.bos_token_id
    assert sched["_class_name"] == "PNDMScheduler"
    assert all(not p.is_inference() for p in unet.parameters())


def test_sdxl_folder_parts(tiny_sdxl: Path) -> None:
    rec = _record(tiny_sdxl, base="sdxl")
    te2 = load_submodel(rec, "text_encoder_2")
    assert type(te2).__name__ == "CLIPTextModelWithProjection" and te2.config.hidden_size == 1280
    assert load_submodel(rec, "unet").config.addition_embed_type == "text_time"


def test_single_file_loads_the_same_weights_as_the_folder(
    tiny_sd1: Path, tiny_sd1_file: Path
) -> None:
    folder = _record(tiny_sd1)
    single = _record(tiny_sd1_file, format="checkpoint", config_path=str(tiny_sd1))
    for part in ("unet", "vae", "text_encoder"):
        a = load_submodel(folder, part).state_dict()
        b = load_submodel(single, part).state_dict()
        assert a.keys() == b.keys(), part
        assert all(torch.equal(a[k], b[k]) for k in a), part


def test_single_file_model_generates_the_folder_image(tiny_sd1: Path, tiny_sd1_file: Path) -> None:
    models = LocalModels()
    folder = identifier(models.register(tiny_sd1, name="folder"))
    single = identifier(models.register(tiny_sd1_file, name="single", config_path=tiny_sd1))
    run = inb.Runner(services=inb.Services(models=models)).run
    a = np.asarray(run(txt2img(folder, "a cat", width=64, height=64, steps=2)).image(OUTPUT))
    b = np.asarray(run(txt2img(single, "a cat", width=64, height=64, steps=2)).image(OUTPUT))
    assert np.array_equal(a, b)


def test_missing_component_is_named(tiny_sd1: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_sd1, broken)
    shutil.rmtree(broken / "vae")
    with pytest.raises(MissingComponentError, match=r"missing component 'vae'") as info:
        load_submodel(_record(broken), "vae")
    assert str(broken) in str(info.value)


def test_corrupt_weights_name_the_file(tiny_sd1: Path, tmp_path: Path) -> None:
    broken = tmp_path / "corrupt"
    shutil.copytree(tiny_sd1, broken)
    (broken / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelLoadError, match="cannot load unet") as info:
        load_submodel(_record(broken), "unet")
    assert "corrupt" in str(info.value)


def test_checkpoint_without_config_is_refused(tiny_sd1_file: Path) -> None:
    with pytest.raises(ModelLoadError, match="config_path"):
        load_submodel(_record(tiny_sd1_file, format="checkpoint"), "unet")


def test_lora_and_pickle_files(tiny_lora_sd1: Path, tmp_path: Path) -> None:
    sd = load_submodel(_record(tiny_lora_sd1, type="lora", format="lycoris"), None)
    assert any(k.endswith("lora_A.weight") for k in sd)
    pickle = tmp_path / "x.ckpt"
    pickle.write_bytes(b"\x80\x04")
    with pytest.raises(UnsafeModelError, match="pickle files are refused"):
        load_submodel(_record(pickle, type="lora", format="lycoris"), None)


def test_unknown_submodel_and_missing_path(tiny_sd1: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="unknown submodel 'unet_3'"):
        load_submodel(_record(tiny_sd1), "unet_3")
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_submodel(_record(tmp_path / "nowhere"), "unet")


def test_local_provider_probes_bases_and_caches(
    tiny_sd1: Path, tiny_sdxl: Path, tiny_lora_sdxl: Path
) -> None:
    models = LocalModels()
    assert models.register(tiny_sd1).base == "sd-1"
    sdxl = models.register(tiny_sdxl)
    assert sdxl.base == "sdxl"
    lora = models.register(tiny_lora_sdxl)
    assert (lora.type, lora.base) == ("lora", "sdxl")
    with models.load(identifier(sdxl), "unet") as a, models.load(identifier(sdxl), "unet") as b:
        assert a is b
    assert models.loads == 1


def test_graph_with_an_unknown_model_fails_at_the_loader(models) -> None:
    from invoke_nb.nodes.types import ModelIdentifierField

    ghost = ModelIdentifierField(
        key="nope", hash="blake3:00", name="ghost", base="sd-1", type="main"
    )
    g = txt2img(ghost, "a cat", width=64, height=64, steps=2)
    with pytest.raises(inb.NodeError, match="ghost") as info:
        inb.Runner(services=inb.Services(models=models)).run(g)
    assert "model_loader" in str(info.value)


def test_model_found_by_name_when_the_key_is_foreign(models, sd1) -> None:
    """Workflows made in InvokeAI carry its keys; the name and base still find our model."""
    foreign = sd1.model_copy(update={"key": "invokeai-key", "hash": "blake3:ff"})
    r = inb.Runner(services=inb.Services(models=models)).run(
        txt2img(foreign, "a cat", width=64, height=64, steps=2)
    )
    assert r.outputs["model_loader"].unet.unet.key == sd1.key


def test_standalone_vae_folder_and_single_file(tmp_path: Path) -> None:
    from invoke_nb.testing.tiny_models import make_vae

    folder = make_vae(tmp_path / "vae")
    single = make_vae(tmp_path / "vae.safetensors")
    assert single.is_file() and (tmp_path / "vae-config" / "config.json").exists()
    a = load_submodel(_record(folder, type="vae"), None).state_dict()
    b = load_submodel(
        _record(single, type="vae", format="checkpoint", config_path=str(tmp_path / "vae-config")),
        "vae",
    ).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
