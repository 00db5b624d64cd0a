"""Diffusers config folders for single-file SD1/SD2/SDXL checkpoints, built offline.

diffusers' ``from_single_file`` recognises a checkpoint's family from its keys, then takes
the config of that family's Hugging Face repo, which offline means a local folder. We build
that folder here instead:

* every width, depth and block layout is read from the tensors' shapes in the safetensors
  header (no tensor is loaded);
* what shapes do not show (attention heads, norm groups, latent scaling, the scheduler) is
  taken from an installed diffusers model of the same base whose shapes match, since it is
  the same architecture; otherwise from what SD1/SD2/SDXL use;
* tokenizers are not in checkpoints: they come from such an installed model (same vocabulary
  size) or from the local Hugging Face cache of the family's repo.

Folders are cached under ``<models dir>/.configs/<base>-<hash>`` and shared by every
checkpoint with the same configs. Torch-free: only headers and JSON are read.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from invoke_nb.models.probe import Shapes, read_safetensors_header

__all__ = ["ConfigUnavailable", "build_config_folder", "infer_configs"]

UNET = "model.diffusion_model."
VAE = "first_stage_model."
CLIP_PREFIXES = {  # (prefix, layout) of each text encoder, per base
    "sd-1": [("cond_stage_model.transformer.text_model.", "hf")],
    "sd-2": [("cond_stage_model.model.", "openclip")],
    "sdxl": [
        ("conditioner.embedders.0.transformer.text_model.", "hf"),
        ("conditioner.embedders.1.model.", "openclip"),
    ],
    "sdxl-refiner": [("conditioner.embedders.0.model.", "openclip")],
}
_BETAS = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}
_SCHEDULERS: dict[str, dict[str, Any]] = {
    "sd-1": {"_class_name": "PNDMScheduler", "skip_prk_steps": True, "set_alpha_to_one": False},
    "sd-2": {"_class_name": "DDIMScheduler", "set_alpha_to_one": False},
    "sdxl": {"_class_name": "EulerDiscreteScheduler", "interpolation_type": "linear"},
    "sdxl-refiner": {"_class_name": "EulerDiscreteScheduler", "interpolation_type": "linear"},
}
_HUB_TOKENIZERS = {  # repos whose tokenizer a local Hugging Face cache may hold
    "sd-1": [("stable-diffusion-v1-5/stable-diffusion-v1-5", "tokenizer"),
             ("openai/clip-vit-large-patch14", "")],
    "sd-2": [("stabilityai/stable-diffusion-2-1", "tokenizer")],
    "sdxl": [("stabilityai/stable-diffusion-xl-base-1.0", "tokenizer"),
             ("stabilityai/stable-diffusion-xl-base-1.0", "tokenizer_2")],
    "sdxl-refiner": [("stabilityai/stable-diffusion-xl-refiner-1.0", "tokenizer_2")],
}  # fmt: skip
# Fields of each config that the shapes decide; the rest may come from a reference model.
_VISIBLE = {
    "unet": ("in_channels", "out_channels", "block_out_channels", "layers_per_block",
             "down_block_types", "cross_attention_dim", "use_linear_projection",
             "transformer_layers_per_block", "addition_embed_type"),
    "vae": ("in_channels", "out_channels", "block_out_channels", "layers_per_block",
            "latent_channels"),
    "text_encoder": ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                     "max_position_embeddings"),
}  # fmt: skip


class ConfigUnavailable(ValueError):
    """A config folder cannot be built for this checkpoint (the reason says what is missing)."""


# -- reading shapes ----------------------------------------------------------------------------
def _indices(shapes: Shapes, prefix: str) -> list[int]:
    """Sorted distinct integers that follow ``prefix`` in the keys (block numbers)."""
    found = {int(m[1]) for k in shapes if (m := re.match(re.escape(prefix) + r"(\d+)\.", k))}
    return sorted(found)


def _has(shapes: Shapes, prefix: str) -> bool:
    return any(k.startswith(prefix) for k in shapes)


def unet_config(shapes: Shapes, base: str, prefix: str = UNET) -> dict[str, Any]:
    """UNet2DConditionModel config of an LDM-layout UNet (``model.diffusion_model.*``; an
    LDM ControlNet, the UNet's encoder half, passes its own ``prefix``)."""
    conv_in = shapes[prefix + "input_blocks.0.0.weight"]
    levels: list[list[int]] = [[]]
    for i in _indices(shapes, prefix + "input_blocks.")[1:]:
        if prefix + f"input_blocks.{i}.0.op.weight" in shapes:
            levels.append([])
        else:
            levels[-1].append(i)
    channels, attention, depth = [], [], []
    for blocks in levels:
        channels.append(shapes[prefix + f"input_blocks.{blocks[0]}.0.out_layers.3.weight"][0])
        attn = [b for b in blocks if _has(shapes, prefix + f"input_blocks.{b}.1.")]
        attention.append(bool(attn))
        n = (
            len(_indices(shapes, prefix + f"input_blocks.{attn[0]}.1.transformer_blocks."))
            if attn
            else 1
        )
        depth.append(n)
    key_k = next(k for k in shapes if k.startswith(prefix) and k.endswith("attn2.to_k.weight"))
    proj_in = next(k for k in shapes if k.startswith(prefix) and k.endswith(".proj_in.weight"))
    out = shapes.get(prefix + "out.2.weight")  # a ControlNet has no output half
    heads: Any = 8 if base == "sd-1" else [max(1, c // 64) for c in channels]
    cfg: dict[str, Any] = {
        "_class_name": "UNet2DConditionModel",
        "in_channels": conv_in[1],
        "out_channels": out[0] if out else conv_in[1],
        "block_out_channels": channels,
        "layers_per_block": len(levels[0]),
        "down_block_types": ["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attention],
        "up_block_types": ["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention)],
        "mid_block_type": "UNetMidBlock2DCrossAttn",
        "cross_attention_dim": shapes[key_k][1],
        "attention_head_dim": heads,
        "use_linear_projection": len(shapes[proj_in]) == 2,
        "transformer_layers_per_block": depth if len(set(depth)) > 1 else depth[0],
        "norm_num_groups": 32,
        "sample_size": {"sd-1": 64, "sd-2": 96, "sdxl": 128, "sdxl-refiner": 128}[base],
        "upcast_attention": False,
    }
    label = shapes.get(prefix + "label_emb.0.0.weight")
    if label is not None:  # SDXL: pooled text embedding + size/crop time ids
        cfg.update(
            addition_embed_type="text_time",
            addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=label[1],
        )
    else:
        cfg["addition_embed_type"] = None
    return cfg


def vae_config(shapes: Shapes, base: str, prefix: str = VAE) -> dict[str, Any]:
    """AutoencoderKL config of an LDM-layout VAE (``first_stage_model.*`` or bare)."""
    levels = _indices(shapes, prefix + "encoder.down.")
    channels = [shapes[prefix + f"encoder.down.{i}.block.0.conv1.weight"][0] for i in levels]
    xl = base.startswith("sdxl")
    return {
        "_class_name": "AutoencoderKL",
        "in_channels": shapes[prefix + "encoder.conv_in.weight"][1],
        "out_channels": shapes[prefix + "decoder.conv_out.weight"][0],
        "block_out_channels": channels,
        "layers_per_block": len(_indices(shapes, prefix + "encoder.down.0.block.")),
        "down_block_types": ["DownEncoderBlock2D"] * len(channels),
        "up_block_types": ["UpDecoderBlock2D"] * len(channels),
        "latent_channels": shapes[prefix + "decoder.conv_in.weight"][1],
        "norm_num_groups": 32,
        "sample_size": {"sd-1": 512, "sd-2": 768}.get(base, 1024),
        "scaling_factor": 0.13025 if xl else 0.18215,
        "force_upcast": xl,
    }


def text_encoder_config(shapes: Shapes, prefix: str, layout: str, base: str) -> dict[str, Any]:
    """CLIPTextConfig (as JSON) of a checkpoint's CLIP (HF layout) or OpenCLIP text encoder."""
    if layout == "hf":
        vocab, hidden = shapes[prefix + "embeddings.token_embedding.weight"]
        positions = shapes[prefix + "embeddings.position_embedding.weight"][0]
        layers = len(_indices(shapes, prefix + "encoder.layers."))
        inner = shapes[prefix + "encoder.layers.0.mlp.fc1.weight"][0]
        act, projection = "quick_gelu", None
    else:
        vocab, hidden = shapes[prefix + "token_embedding.weight"]
        positions = shapes[prefix + "positional_embedding"][0]
        layers = len(_indices(shapes, prefix + "transformer.resblocks."))
        inner = shapes[prefix + "transformer.resblocks.0.mlp.c_fc.weight"][0]
        act, projection = "gelu", shapes.get(prefix + "text_projection")
        if base == "sd-2":  # SD 2.x conditions on the penultimate layer: diffusers drops one
            layers -= 1
    arch = "CLIPTextModelWithProjection" if projection is not None else "CLIPTextModel"
    return {
        "architectures": [arch],
        "model_type": "clip_text_model",
        "vocab_size": vocab,
        "hidden_size": hidden,
        "intermediate_size": inner,
        "num_hidden_layers": layers,
        "num_attention_heads": max(1, hidden // 64),
        "max_position_embeddings": positions,
        "hidden_act": act,
        "projection_dim": projection[1] if projection is not None else hidden,
        "bos_token_id": vocab - 2,
        "eos_token_id": vocab - 1,
        "pad_token_id": vocab - 1,
    }


def infer_configs(shapes: Shapes, base: str) -> dict[str, dict[str, Any]]:
    """The component configs of a main checkpoint, from shapes and SD conventions."""
    if base not in CLIP_PREFIXES:
        raise ConfigUnavailable(f"no config can be inferred for base {base!r} checkpoints")
    try:
        out = {"unet": unet_config(shapes, base), "vae": vae_config(shapes, base)}
        names = ["text_encoder", "text_encoder_2"]
        if base == "sdxl-refiner":
            names = ["text_encoder_2"]
        for name, (prefix, layout) in zip(names, CLIP_PREFIXES[base], strict=False):
            out[name] = text_encoder_config(shapes, prefix, layout, base)
    except (KeyError, IndexError, StopIteration) as exc:
        raise ConfigUnavailable(
            f"the tensors do not have the {base} layout diffusers converts ({exc!r} missing)"
        ) from None
    return out


# -- references -----------------------------------------------------------------------------------
def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _visible(cfg: dict[str, Any], part: str) -> tuple[Any, ...]:
    kind = "text_encoder" if part.startswith("text_encoder") else part
    values = []
    for key in _VISIBLE[kind]:
        value = cfg.get(key)
        if (
            key == "transformer_layers_per_block"
            and isinstance(value, list)
            and len(set(value)) == 1
        ):
            value = value[0]
        values.append(list(value) if isinstance(value, tuple) else value)
    if kind == "text_encoder":
        values.append((cfg.get("architectures") or ["CLIPTextModel"])[0])
    return tuple(values)


def _with_references(
    configs: dict[str, dict[str, Any]], references: Iterable[Path]
) -> tuple[dict[str, dict[str, Any]], dict[str, Path], dict[str, Any] | None]:
    """Replace each inferred config by a matching reference model's one; find tokenizers and
    a scheduler config there. Returns (configs, tokenizer folders, scheduler config)."""
    configs = dict(configs)
    tokenizers: dict[str, Path] = {}
    scheduler = None
    inferred = {part: _visible(cfg, part) for part, cfg in configs.items()}
    for ref in references:
        if scheduler is None:
            scheduler = _read(ref / "scheduler" / "scheduler_config.json")
        for part in list(configs):
            theirs = _read(ref / part / "config.json")
            if theirs is None or _visible(theirs, part) != inferred[part]:
                continue
            configs[part] = {k: v for k, v in theirs.items() if not k.startswith("_diffusers")}
            tok = ref / part.replace("text_encoder", "tokenizer")
            if part.startswith("text_encoder") and part not in tokenizers and tok.is_dir():
                tokenizers[part] = tok
    return configs, tokenizers, scheduler


def _hub_tokenizer(base: str, part: str) -> Path | None:
    """A tokenizer folder from the local Hugging Face cache (never downloads)."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    wanted = "tokenizer_2" if part == "text_encoder_2" else "tokenizer"
    for repo, sub in _HUB_TOKENIZERS.get(base, []):
        if sub and sub != wanted:
            continue
        pattern = f"{sub}/*" if sub else "*.json"
        try:
            root = Path(
                snapshot_download(repo, allow_patterns=[pattern, "*.txt"], local_files_only=True)
            )
        except Exception:
            continue
        folder = root / sub if sub else root
        if (folder / "vocab.json").exists() or (folder / "tokenizer.json").exists():
            return folder
    return None


# -- the folder -----------------------------------------------------------------------------------
def build_config_folder(
    checkpoint: str | os.PathLike[str],
    base: str,
    cache_dir: str | os.PathLike[str],
    *,
    references: Iterable[str | os.PathLike[str]] = (),
    prediction_type: str | None = None,
) -> Path:
    """A diffusers folder (configs, tokenizers, scheduler; no weights) that loads
    ``checkpoint`` with ``from_single_file(config=...)``; cached in ``cache_dir``.

    ``references``: installed diffusers folders of the same base (tried in order).
    Raises :class:`ConfigUnavailable` naming what is missing.
    """
    shapes, _ = read_safetensors_header(checkpoint)
    refs = [Path(r) for r in references if Path(r).is_dir()]
    configs, tokenizers, scheduler = _with_references(infer_configs(shapes, base), refs)
    for part in configs:
        if part.startswith("text_encoder") and part not in tokenizers:
            found = _hub_tokenizer(base, part)
            if found is None:
                name = part.replace("text_encoder", "tokenizer")
                raise ConfigUnavailable(
                    f"a {base} checkpoint holds no {name}: install a diffusers model of base "
                    f"{base!r} (its {name} is used when its text encoder has the same "
                    "shapes) or put the family's repo in the local Hugging Face cache, then "
                    "install this file again; or pass config= a diffusers folder"
                )
            tokenizers[part] = found
    if scheduler is None:
        scheduler = {
            **_BETAS,
            "num_train_timesteps": 1000,
            "steps_offset": 1,
            "clip_sample": False,
            "timestep_spacing": "leading",
            "prediction_type": prediction_type or "epsilon",
            **_SCHEDULERS[base],
        }
    elif prediction_type:
        scheduler = {**scheduler, "prediction_type": prediction_type}
    return _write(Path(cache_dir), base, configs, tokenizers, scheduler)


def _write(
    cache_dir: Path,
    base: str,
    configs: dict[str, dict[str, Any]],
    tokenizers: dict[str, Path],
    scheduler: dict[str, Any],
) -> Path:
    digest = hashlib.sha256(json.dumps([configs, scheduler], sort_keys=True).encode())
    for part in sorted(tokenizers):
        for f in sorted(tokenizers[part].iterdir()):
            if f.is_file():
                digest.update(f.name.encode() + f.read_bytes())
    dest = cache_dir / f"{base}-{digest.hexdigest()[:16]}"
    if dest.is_dir():
        return dest
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=cache_dir))
    try:
        for part, cfg in configs.items():
            (tmp / part).mkdir()
            (tmp / part / "config.json").write_text(json.dumps(cfg, indent=1))
        for part, src in tokenizers.items():
            shutil.copytree(src, tmp / part.replace("text_encoder", "tokenizer"))
        (tmp / "scheduler").mkdir()
        (tmp / "scheduler" / "scheduler_config.json").write_text(json.dumps(scheduler, indent=1))
        (tmp / "model_index.json").write_text(json.dumps(_model_index(base, configs), indent=1))
        os.replace(tmp, dest)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not dest.is_dir():  # another process won the race, or a real failure
            raise
    return dest


def _model_index(base: str, configs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    xl = base.startswith("sdxl")
    index: dict[str, Any] = {
        "_class_name": "StableDiffusionXLPipeline" if xl else "StableDiffusionPipeline",
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
        "scheduler": ["diffusers", _SCHEDULERS[base]["_class_name"]],
    }
    for part, cfg in configs.items():
        if part.startswith("text_encoder"):
            index[part] = ["transformers", cfg["architectures"][0]]
            index[part.replace("text_encoder", "tokenizer")] = ["transformers", "CLIPTokenizer"]
    return index
