"""Single-file checkpoints install without a config folder: one is built from the shapes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from invoke_nb.models.checkpoint_config import (
    ConfigUnavailable,
    build_config_folder,
    infer_configs,
)
from invoke_nb.models.loaders import ModelLoadError, load_submodel
from invoke_nb.models.probe import read_safetensors_header
from invoke_nb.studio import Studio

from .conftest import write_safetensors_header

SMALL = dict(width=64, height=64, steps=3)

# Pixel tolerance: the same weights loaded two ways, so equal up to float noise; at most
# 1/255 per value (the single file is float32, like the folder).
MAX_DIFF = 1


@pytest.fixture(autouse=True)
def _empty_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No Hugging Face cache of this machine can supply a tokenizer."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_single_file_generates_like_the_folder_without_config(
    tmp_path: Path, tiny_sd1: Path, tiny_sd1_file: Path
) -> None:
    with Studio(tmp_path / "studio") as studio:
        studio.models.install(str(tiny_sd1), name="folder", in_place=True)
        rec = studio.models.install(str(tiny_sd1_file), name="single", in_place=True)
        assert rec.format == "checkpoint" and rec.base == "sd-1"
        cfg = Path(rec.config_path)
        assert cfg.parent == studio.root / "models" / ".configs"
        assert {p.name for p in cfg.iterdir()} >= {"unet", "vae", "text_encoder", "tokenizer"}
        a = studio.txt2img("a red fox", model="folder", seed=5, progress=False, **SMALL)
        b = studio.txt2img("a red fox", model="single", seed=5, progress=False, **SMALL)
        pa, pb = np.asarray(a.pil, dtype=int), np.asarray(b.pil, dtype=int)
        assert pa.std() > 1  # a real picture, not a flat one
        assert np.abs(pa - pb).max() <= MAX_DIFF
        # a second checkpoint of the same architecture reuses the cached folder
        again = studio.models.install(str(_copy_with_new_hash(tiny_sd1_file, tmp_path)))
        assert again.config_path == rec.config_path


def _copy_with_new_hash(path: Path, tmp_path: Path) -> Path:
    """The same tensors with other safetensors metadata: new content hash, same shapes."""
    from safetensors.torch import load_file, save_file

    out = tmp_path / "other.safetensors"
    save_file(load_file(str(path)), str(out), metadata={"note": "another fine-tune"})
    return out


def test_inferred_configs_match_the_folder_where_shapes_decide(
    tiny_sd1: Path, tiny_sd1_file: Path
) -> None:
    shapes, _ = read_safetensors_header(tiny_sd1_file)
    cfgs = infer_configs(shapes, "sd-1")
    for part, keys in (
        ("unet", ("block_out_channels", "layers_per_block", "down_block_types",
                  "up_block_types", "cross_attention_dim", "use_linear_projection",
                  "transformer_layers_per_block", "in_channels", "out_channels")),
        ("vae", ("block_out_channels", "layers_per_block", "latent_channels")),
        ("text_encoder", ("vocab_size", "hidden_size", "intermediate_size",
                          "num_hidden_layers", "num_attention_heads", "hidden_act")),
    ):  # fmt: skip
        theirs = json.loads((tiny_sd1 / part / "config.json").read_text())
        assert {k: cfgs[part][k] for k in keys} == {k: theirs[k] for k in keys}, part


def test_unet_from_conventions_alone_loads_every_tensor(
    tmp_path: Path, tiny_sd1: Path, tiny_sd1_file: Path
) -> None:
    """Without a reference model the UNet config comes from SD1's conventions; it must place
    every tensor of the file (same parameters as the folder's UNet)."""
    import torch
    from diffusers import UNet2DConditionModel

    shapes, _ = read_safetensors_header(tiny_sd1_file)
    folder = tmp_path / "conventions"
    (folder / "unet").mkdir(parents=True)
    (folder / "unet" / "config.json").write_text(json.dumps(infer_configs(shapes, "sd-1")["unet"]))
    unet = UNet2DConditionModel.from_single_file(
        str(tiny_sd1_file), config=str(folder), subfolder="unet", local_files_only=True
    )
    ref = UNet2DConditionModel.from_pretrained(tiny_sd1 / "unet")
    ours, theirs = dict(unet.named_parameters()), dict(ref.named_parameters())
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_without_a_tokenizer_the_record_says_why(tmp_path: Path, tiny_sd1_file: Path) -> None:
    with Studio(tmp_path / "studio", start_queue=False) as studio:
        rec = studio.models.install(str(tiny_sd1_file), name="alone", in_place=True)
        assert rec.config_path is None
        assert "holds no tokenizer" in rec.extra["config_error"]
        with pytest.raises(ModelLoadError, match=r"none could be built at install.*tokenizer"):
            load_submodel(rec, "unet")


def test_installing_again_after_a_reference_builds_the_config(
    tmp_path: Path, tiny_sd1: Path, tiny_sd1_file: Path
) -> None:
    with Studio(tmp_path / "studio", start_queue=False) as studio:
        first = studio.models.install(str(tiny_sd1_file), name="single", in_place=True)
        assert first.config_path is None
        studio.models.install(str(tiny_sd1), name="folder", in_place=True)
        again = studio.models.install(str(tiny_sd1_file), in_place=True)
        assert again.key == first.key and again.config_path is not None
        assert "config_error" not in again.extra
        assert studio.models.get("single").config_path == again.config_path
        assert load_submodel(again, "unet").config.cross_attention_dim == 768


def test_other_layouts_are_refused_by_name(tmp_path: Path, tiny_sd1_file: Path) -> None:
    with pytest.raises(ConfigUnavailable, match="'flux'"):
        build_config_folder(tiny_sd1_file, "flux", tmp_path)
    with pytest.raises(ConfigUnavailable, match="sdxl layout"):
        build_config_folder(tiny_sd1_file, "sdxl", tmp_path)


def _sdxl_shapes() -> dict[str, tuple[int, ...]]:
    """The keys and shapes of SDXL base 1.0's checkpoint that the configs are read from."""
    u, shapes = "model.diffusion_model.", {}
    shapes[u + "input_blocks.0.0.weight"] = (320, 4, 3, 3)
    shapes[u + "out.2.weight"] = (4, 320, 3, 3)
    shapes[u + "label_emb.0.0.weight"] = (1280, 2816)
    # three levels of two resnets; attention (2 and 10 transformer blocks) on levels 2 and 3
    layout = {1: 320, 2: 320, 4: 640, 5: 640, 7: 1280, 8: 1280}
    for i, ch in layout.items():
        shapes[u + f"input_blocks.{i}.0.out_layers.3.weight"] = (ch, ch, 3, 3)
        depth = {640: 2, 1280: 10}.get(ch, 0)
        for j in range(depth):
            blk = u + f"input_blocks.{i}.1.transformer_blocks.{j}."
            shapes[blk + "attn2.to_k.weight"] = (ch, 2048)
        if depth:
            shapes[u + f"input_blocks.{i}.1.proj_in.weight"] = (ch, ch)
    for i, ch in ((3, 320), (6, 640)):
        shapes[u + f"input_blocks.{i}.0.op.weight"] = (ch, ch, 3, 3)
    v = "first_stage_model."
    shapes[v + "encoder.conv_in.weight"] = (128, 3, 3, 3)
    shapes[v + "decoder.conv_in.weight"] = (512, 4, 3, 3)
    shapes[v + "decoder.conv_out.weight"] = (3, 128, 3, 3)
    for i, ch in enumerate((128, 256, 512, 512)):
        for b in range(2):
            shapes[v + f"encoder.down.{i}.block.{b}.conv1.weight"] = (ch, ch, 3, 3)
    t1 = "conditioner.embedders.0.transformer.text_model."
    shapes[t1 + "embeddings.token_embedding.weight"] = (49408, 768)
    shapes[t1 + "embeddings.position_embedding.weight"] = (77, 768)
    for n in range(12):
        shapes[t1 + f"encoder.layers.{n}.mlp.fc1.weight"] = (3072, 768)
    t2 = "conditioner.embedders.1.model."
    shapes[t2 + "token_embedding.weight"] = (49408, 1280)
    shapes[t2 + "positional_embedding"] = (77, 1280)
    shapes[t2 + "text_projection"] = (1280, 1280)
    for n in range(32):
        shapes[t2 + f"transformer.resblocks.{n}.mlp.c_fc.weight"] = (5120, 1280)
    return shapes


def test_sdxl_configs_match_sdxl_base_from_shapes_alone(tmp_path: Path) -> None:
    """An SDXL-shaped header (sparse file, no weights) gives SDXL base 1.0's diffusers
    configs (the values below are those of stabilityai/stable-diffusion-xl-base-1.0)."""
    path = write_safetensors_header(tmp_path / "sdxl.safetensors", _sdxl_shapes())
    shapes, _ = read_safetensors_header(path)
    c = infer_configs(shapes, "sdxl")
    unet = {k: c["unet"][k] for k in (
        "block_out_channels", "layers_per_block", "down_block_types", "transformer_layers_per_block",
        "attention_head_dim", "cross_attention_dim", "use_linear_projection",
        "addition_embed_type", "addition_time_embed_dim", "projection_class_embeddings_input_dim",
    )}  # fmt: skip
    assert unet == {
        "block_out_channels": [320, 640, 1280],
        "layers_per_block": 2,
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        "transformer_layers_per_block": [1, 2, 10],
        "attention_head_dim": [5, 10, 20],
        "cross_attention_dim": 2048,
        "use_linear_projection": True,
        "addition_embed_type": "text_time",
        "addition_time_embed_dim": 256,
        "projection_class_embeddings_input_dim": 2816,
    }
    assert c["unet"]["up_block_types"] == ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"]
    assert c["vae"]["block_out_channels"] == [128, 256, 512, 512]
    assert (c["vae"]["scaling_factor"], c["vae"]["layers_per_block"]) == (0.13025, 2)
    te1, te2 = c["text_encoder"], c["text_encoder_2"]
    assert (te1["hidden_size"], te1["num_hidden_layers"], te1["num_attention_heads"]) == (
        768,
        12,
        12,
    )
    assert te1["architectures"] == ["CLIPTextModel"] and te1["hidden_act"] == "quick_gelu"
    assert (te2["hidden_size"], te2["num_hidden_layers"], te2["num_attention_heads"]) == (
        1280,
        32,
        20,
    )
    assert te2["architectures"] == ["CLIPTextModelWithProjection"] and te2["projection_dim"] == 1280
    assert te2["intermediate_size"] == 5120 and te2["hidden_act"] == "gelu"
