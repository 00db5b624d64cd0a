"""Tiny random-weight SD1/SDXL models, built offline in seconds, for tests and the demo.

They have the *shapes* InvokeAI's probe looks at (UNet ``cross_attention_dim`` 768 for
sd-1 and 2048 for sdxl, 768/1280-wide CLIP text encoders, a 4-block VAE so the latent scale
is 8) and are tiny everywhere else, so a 64x64 image takes a fraction of a second on CPU.
Weights come from a fixed torch seed: the same call writes the same tensors every time.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Literal

import torch

from invoke_nb.testing.ldm_keys import diffusers_to_ldm
from invoke_nb.testing.tokenizer import vocab_size, write_clip_tokenizer

__all__ = [
    "make_lora",
    "make_sd1",
    "make_sd1_single_file",
    "make_sd2",
    "make_sdxl",
    "make_sdxl_refiner",
    "make_vae",
]

_SCHEDULER = {
    "_class_name": "PNDMScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
    "clip_sample": False,
    "prediction_type": "epsilon",
    "timestep_spacing": "leading",
}


_FULL_UNET = {
    "block_out_channels": [320, 640, 1280, 1280],
    "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "sample_size": 64,
}
_FULL_VAE = {
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "sample_size": 512,
}


def _vae_config(full_size: bool = False) -> dict[str, Any]:
    return {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "up_block_types": ["UpDecoderBlock2D"] * 4,
        "block_out_channels": [8, 8, 16, 16],
        "layers_per_block": 1,
        "latent_channels": 4,
        "norm_num_groups": 4,
        "sample_size": 64,
        "scaling_factor": 0.18215,
        **(_FULL_VAE if full_size else {}),
    }


def _unet_config(cross_attention_dim: int, **extra: Any) -> dict[str, Any]:
    return {
        "sample_size": 8,
        "in_channels": 4,
        "out_channels": 4,
        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
        "block_out_channels": [32, 64],
        "layers_per_block": 1,
        "attention_head_dim": 8,
        "norm_num_groups": 8,
        "cross_attention_dim": cross_attention_dim,
        **extra,
    }


def _clip_config(
    vocab: int, hidden: int, *, layers: int, heads: int, projection: int, intermediate: int = 64
) -> Any:
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        max_position_embeddings=77,
        projection_dim=projection,
        hidden_act="quick_gelu",
        bos_token_id=vocab - 2,
        eos_token_id=vocab - 1,
        pad_token_id=vocab - 1,
    )


def _init_(module: torch.nn.Module) -> torch.nn.Module:
    """Give every weight a small, seeded, non-trivial value (zero-init convs make grey images)."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim == 1 and ("norm" in name or "layer_norm" in name) and name.endswith("weight"):
                p.fill_(1.0)
            elif p.ndim == 1:
                p.normal_(0.0, 0.02)
            else:
                fan_in = p[0].numel()
                p.normal_(0.0, 1.0 / max(fan_in, 1) ** 0.5)
    return module.eval()


def _write_vae(dest: Path, full_size: bool = False) -> None:
    from diffusers import AutoencoderKL

    vae = AutoencoderKL(**_vae_config(full_size))
    _init_(vae).save_pretrained(dest, safe_serialization=True)


def _write_scheduler(dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "scheduler_config.json").write_text(json.dumps(_SCHEDULER, indent=1))


def _write_text_encoder(
    dest: Path, vocab: int, *, hidden: int, projection: bool, full_size: bool = False
) -> None:
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    size = {"layers": 12, "intermediate": 4 * hidden} if full_size else {"layers": 2}
    if projection:
        cfg = _clip_config(vocab, hidden, heads=16, projection=hidden, **size)
        model = CLIPTextModelWithProjection(cfg)
    else:
        heads = 12 if hidden % 12 == 0 else 16  # SD2's 1024-wide encoder has 16 heads
        cfg = _clip_config(vocab, hidden, heads=heads, projection=hidden, **size)
        model = CLIPTextModel(cfg)
    _init_(model).save_pretrained(dest, safe_serialization=True)


