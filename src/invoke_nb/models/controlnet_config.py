"""The diffusers config of a single-file SD1/SD2/SDXL ControlNet, read off its tensors.

ControlNet files come in three key layouts: lllyasviel's v1.1 files (``input_blocks.*``,
``zero_convs.*``, ``input_hint_block.*``, ``middle_block_out.*`` with no prefix), the v1.0
files (the same under ``control_model.``, sometimes beside a whole SD model) and diffusers
names saved as one file (``controlnet_cond_embedding.*``, ``down_blocks.*``). diffusers'
``from_single_file`` needs a config for each, which offline means a local folder; the shapes
decide every width, depth and block layout, so we build it here instead.

What shapes do not show (attention heads, norm groups, the size-embedding width of SDXL) is
taken from an installed diffusers UNet or ControlNet whose shapes match (a ControlNet is a
copy of its UNet's encoder), else from what SD1/SD2/SDXL use. Torch-free.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from invoke_nb.models.checkpoint_config import ConfigUnavailable, unet_config
from invoke_nb.models.probe import Shapes

__all__ = [
    "controlnet_config",
    "controlnet_layout",
    "file_shapes",
    "hint_indices",
    "with_reference",
    "write_controlnet_config",
]

# Fields the shapes decide; a reference whose values agree lends the others.
_VISIBLE = (
    "in_channels",
    "block_out_channels",
    "layers_per_block",
    "down_block_types",
    "cross_attention_dim",
    "use_linear_projection",
    "transformer_layers_per_block",
    "addition_embed_type",
)
_BORROWED = (
    "attention_head_dim",
    "num_attention_heads",
    "norm_num_groups",
    "norm_eps",
    "upcast_attention",
    "addition_time_embed_dim",
    "flip_sin_to_cos",
    "freq_shift",
    "resnet_time_scale_shift",
    "only_cross_attention",
)


def controlnet_layout(shapes: Shapes) -> tuple[str, str]:
    """``("ldm", prefix)`` or ``("diffusers", "")`` for a ControlNet's keys."""
    if "controlnet_cond_embedding.conv_in.weight" in shapes:
        return "diffusers", ""
    for prefix in ("", "control_model."):
        if prefix + "input_hint_block.0.weight" in shapes:
            return "ldm", prefix
    raise ConfigUnavailable("no ControlNet tensors (input_hint_block / controlnet_cond_embedding)")


def hint_indices(shapes: Shapes, prefix: str) -> list[int]:
    """The conv layers of the LDM hint encoder (``input_hint_block.N``), in order."""
    pat = re.compile(re.escape(prefix) + r"input_hint_block\.(\d+)\.weight$")
    return sorted(int(m[1]) for k in shapes if (m := pat.match(k)))


def _ldm(shapes: Shapes, base: str, prefix: str) -> dict[str, Any]:
    unet = unet_config(shapes, base, prefix)
    hint = hint_indices(shapes, prefix)
    # conv_in, then per level a same-width conv and a stride-2 conv, then conv_out
    widths = [shapes[f"{prefix}input_hint_block.{hint[0]}.weight"][0]]
    widths += [shapes[f"{prefix}input_hint_block.{i}.weight"][0] for i in hint[2:-1:2]]
    cfg = {k: unet[k] for k in _VISIBLE + _BORROWED if k in unet}
    cfg["conditioning_channels"] = shapes[f"{prefix}input_hint_block.{hint[0]}.weight"][1]
    cfg["conditioning_embedding_out_channels"] = widths
    if unet.get("projection_class_embeddings_input_dim"):
        cfg["projection_class_embeddings_input_dim"] = unet["projection_class_embeddings_input_dim"]
    return cfg


def _indices(shapes: Shapes, prefix: str) -> list[int]:
    found = {int(m[1]) for k in shapes if (m := re.match(re.escape(prefix) + r"(\d+)\.", k))}
    return sorted(found)


