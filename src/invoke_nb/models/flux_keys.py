"""FLUX.1 transformer key names: Black Forest Labs' single-file layout <-> diffusers'.

BFL checkpoints (and InvokeAI's own FLUX model) fuse the attention projections: a double
block's ``img_attn.qkv`` is diffusers' ``to_q``/``to_k``/``to_v`` stacked by rows, a single
block's ``linear1`` is ``to_q``/``to_k``/``to_v``/``proj_mlp``. The final modulation stores
(shift, scale) where diffusers stores (scale, shift). One table serves both directions and
the LoRA converters (a LoRA on a fused layer splits by the same row ranges).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = [
    "bfl_to_diffusers",
    "diffusers_to_bfl",
    "flux_config_from_bfl",
    "module_map",
    "strip_bfl_prefix",
]

_TOP = {
    "img_in": "x_embedder",
    "txt_in": "context_embedder",
    "time_in.in_layer": "time_text_embed.timestep_embedder.linear_1",
    "time_in.out_layer": "time_text_embed.timestep_embedder.linear_2",
    "vector_in.in_layer": "time_text_embed.text_embedder.linear_1",
    "vector_in.out_layer": "time_text_embed.text_embedder.linear_2",
    "guidance_in.in_layer": "time_text_embed.guidance_embedder.linear_1",
    "guidance_in.out_layer": "time_text_embed.guidance_embedder.linear_2",
    "final_layer.linear": "proj_out",
    "final_layer.adaLN_modulation.1": "norm_out.linear",
}
_DOUBLE = {
    "img_mod.lin": ["norm1.linear"],
    "txt_mod.lin": ["norm1_context.linear"],
    "img_attn.qkv": ["attn.to_q", "attn.to_k", "attn.to_v"],
    "txt_attn.qkv": ["attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"],
    "img_attn.proj": ["attn.to_out.0"],
    "txt_attn.proj": ["attn.to_add_out"],
    "img_mlp.0": ["ff.net.0.proj"],
    "img_mlp.2": ["ff.net.2"],
    "txt_mlp.0": ["ff_context.net.0.proj"],
    "txt_mlp.2": ["ff_context.net.2"],
}
_DOUBLE_NORMS = {
    "img_attn.norm.query_norm.scale": "attn.norm_q.weight",
    "img_attn.norm.key_norm.scale": "attn.norm_k.weight",
    "txt_attn.norm.query_norm.scale": "attn.norm_added_q.weight",
    "txt_attn.norm.key_norm.scale": "attn.norm_added_k.weight",
}
_SINGLE = {
    "modulation.lin": ["norm.linear"],
    "linear1": ["attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp"],
    "linear2": ["proj_out"],
}
_SINGLE_NORMS = {
    "norm.query_norm.scale": "attn.norm_q.weight",
    "norm.key_norm.scale": "attn.norm_k.weight",
}
_PREFIXES = ("model.diffusion_model.", "diffusion_model.")


def strip_bfl_prefix(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the ``model.diffusion_model.`` prefix some BFL-layout files carry."""
    out = {}
    for k, v in sd.items():
        for p in _PREFIXES:
            if k.startswith(p):
                k = k[len(p) :]
                break
        out[k] = v
    return out


def _count(keys: list[str], pattern: str) -> int:
    found = {int(m[1]) for k in keys if (m := re.match(pattern, k))}
    return max(found) + 1 if found else 0


def module_map(n_double: int, n_single: int) -> dict[str, list[str]]:
    """BFL module name -> the diffusers module names it fuses, in row order."""
    out: dict[str, list[str]] = {k: [v] for k, v in _TOP.items()}
    for i in range(n_double):
        for b, ds in _DOUBLE.items():
            out[f"double_blocks.{i}.{b}"] = [f"transformer_blocks.{i}.{d}" for d in ds]
    for i in range(n_single):
        for b, ds in _SINGLE.items():
            out[f"single_blocks.{i}.{b}"] = [f"single_transformer_blocks.{i}.{d}" for d in ds]
    return out


def _norm_map(n_double: int, n_single: int) -> dict[str, str]:
    out = {}
    for i in range(n_double):
        for b, d in _DOUBLE_NORMS.items():
            out[f"double_blocks.{i}.{b}"] = f"transformer_blocks.{i}.{d}"
    for i in range(n_single):
        for b, d in _SINGLE_NORMS.items():
            out[f"single_blocks.{i}.{b}"] = f"single_transformer_blocks.{i}.{d}"
    return out