def _write_sd_model_index(dest: Path, scheduler: str) -> None:
    """model_index.json of a StableDiffusionPipeline folder (one CLIP text encoder)."""
    model_index = {
        "_class_name": "StableDiffusionPipeline",
        "_diffusers_version": "0.31.0",
        "feature_extractor": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", scheduler],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (dest / "model_index.json").write_text(json.dumps(model_index, indent=1))


def make_sd1(dest: Path, *, seed: int = 0, full_size: bool = False, inpaint: bool = False) -> Path:
    """Write a tiny SD1-shaped diffusers folder at ``dest`` (replaced if present).

    ``inpaint`` makes an inpainting UNet (9 input channels: latents, mask, masked image).

    ``full_size`` writes SD1.5's real dimensions instead (860M-parameter UNet, ~4 GB of
    random weights): for benchmarks on a GPU, not for tests.
    """
    from diffusers import UNet2DConditionModel

    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    torch.manual_seed(seed)
    tok = write_clip_tokenizer(dest / "tokenizer")
    n = vocab_size(tok)
    _write_text_encoder(dest / "text_encoder", n, hidden=768, projection=False, full_size=full_size)
    unet_cfg = {**_unet_config(768), **(_FULL_UNET if full_size else {})}
    if inpaint:
        unet_cfg["in_channels"] = 9
    _init_(UNet2DConditionModel(**unet_cfg)).save_pretrained(dest / "unet", safe_serialization=True)
    _write_vae(dest / "vae", full_size)
    _write_scheduler(dest / "scheduler")
    _write_sd_model_index(dest, "PNDMScheduler")
    return dest


def make_sd2(dest: Path, *, seed: int = 0) -> Path:
    """Write a tiny SD2-shaped diffusers folder: 1024-wide text encoder and cross-attention
    (InvokeAI's probe calls that sd-2) and a v-prediction scheduler, like SD 2.x 768-v."""
    from diffusers import UNet2DConditionModel

    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    torch.manual_seed(seed)
    tok = write_clip_tokenizer(dest / "tokenizer")
    _write_text_encoder(dest / "text_encoder", vocab_size(tok), hidden=1024, projection=False)
    unet_cfg = {**_unet_config(1024), "use_linear_projection": True}
    _init_(UNet2DConditionModel(**unet_cfg)).save_pretrained(dest / "unet", safe_serialization=True)
    _write_vae(dest / "vae", False)
    (dest / "scheduler").mkdir()
    sched = {**_SCHEDULER, "_class_name": "DDIMScheduler", "prediction_type": "v_prediction"}
    (dest / "scheduler" / "scheduler_config.json").write_text(json.dumps(sched, indent=1))
    _write_sd_model_index(dest, "DDIMScheduler")
    return dest


def make_sdxl(dest: Path, *, seed: int = 0) -> Path:
    """Write a tiny SDXL-shaped diffusers folder (two text encoders, text_time embedding)."""
    from diffusers import UNet2DConditionModel

    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    torch.manual_seed(seed)
    tok = write_clip_tokenizer(dest / "tokenizer")
    write_clip_tokenizer(dest / "tokenizer_2")
    n = vocab_size(tok)
    _write_text_encoder(dest / "text_encoder", n, hidden=768, projection=False)
    _write_text_encoder(dest / "text_encoder_2", n, hidden=1280, projection=True)
    time_dim = 8
    unet = UNet2DConditionModel(
        **_unet_config(
            2048,
            addition_embed_type="text_time",
            addition_time_embed_dim=time_dim,
            projection_class_embeddings_input_dim=6 * time_dim + 1280,
            transformer_layers_per_block=1,
            use_linear_projection=True,
        )
    )
    _init_(unet).save_pretrained(dest / "unet", safe_serialization=True)
    _write_vae(dest / "vae")
    sched = dict(_SCHEDULER, _class_name="EulerDiscreteScheduler", interpolation_type="linear")
    sched.pop("skip_prk_steps")
    (dest / "scheduler").mkdir()
    (dest / "scheduler" / "scheduler_config.json").write_text(json.dumps(sched, indent=1))
    model_index = {
        "_class_name": "StableDiffusionXLPipeline",
        "_diffusers_version": "0.31.0",
        "force_zeros_for_empty_prompt": True,
        "scheduler": ["diffusers", "EulerDiscreteScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "tokenizer_2": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (dest / "model_index.json").write_text(json.dumps(model_index, indent=1))
    return dest


def make_sdxl_refiner(dest: Path, *, seed: int = 0) -> Path:
    """A tiny SDXL refiner: UNet cross-attention 1280, only the second (1280) text encoder,
    time ids of five values (size, crop, aesthetic score)."""
    from diffusers import UNet2DConditionModel

    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    torch.manual_seed(seed)
    tok = write_clip_tokenizer(dest / "tokenizer_2")
    _write_text_encoder(dest / "text_encoder_2", vocab_size(tok), hidden=1280, projection=True)
    time_dim = 8
    unet = UNet2DConditionModel(
        **_unet_config(
            1280,
            addition_embed_type="text_time",
            addition_time_embed_dim=time_dim,
            projection_class_embeddings_input_dim=5 * time_dim + 1280,
            use_linear_projection=True,
        )
    )
    _init_(unet).save_pretrained(dest / "unet", safe_serialization=True)
    _write_vae(dest / "vae")
    sched = dict(_SCHEDULER, _class_name="EulerDiscreteScheduler", interpolation_type="linear")
    sched.pop("skip_prk_steps")
    (dest / "scheduler").mkdir()
    (dest / "scheduler" / "scheduler_config.json").write_text(json.dumps(sched, indent=1))
    model_index = {
        "_class_name": "StableDiffusionXLImg2ImgPipeline",
        "_diffusers_version": "0.31.0",
        "requires_aesthetics_score": True,
        "force_zeros_for_empty_prompt": False,
        "scheduler": ["diffusers", "EulerDiscreteScheduler"],
        "text_encoder": [None, None],
        "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
        "tokenizer": [None, None],
        "tokenizer_2": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (dest / "model_index.json").write_text(json.dumps(model_index, indent=1))
    return dest


def make_sd1_single_file(dest: Path, *, folder: Path | None = None, seed: int = 0) -> Path:
    """Write a tiny SD1 checkpoint in the original (LDM / A1111) key layout.

    Built from the same weights as :func:`make_sd1` (``folder`` if given, else a fresh
    build beside ``dest``); load it with ``from_single_file(dest, config=<that folder>)``.
    """
    from safetensors.torch import load_file, save_file

    dest = Path(dest)
    if folder is None:
        folder = make_sd1(dest.with_name(dest.stem + "-config"), seed=seed)
    sd: dict[str, torch.Tensor] = {}
    unet = load_file(folder / "unet" / "diffusion_pytorch_model.safetensors")
    vae = load_file(folder / "vae" / "diffusion_pytorch_model.safetensors")
    te = load_file(folder / "text_encoder" / "model.safetensors")
    unet_cfg = json.loads((folder / "unet" / "config.json").read_text())
    vae_cfg = json.loads((folder / "vae" / "config.json").read_text())
    sd.update(diffusers_to_ldm(unet, vae, te, unet_cfg, vae_cfg))
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in sd.items()}, str(dest))
    return dest


def make_vae(dest: Path, *, seed: int = 1, single_file: bool | None = None) -> Path:
    """A standalone tiny VAE: a diffusers folder, or one ``.safetensors`` file (LDM keys).

    ``single_file`` defaults to whether ``dest`` ends in ``.safetensors``; the file's config
    folder is written beside it as ``<stem>-config``.
    """
    from safetensors.torch import load_file, save_file

    dest = Path(dest)
    if single_file is None:
        single_file = dest.suffix == ".safetensors"
    torch.manual_seed(seed)
    folder = dest if not single_file else dest.with_name(dest.stem + "-config")
    if folder.exists():
        shutil.rmtree(folder)
    _write_vae(folder)
    if not single_file:
        return folder
    from invoke_nb.testing.ldm_keys import vae_to_ldm

    vae = load_file(folder / "diffusion_pytorch_model.safetensors")
    cfg = json.loads((folder / "config.json").read_text())
    save_file({k: v.contiguous() for k, v in vae_to_ldm(vae, cfg, prefix="").items()}, str(dest))
    return dest


def make_lora(
    dest: Path,
    base: Literal["sd-1", "sdxl"] = "sd-1",
    format: Literal["peft", "kohya"] = "peft",
    *,
    rank: int = 4,
    seed: int = 2,
    scale: float = 0.5,
) -> Path:
    """A random LoRA for the tiny model of ``base``: UNet attention and text encoder q/k/v/out.

    ``peft`` writes diffusers' ``unet.<module>.lora_A/B.weight`` keys; ``kohya`` writes
    ``lora_unet_<module_with_underscores>.lora_down/lora_up.weight`` plus ``.alpha``.
    """
    from safetensors.torch import save_file

    dest = Path(dest)
    gen = torch.Generator().manual_seed(seed)
    unet_cross = 768 if base == "sd-1" else 2048
    targets: list[tuple[str, str, int, int]] = []
    # UNet: the attentions of the tiny UNet (block widths 32, 64; one transformer each).
    for path, width in (
        ("down_blocks.0.attentions.0.transformer_blocks.0", 32),
        ("up_blocks.1.attentions.0.transformer_blocks.0", 32),
        ("mid_block.attentions.0.transformer_blocks.0", 64),
    ):
        for attn, kv_in in (("attn1", width), ("attn2", unet_cross)):
            targets.append(("unet", f"{path}.{attn}.to_q", width, width))
            targets.append(("unet", f"{path}.{attn}.to_k", kv_in, width))
            targets.append(("unet", f"{path}.{attn}.to_v", kv_in, width))
            targets.append(("unet", f"{path}.{attn}.to_out.0", width, width))
    encoders = (
        [("text_encoder", 768)]
        if base == "sd-1"
        else [("text_encoder", 768), ("text_encoder_2", 1280)]
    )
    for enc, width in encoders:
        for layer in range(2):
            for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
                targets.append(
                    (enc, f"text_model.encoder.layers.{layer}.self_attn.{proj}", width, width)
                )
    sd: dict[str, torch.Tensor] = {}
    kohya_prefix = {
        "unet": "lora_unet",
        "text_encoder": "lora_te1" if base == "sdxl" else "lora_te",
        "text_encoder_2": "lora_te2",
    }
    for part, module, fan_in, fan_out in targets:
        down = torch.randn(rank, fan_in, generator=gen) * (scale / fan_in**0.5)
        up = torch.randn(fan_out, rank, generator=gen) * scale
        if format == "peft":
            sd[f"{part}.{module}.lora_A.weight"] = down
            sd[f"{part}.{module}.lora_B.weight"] = up
        else:
            name = f"{kohya_prefix[part]}_{module.replace('.', '_')}"
            sd[f"{name}.lora_down.weight"] = down
            sd[f"{name}.lora_up.weight"] = up
            sd[f"{name}.alpha"] = torch.tensor(float(rank))
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_file(sd, str(dest), metadata={"format": "pt", "invoke_nb_base": base})
    return dest
