"""FLUX.2 single files: a Klein transformer in BFL's layout and the FLUX.2 VAE checkpoint.

A single file carries tensors and no config, so both loaders read the config from tensor
shapes and build diffusers' model around it:

- Transformer (``flux-2-klein-4b.safetensors`` and the like, optionally under
  ``model.diffusion_model.``): diffusers' own BFL -> diffusers converter renames the keys
  (fused qkv split, final modulation's shift/scale swapped). Widths, block counts, head size,
  the SwiGLU ratio and the timestep-embedding width are in the shapes; the rotary split is
  not stored (FLUX.2 gives each of its four axes a quarter of a head) nor is the rope base.
  Klein files without a guidance embedder build a model without one. FP8 files (ComfyUI's
  "scaled fp8": ``float8_e4m3fn`` weights with a ``weight_scale`` each, InvokeAI reads them)
  are dequantized to the load dtype first (:func:`dequantize_fp8`).
- VAE (``flux2-vae.safetensors``): the LDM/BFL layout (``encoder.down.N.block.M``, quant
  convs inside ``encoder``/``decoder`` or at the top) goes through diffusers' LDM VAE
  converter; a file already in diffusers' names loads as it is. The batch-norm statistics
  over packed latents (``bn.*``) keep their names. Group-norm counts are not stored: FLUX.2
  uses 32 (4 when the first width is not a multiple of 32, as in tiny test models).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = [
    "dequantize_fp8",
    "flux2_transformer_config",
    "flux2_vae_config",
    "load_flux2_transformer_file",
    "load_flux2_vae_file",
    "vae_to_diffusers",
]

_PREFIXES = ("model.diffusion_model.", "diffusion_model.")


def _count(sd: dict[str, Any], prefix: str) -> int:
    return len({k.split(".")[1] for k in sd if k.startswith(prefix)})


def flux2_transformer_config(sd: dict[str, Any]) -> dict[str, Any]:
    """``Flux2Transformer2DModel`` arguments read from a diffusers-named state dict."""
    hidden, in_channels = sd["x_embedder.weight"].shape
    head = sd["transformer_blocks.0.attn.norm_q.weight"].shape[0]
    mlp_hidden = sd["transformer_blocks.0.ff.linear_in.weight"].shape[0] // 2  # SwiGLU pair
    return dict(
        patch_size=1,
        in_channels=in_channels,
        out_channels=sd["proj_out.weight"].shape[0],
        num_layers=_count(sd, "transformer_blocks."),
        num_single_layers=_count(sd, "single_transformer_blocks."),
        attention_head_dim=head,
        num_attention_heads=hidden // head,
        joint_attention_dim=sd["context_embedder.weight"].shape[1],
        timestep_guidance_channels=sd[
            "time_guidance_embed.timestep_embedder.linear_1.weight"
        ].shape[1],
        mlp_ratio=mlp_hidden / hidden,
        axes_dims_rope=(head // 4,) * 4,
        guidance_embeds="time_guidance_embed.guidance_embedder.linear_1.weight" in sd,
    )


def dequantize_fp8(sd: dict[str, Any]) -> dict[str, Any]:
    """FP8 weights times their ``weight_scale`` (a scalar, per-row or per-block scale) as
    float32; scale tensors, scalar metadata (``input_scale``, ``scaled_fp8``) and
    ComfyUI's ``comfy_quant`` entries are dropped; other float8 tensors become float32."""
    out: dict[str, Any] = {}
    for key, value in sd.items():
        if key.endswith((".weight_scale", ".scale_weight")) or "comfy_quant" in key:
            continue
        if key == "scaled_fp8" or value.dim() == 0:  # markers, input_scale, other metadata
            continue
        scale = sd.get(key + "_scale") if key.endswith(".weight") else None
        if scale is not None:
            w, scale = value.float(), scale.float()
            if scale.dim() > 0 and scale.numel() > 1:  # per-row or per-block scales
                for dim in range(min(scale.dim(), w.dim())):
                    if scale.shape[dim] != w.shape[dim]:
                        scale = scale.repeat_interleave(w.shape[dim] // scale.shape[dim], dim=dim)
            value = w * scale
        elif "float8" in str(value.dtype):
            value = value.float()
        out[key] = value
    return out


def load_flux2_transformer_file(path: Any, dtype: torch.dtype) -> Any:
    """A BFL-layout FLUX.2 transformer file as diffusers' ``Flux2Transformer2DModel``."""
    import torch
    from diffusers import Flux2Transformer2DModel
    from diffusers.loaders.single_file_utils import (
        convert_flux2_transformer_checkpoint_to_diffusers,
    )
    from safetensors.torch import load_file

    sd = dequantize_fp8(load_file(str(path)))
    for prefix in _PREFIXES:
        if any(k.startswith(prefix) for k in sd):
            sd = {k.removeprefix(prefix): v for k, v in sd.items()}
            break
    if "img_in.weight" not in sd:
        raise ValueError("not a BFL-layout FLUX.2 transformer (no img_in.weight tensor)")
    sd = convert_flux2_transformer_checkpoint_to_diffusers(sd)
    with torch.device("meta"):
        model = Flux2Transformer2DModel(**flux2_transformer_config(sd))
    model.load_state_dict({k: v.to(dtype) for k, v in sd.items()}, strict=True, assign=True)
    return model.eval()


def _is_ldm(sd: dict[str, Any]) -> bool:
    return any(k.startswith(("encoder.down.", "decoder.up.", "encoder.mid.")) for k in sd)


def flux2_vae_config(sd: dict[str, Any]) -> dict[str, Any]:
    """``AutoencoderKLFlux2`` arguments read from a diffusers-named VAE state dict."""
    n = _count({k.removeprefix("encoder."): v for k, v in sd.items()}, "down_blocks.")
    widths = [sd[f"encoder.down_blocks.{i}.resnets.0.conv1.weight"].shape[0] for i in range(n)]
    layers = _count(
        {k.removeprefix("encoder.down_blocks.0."): v for k, v in sd.items()}, "resnets."
    )
    latent = sd["decoder.conv_in.weight"].shape[1]
    return dict(
        in_channels=sd["encoder.conv_in.weight"].shape[1],
        out_channels=sd["decoder.conv_out.weight"].shape[0],
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=tuple(widths),
        layers_per_block=layers,
        latent_channels=latent,
        norm_num_groups=32 if widths[0] % 32 == 0 else 4,
        use_quant_conv="quant_conv.weight" in sd,
        use_post_quant_conv="post_quant_conv.weight" in sd,
        mid_block_add_attention=any(".mid_block.attentions." in k for k in sd),
        patch_size=(2, 2),
    )


def vae_to_diffusers(sd: dict[str, Any]) -> dict[str, Any]:
    """A FLUX.2 VAE state dict in diffusers' names (LDM/BFL names converted)."""
    if not _is_ldm(sd):
        return dict(sd)
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    moved = {}
    for k, v in sd.items():
        if k.startswith(("encoder.quant_conv.", "decoder.post_quant_conv.")):
            k = k.split(".", 1)[1]
        moved[k] = v
    n = len({k.split(".")[2] for k in moved if k.startswith("encoder.down.")})
    cfg = {"down_block_types": [0] * n, "up_block_types": [0] * n}
    out = convert_ldm_vae_checkpoint(moved, cfg)
    out.update({k: v for k, v in moved.items() if k.startswith("bn.")})
    return out


def load_flux2_vae_file(path: Any, dtype: torch.dtype) -> Any:
    """A FLUX.2 VAE checkpoint (BFL/LDM or diffusers names) as ``AutoencoderKLFlux2``."""
    import torch
    from diffusers import AutoencoderKLFlux2
    from safetensors.torch import load_file

    sd = vae_to_diffusers(load_file(str(path)))
    if "bn.running_mean" not in sd:
        raise ValueError("not a FLUX.2 VAE (no bn.running_mean batch-norm statistics)")
    sd.setdefault("bn.num_batches_tracked", torch.tensor(0))  # a training counter, unused
    model = AutoencoderKLFlux2(**flux2_vae_config(sd))
    model.load_state_dict(sd, strict=True)
    return model.to(dtype).eval()