def _swap_halves(t: torch.Tensor) -> torch.Tensor:
    import torch

    a, b = t.chunk(2, dim=0)
    return torch.cat([b, a], dim=0)


def _split_sizes(total: int, n: int, inner: int) -> list[int]:
    """Row sizes of a fused layer: q, k, v are ``inner`` rows each, the rest is the MLP."""
    return [inner] * 3 + ([total - 3 * inner] if n == 4 else [])


def bfl_to_diffusers(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A BFL-layout FLUX.1 transformer state dict in diffusers' key names."""
    sd = strip_bfl_prefix(sd)
    keys = list(sd)
    n_double = _count(keys, r"double_blocks\.(\d+)\.")
    n_single = _count(keys, r"single_blocks\.(\d+)\.")
    inner = sd["img_in.weight"].shape[0]
    out: dict[str, torch.Tensor] = {}
    for bfl, targets in module_map(n_double, n_single).items():
        for param in ("weight", "bias"):
            t = sd.get(f"{bfl}.{param}")
            if t is None:
                continue
            if bfl == "final_layer.adaLN_modulation.1":
                t = _swap_halves(t)
            if len(targets) == 1:
                out[f"{targets[0]}.{param}"] = t
            else:
                parts = t.split(_split_sizes(t.shape[0], len(targets), inner), dim=0)
                for name, part in zip(targets, parts, strict=True):
                    out[f"{name}.{param}"] = part.contiguous()
    for bfl, d in _norm_map(n_double, n_single).items():
        if bfl in sd:
            out[d] = sd[bfl]
    return out


def diffusers_to_bfl(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A diffusers FLUX.1 transformer state dict in BFL's single-file key names."""
    import torch

    keys = list(sd)
    n_double = _count(keys, r"transformer_blocks\.(\d+)\.")
    n_single = _count(keys, r"single_transformer_blocks\.(\d+)\.")
    out: dict[str, torch.Tensor] = {}
    for bfl, targets in module_map(n_double, n_single).items():
        for param in ("weight", "bias"):
            parts = [sd.get(f"{t}.{param}") for t in targets]
            if any(p is None for p in parts):
                continue
            t = torch.cat(parts, dim=0) if len(parts) > 1 else parts[0]
            if bfl == "final_layer.adaLN_modulation.1":
                t = _swap_halves(t)
            out[f"{bfl}.{param}"] = t.contiguous()
    for bfl, d in _norm_map(n_double, n_single).items():
        if d in sd:
            out[bfl] = sd[d]
    return out


def flux_config_from_bfl(shapes: dict[str, tuple[int, ...]]) -> dict[str, object]:
    """diffusers' FluxTransformer2DModel config read off a BFL checkpoint's tensor shapes.

    The rotary split of the head width is not stored in the file; FLUX.1 uses
    (16, 56, 56) for 128-wide heads, and we keep those proportions for other widths.
    """
    shapes = {k[len(p) :] if k.startswith(p) else k: v for k, v in shapes.items() for p in ("",)}
    for p in _PREFIXES:
        shapes = {(k[len(p) :] if k.startswith(p) else k): v for k, v in shapes.items()}
    keys = list(shapes)
    head = shapes["double_blocks.0.img_attn.norm.query_norm.scale"][0]
    inner = shapes["img_in.weight"][0]
    rope = [head // 8, head * 7 // 16, head * 7 // 16]
    return {
        "_class_name": "FluxTransformer2DModel",
        "patch_size": 1,
        "in_channels": shapes["img_in.weight"][1],
        "out_channels": shapes["final_layer.linear.weight"][0],
        "num_layers": _count(keys, r"double_blocks\.(\d+)\."),
        "num_single_layers": _count(keys, r"single_blocks\.(\d+)\."),
        "attention_head_dim": head,
        "num_attention_heads": inner // head,
        "joint_attention_dim": shapes["txt_in.weight"][1],
        "pooled_projection_dim": shapes["vector_in.in_layer.weight"][1],
        "guidance_embeds": "guidance_in.in_layer.weight" in shapes,
        "axes_dims_rope": rope,
    }
