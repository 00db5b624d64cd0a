"""Identification from safetensors headers and diffusers configs (no weights loaded)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from invoke_nb.models.errors import CorruptModelError
from invoke_nb.models.probe import probe, read_safetensors_header

from .conftest import write_safetensors_header

UNET = "model.diffusion_model."
SD_KEY = UNET + "input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight"
XL_KEY = UNET + "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight"


def ckpt(width_key: str, width: int, in_channels: int = 4) -> dict[str, tuple[int, ...]]:
    return {
        UNET + "input_blocks.0.0.weight": (320, in_channels, 3, 3),
        width_key: (320, width),
        "first_stage_model.encoder.conv_in.weight": (128, 3, 3, 3),
    }


CASES: dict[str, tuple[dict[str, tuple[int, ...]], tuple[str, str, str, str | None]]] = {
    "sd1.safetensors": (ckpt(SD_KEY, 768), ("main", "sd-1", "checkpoint", "normal")),
    "sd2.safetensors": (ckpt(SD_KEY, 1024), ("main", "sd-2", "checkpoint", "normal")),
    "sd1-inpaint.safetensors": (ckpt(SD_KEY, 768, 9), ("main", "sd-1", "checkpoint", "inpaint")),
    "sd2-depth.safetensors": (ckpt(SD_KEY, 1024, 5), ("main", "sd-2", "checkpoint", "depth")),
    "sdxl.safetensors": (ckpt(XL_KEY, 2048), ("main", "sdxl", "checkpoint", "normal")),
    "refiner.safetensors": (ckpt(XL_KEY, 1280), ("main", "sdxl-refiner", "checkpoint", "normal")),
    "flux-dev.safetensors": (
        {  # InvokeAI's rule: the key norm scale says FLUX, guidance_in says dev
            "double_blocks.0.img_attn.norm.key_norm.scale": (8,),
            "img_in.weight": (8, 64),
            "guidance_in.out_layer.weight": (8, 8),
        },
        ("main", "flux", "checkpoint", "dev"),
    ),
    "sd3.safetensors": (
        {UNET + "joint_blocks.0.x_block.attn.qkv.weight": (8, 8)},
        ("main", "sd-3", "checkpoint", None),
    ),
    "lora-kohya-sd1.safetensors": (
        {
            "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": (
                4,
                768,
            ),
            "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight": (
                320,
                4,
            ),
        },
        ("lora", "sd-1", "lycoris", None),
    ),
    "lora-kohya-sd2.safetensors": (
        {"lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": (4, 1024)},
        ("lora", "sd-2", "lycoris", None),
    ),
    "lora-te-xl.safetensors": (
        {
            "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": (4, 768),
            "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": (4, 1280),
        },
        ("lora", "sdxl", "lycoris", None),
    ),
    "lora-peft-xl.safetensors": (
        {
            "unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight": (4, 2048),
            "unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k.lora_B.weight": (64, 4),
        },
        ("lora", "sdxl", "lycoris", None),
    ),
    "vae-ft-mse.safetensors": (
        {"encoder.conv_in.weight": (128, 3, 3, 3), "decoder.conv_in.weight": (512, 4, 3, 3)},
        ("vae", "sd-1", "checkpoint", None),
    ),
    "sdxl_vae.safetensors": (
        {"encoder.conv_in.weight": (128, 3, 3, 3), "decoder.conv_in.weight": (512, 4, 3, 3)},
        ("vae", "sdxl", "checkpoint", None),
    ),
    "ae.safetensors": (
        {"encoder.conv_in.weight": (128, 3, 3, 3), "decoder.conv_in.weight": (512, 16, 3, 3)},
        ("vae", "flux", "checkpoint", None),
    ),
    "control-canny.safetensors": (
        {
            "control_model.input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight": (320, 768),
            "control_model.input_hint_block.0.weight": (16, 3, 3, 3),
        },
        ("controlnet", "sd-1", "checkpoint", None),
    ),
    "ip-adapter-plus_sdxl.safetensors": (
        {"image_proj.proj.weight": (8, 8), "ip_adapter.1.to_k_ip.weight": (640, 2048)},
        ("ip_adapter", "sdxl", "checkpoint", None),
    ),
    "easynegative.safetensors": (
        {"emb_params": (8, 768)},
        ("embedding", "sd-1", "embedding_file", None),
    ),
    "xl-embedding.safetensors": (
        {"clip_g": (2, 1280), "clip_l": (2, 768)},
        ("embedding", "sdxl", "embedding_file", None),
    ),
    "clip-vision.safetensors": (
        {"vision_model.embeddings.patch_embedding.weight": (8, 3, 14, 14)},
        ("clip_vision", "any", "checkpoint", None),
    ),
    "t5.safetensors": (
        {"encoder.block.0.layer.0.SelfAttention.q.weight": (8, 8)},
        ("t5_encoder", "any", "checkpoint", None),
    ),
    "4x-esrgan.safetensors": (
        {"conv_first.weight": (64, 3, 3, 3), "body.0.rdb1.conv1.weight": (32, 64, 3, 3)},
        ("spandrel_image_to_image", "any", "checkpoint", None),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_single_file_identification(tmp_path: Path, name: str) -> None:
    shapes, (mtype, base, fmt, variant) = CASES[name]
    r = probe(write_safetensors_header(tmp_path / name, shapes))
    assert (r.type, r.base, r.format, r.variant) == (mtype, base, fmt, variant)
    assert r.unknown_reason is None


def test_prediction_type_follows_base(tmp_path: Path) -> None:
    assert (
        probe(
            write_safetensors_header(tmp_path / "a.safetensors", ckpt(SD_KEY, 1024))
        ).prediction_type
        == "v_prediction"
    )
    assert (
        probe(
            write_safetensors_header(tmp_path / "b.safetensors", ckpt(SD_KEY, 768))
        ).prediction_type
        == "epsilon"
    )


def test_unrecognized_tensors_become_unknown_with_reason(tmp_path: Path) -> None:
    shapes = {f"net.layer{i}.weight": (3, 3, 3, 3) for i in range(20)}
    r = probe(write_safetensors_header(tmp_path / "mystery.safetensors", shapes))
    assert r.type == "unknown" and r.base == "unknown"
    assert "20 tensors" in (r.unknown_reason or "")


def test_odd_unet_channels_is_unknown_not_crash(tmp_path: Path) -> None:
    r = probe(write_safetensors_header(tmp_path / "x.safetensors", ckpt(SD_KEY, 768, 7)))
    assert r.type == "unknown" and "in_channels 7" in (r.unknown_reason or "")


def test_truncated_file_is_corrupt(tmp_path: Path) -> None:
    path = write_safetensors_header(tmp_path / "cut.safetensors", ckpt(SD_KEY, 768))
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.truncate(size - 1000)
    with pytest.raises(CorruptModelError, match=r"cut\.safetensors: truncated"):
        probe(path)


def test_garbage_header_is_corrupt(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes((20).to_bytes(8, "little") + b"{not json at all!!!}" + b"\0" * 64)
    with pytest.raises(CorruptModelError, match="not valid JSON"):
        probe(bad)
    tiny = tmp_path / "tiny.safetensors"
    tiny.write_bytes(b"abc")
    with pytest.raises(CorruptModelError, match="no header"):
        probe(tiny)


def test_header_reader_returns_shapes_and_metadata(tmp_path: Path, sd1_file: Path) -> None:
    shapes, _meta = read_safetensors_header(sd1_file)
    assert any(k.startswith("model.diffusion_model.") for k in shapes)
    assert all(isinstance(s, tuple) for s in shapes.values())


def test_pickle_is_not_opened_without_permission(tmp_path: Path) -> None:
    p = tmp_path / "model.ckpt"
    p.write_bytes(b"\x80\x02}q\x00.")
    r = probe(p)
    assert r.type == "unknown" and "pickle" in (r.unknown_reason or "")


def _diffusers(tmp_path: Path, cls: str, cross: int, in_ch: int = 4, pred: str = "epsilon") -> Path:
    root = tmp_path / f"{cls}-{cross}-{in_ch}-{pred}"
    (root / "unet").mkdir(parents=True)
    (root / "scheduler").mkdir()
    (root / "model_index.json").write_text(json.dumps({"_class_name": cls}))
    (root / "unet" / "config.json").write_text(
        json.dumps(
            {
                "_class_name": "UNet2DConditionModel",
                "cross_attention_dim": cross,
                "in_channels": in_ch,
            }
        )
    )
    (root / "scheduler" / "scheduler_config.json").write_text(json.dumps({"prediction_type": pred}))
    return root


@pytest.mark.parametrize(
    ("cls", "cross", "in_ch", "pred", "expected"),
    [
        ("StableDiffusionPipeline", 768, 4, "epsilon", ("sd-1", "normal", "epsilon")),
        ("StableDiffusionPipeline", 1024, 4, "v_prediction", ("sd-2", "normal", "v_prediction")),
        ("StableDiffusionInpaintPipeline", 768, 9, "epsilon", ("sd-1", "inpaint", "epsilon")),
        ("StableDiffusionXLPipeline", 2048, 4, "epsilon", ("sdxl", "normal", "epsilon")),
        (
            "StableDiffusionXLImg2ImgPipeline",
            1280,
            4,
            "epsilon",
            ("sdxl-refiner", "normal", "epsilon"),
        ),
    ],
)
def test_diffusers_main_by_cross_attention(tmp_path, cls, cross, in_ch, pred, expected) -> None:
    r = probe(_diffusers(tmp_path, cls, cross, in_ch, pred))
    assert (r.type, r.format) == ("main", "diffusers")
    assert (r.base, r.variant, r.prediction_type) == expected


def _config_folder(tmp_path: Path, name: str, config: dict) -> Path:
    root = tmp_path / name
    root.mkdir()
    (root / "config.json").write_text(json.dumps(config))
    return root


def test_diffusers_component_folders(tmp_path: Path) -> None:
    cases = {
        "vae": ({"_class_name": "AutoencoderKL", "scaling_factor": 0.18215}, ("vae", "sd-1")),
        "sdxl-vae": (
            {"_class_name": "AutoencoderKL", "scaling_factor": 0.13025, "sample_size": 1024},
            ("vae", "sdxl"),
        ),
        "cn": (
            {"_class_name": "ControlNetModel", "cross_attention_dim": 2048},
            ("controlnet", "sdxl"),
        ),
        "t2i": (
            {"_class_name": "T2IAdapter", "adapter_type": "full_adapter"},
            ("t2i_adapter", "sd-1"),
        ),
        "vision": (
            {"architectures": ["CLIPVisionModelWithProjection"]},
            ("clip_vision", "any"),
        ),
        "te": ({"architectures": ["CLIPTextModel"], "hidden_size": 768}, ("clip_embed", "any")),
        "odd": ({"_class_name": "SomethingElse"}, ("unknown", "unknown")),
    }
    for name, (config, expected) in cases.items():
        r = probe(_config_folder(tmp_path, name, config))
        assert (r.type, r.base) == expected, name


def test_folder_without_configs_is_unknown(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    r = probe(tmp_path / "empty")
    assert r.type == "unknown" and "model_index.json" in (r.unknown_reason or "")


def test_broken_json_config_is_corrupt(tmp_path: Path) -> None:
    root = tmp_path / "broken"
    root.mkdir()
    (root / "model_index.json").write_text("{oops")
    with pytest.raises(CorruptModelError, match=r"model_index\.json"):
        probe(root)


def test_tiny_models_identified(
    sd1_folder: Path, sd1_file: Path, sdxl_folder: Path, tmp_path: Path
) -> None:
    from invoke_nb.testing.tiny_models import make_lora, make_vae

    assert (probe(sd1_folder).type, probe(sd1_folder).base) == ("main", "sd-1")
    single = probe(sd1_file)
    assert (single.type, single.base, single.format) == ("main", "sd-1", "checkpoint")
    xl = probe(sdxl_folder)
    assert (xl.type, xl.base, xl.format) == ("main", "sdxl", "diffusers")
    for base in ("sd-1", "sdxl"):
        for fmt in ("peft", "kohya"):
            lora = probe(
                make_lora(tmp_path / f"lora-{base}-{fmt}.safetensors", base=base, format=fmt)
            )
            assert (lora.type, lora.base) == ("lora", base), (base, fmt)
    vae_file = probe(make_vae(tmp_path / "vae.safetensors", single_file=True))
    assert (vae_file.type, vae_file.base, vae_file.format) == ("vae", "sd-1", "checkpoint")
    vae_dir = probe(make_vae(tmp_path / "vae-folder"))
    assert (vae_dir.type, vae_dir.format) == ("vae", "diffusers")