def _diffusers(shapes: Shapes, base: str) -> dict[str, Any]:
    levels = _indices(shapes, "down_blocks.")
    channels = [shapes[f"down_blocks.{i}.resnets.0.conv2.weight"][0] for i in levels]
    attention = [f"down_blocks.{i}.attentions.0.proj_in.weight" in shapes for i in levels]
    depth = [
        len(_indices(shapes, f"down_blocks.{i}.attentions.0.transformer_blocks.")) if a else 1
        for i, a in zip(levels, attention, strict=True)
    ]
    key_k = next(k for k in shapes if k.endswith("attn2.to_k.weight"))
    proj_in = next(k for k in shapes if k.endswith(".proj_in.weight"))
    blocks = _indices(shapes, "controlnet_cond_embedding.blocks.")
    cfg: dict[str, Any] = {
        "in_channels": shapes["conv_in.weight"][1],
        "block_out_channels": channels,
        "layers_per_block": len(_indices(shapes, "down_blocks.0.resnets.")),
        "down_block_types": ["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attention],
        "cross_attention_dim": shapes[key_k][1],
        "use_linear_projection": len(shapes[proj_in]) == 2,
        "transformer_layers_per_block": depth if len(set(depth)) > 1 else depth[0],
        "attention_head_dim": 8 if base == "sd-1" else [max(1, c // 64) for c in channels],
        "norm_num_groups": 32,
        "conditioning_channels": shapes["controlnet_cond_embedding.conv_in.weight"][1],
        "conditioning_embedding_out_channels": [
            shapes["controlnet_cond_embedding.conv_in.weight"][0],
            *(shapes[f"controlnet_cond_embedding.blocks.{j}.weight"][0] for j in blocks[1::2]),
        ],
        "addition_embed_type": None,
    }
    label = shapes.get("add_embedding.linear_1.weight")
    if label is not None:
        cfg.update(
            addition_embed_type="text_time",
            addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=label[1],
        )
    return cfg


def controlnet_config(shapes: Shapes, base: str) -> dict[str, Any]:
    """A ``ControlNetModel`` config (as JSON) for the ControlNet tensors in ``shapes``."""
    if base not in ("sd-1", "sd-2", "sdxl"):
        raise ConfigUnavailable(f"no ControlNet config can be inferred for base {base!r}")
    layout, prefix = controlnet_layout(shapes)
    try:
        cfg = _ldm(shapes, base, prefix) if layout == "ldm" else _diffusers(shapes, base)
    except (KeyError, IndexError, StopIteration) as exc:
        raise ConfigUnavailable(
            f"the tensors do not have a {base} ControlNet's layout ({exc!r} missing)"
        ) from None
    return {"_class_name": "ControlNetModel", **cfg}


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


_DEFAULTS = {  # ControlNetModel's and UNet2DConditionModel's defaults for unsaved fields
    "in_channels": 4,
    "layers_per_block": 2,
    "cross_attention_dim": 1280,
    "use_linear_projection": False,
    "transformer_layers_per_block": 1,
    "addition_embed_type": None,
}


def _same(a: Any, b: Any) -> bool:
    norm = [list(v) if isinstance(v, tuple) else v for v in (a, b)]
    for i, v in enumerate(norm):  # [1, 1, 1] and 1 say the same
        if isinstance(v, list) and v and len(set(map(str, v))) == 1 and not isinstance(v[0], str):
            norm[i] = v[0]
    return norm[0] == norm[1]


def with_reference(cfg: dict[str, Any], folders: Iterable[str | Path]) -> dict[str, Any]:
    """``cfg`` with the fields shapes cannot show taken from the first installed diffusers
    UNet (a main model's ``unet/``) or ControlNet folder whose visible fields agree."""
    for folder in folders:
        folder = Path(folder)
        for candidate in (folder / "unet" / "config.json", folder / "config.json"):
            theirs = _read(candidate)
            if theirs is None or theirs.get("_class_name") not in (
                "UNet2DConditionModel",
                "ControlNetModel",
            ):
                continue
            if all(_same(cfg.get(k), theirs.get(k, _DEFAULTS.get(k))) for k in _VISIBLE):
                borrowed = {k: theirs[k] for k in _BORROWED if k in theirs}
                return {**cfg, **borrowed}
    return cfg


def file_shapes(path: str | os.PathLike[str]) -> Shapes:
    """Tensor shapes of a safetensors file (header only) or a pickle (the install scanned
    it already; torch is imported for it)."""
    from invoke_nb.models.probe import PICKLE_SUFFIXES, _pickle_shapes, read_safetensors_header

    path = Path(path)
    if path.suffix in PICKLE_SUFFIXES:
        return _pickle_shapes(path)
    return read_safetensors_header(path)[0]


def write_controlnet_config(
    checkpoint: str | os.PathLike[str],
    base: str,
    cache_dir: str | os.PathLike[str],
    *,
    references: Iterable[str | os.PathLike[str]] = (),
) -> Path:
    """A folder holding the ``config.json`` of ``checkpoint`` (a single-file ControlNet),
    shared by every file with the same config under ``cache_dir``."""
    cfg = with_reference(controlnet_config(file_shapes(checkpoint), base), references)
    text = json.dumps(cfg, indent=1, sort_keys=True)
    dest = Path(cache_dir) / f"controlnet-{base}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
    if not (dest / "config.json").is_file():
        dest.mkdir(parents=True, exist_ok=True)
        tmp = dest / f".config-{os.getpid()}.json"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, dest / "config.json")
    return dest
