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


def test_other_layouts_are_refused_by_name(tmp_path: Path, tiny_sd1_file: Path) -> None:
    with pytest.raises(ConfigUnavailable, match="'flux'"):
        build_config_folder(tiny_sd1_file, "flux", tmp_path)
    with pytest.raises(ConfigUnavailable, match="sdxl layout"):
        build_config_folder(tiny_sd1_file, "sdxl", tmp_path)
