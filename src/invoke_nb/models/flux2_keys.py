"""FLUX.2 transformer layer names: Black Forest Labs' layout -> diffusers' Flux2Transformer2DModel.

LoRAs for FLUX.2 Klein come with BFL module names (kohya ``lora_unet_double_blocks_0_...``,
AI-Toolkit ``diffusion_model.double_blocks.0...``) or diffusers' own. BFL fuses a double
block's q, k and v (``img_attn.qkv``) where diffusers keeps three layers; a single block's
``linear1`` stays fused in diffusers too (``attn.to_qkv_mlp_proj``). Modulations are shared
by all blocks of a stream (``double_stream_modulation_img.lin``). The final modulation stores
(shift, scale) where diffusers stores (scale, shift), as in FLUX.1.
"""

from __future__ import annotations

__all__ = ["flux2_module_map"]

_TOP = {
    "img_in": "x_embedder",
    "txt_in": "context_embedder",
    "time_in.in_layer": "time_guidance_embed.timestep_embedder.linear_1",
    "time_in.out_layer": "time_guidance_embed.timestep_embedder.linear_2",
    "guidance_in.in_layer": "time_guidance_embed.guidance_embedder.linear_1",
    "guidance_in.out_layer": "time_guidance_embed.guidance_embedder.linear_2",
    "double_stream_modulation_img.lin": "double_stream_modulation_img.linear",
    "double_stream_modulation_txt.lin": "double_stream_modulation_txt.linear",
    "single_stream_modulation.lin": "single_stream_modulation.linear",
    "final_layer.linear": "proj_out",
    "final_layer.adaLN_modulation.1": "norm_out.linear",
}
_DOUBLE = {
    "img_attn.qkv": ["attn.to_q", "attn.to_k", "attn.to_v"],
    "txt_attn.qkv": ["attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"],
    "img_attn.proj": ["attn.to_out.0"],
    "txt_attn.proj": ["attn.to_add_out"],
    "img_mlp.0": ["ff.linear_in"],
    "img_mlp.2": ["ff.linear_out"],
    "txt_mlp.0": ["ff_context.linear_in"],
    "txt_mlp.2": ["ff_context.linear_out"],
}
_SINGLE = {"linear1": ["attn.to_qkv_mlp_proj"], "linear2": ["attn.to_out"]}


def flux2_module_map(n_double: int, n_single: int) -> dict[str, list[str]]:
    """BFL module name -> the diffusers module names it fuses, in row order."""
    out: dict[str, list[str]] = {k: [v] for k, v in _TOP.items()}
    for i in range(n_double):
        for b, ds in _DOUBLE.items():
            out[f"double_blocks.{i}.{b}"] = [f"transformer_blocks.{i}.{d}" for d in ds]
    for i in range(n_single):
        for b, ds in _SINGLE.items():
            out[f"single_blocks.{i}.{b}"] = [f"single_transformer_blocks.{i}.{d}" for d in ds]
    return out
