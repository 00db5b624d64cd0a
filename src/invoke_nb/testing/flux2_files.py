"""Write tiny FLUX.2 single files (BFL layout) from a tiny diffusers Klein folder.

Black Forest Labs publish Klein transformers and the FLUX.2 autoencoder as single
``.safetensors`` files in their own key names: double blocks with fused ``qkv``
projections (``double_blocks.N.img_attn.qkv``), single blocks with one ``linear1``, shared
modulations ``double_stream_modulation_img.lin``, the final modulation as (shift, scale);
the VAE in the LDM names (``encoder.down.N.block.M``) with its quant convs inside the
encoder and decoder and the latent batch-norm as ``bn.*``. Tests write such files from the
diffusers models to check that loading them gives the same model back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["make_flux2_single_files", "to_scaled_fp8", "transformer_to_bfl", "vae_to_bfl"]

_TOP = {
    "x_embedder": "img_in",
    "context_embedder": "txt_in",
    "time_guidance_embed.timestep_embedder.linear_1": "time_in.in_layer",
    "time_guidance_embed.timestep_embedder.linear_2": "time_in.out_layer",
    "time_guidance_embed.guidance_embedder.linear_1": "guidance_in.in_layer",
    "time_guidance_embed.guidance_embedder.linear_2": "guidance_in.out_layer",
    "double_stream_modulation_img.linear": "double_stream_modulation_img.lin",
    "double_stream_modulation_txt.linear": "double_stream_modulation_txt.lin",
    "single_stream_modulation.linear": "single_stream_modulation.lin",
    "proj_out": "final_layer.linear",
}
_DOUBLE = {
    "attn.norm_q.weight": "img_attn.norm.query_norm.scale",
    "attn.norm_k.weight": "img_attn.norm.key_norm.scale",
    "attn.norm_added_q.weight": "txt_attn.norm.query_norm.scale",
    "attn.norm_added_k.weight": "txt_attn.norm.key_norm.scale",
    "attn.to_out.0.weight": "img_attn.proj.weight",
    "attn.to_add_out.weight": "txt_attn.proj.weight",
    "ff.linear_in.weight": "img_mlp.0.weight",
    "ff.linear_out.weight": "img_mlp.2.weight",
    "ff_context.linear_in.weight": "txt_mlp.0.weight",
    "ff_context.linear_out.weight": "txt_mlp.2.weight",
}
_QKV = {
    "img_attn.qkv.weight": ("attn.to_q.weight", "attn.to_k.weight", "attn.to_v.weight"),
    "txt_attn.qkv.weight": (
        "attn.add_q_proj.weight",
        "attn.add_k_proj.weight",
        "attn.add_v_proj.weight",
    ),
}
_SINGLE = {
    "attn.to_qkv_mlp_proj.weight": "linear1.weight",
    "attn.to_out.weight": "linear2.weight",
    "attn.norm_q.weight": "norm.query_norm.scale",
    "attn.norm_k.weight": "norm.key_norm.scale",
}


def transformer_to_bfl(sd: dict[str, Any]) -> dict[str, Any]:
    """A ``Flux2Transformer2DModel`` state dict in BFL's single-file names."""
    import torch

    out: dict[str, Any] = {}
    blocks = {k.split(".")[1] for k in sd if k.startswith("transformer_blocks.")}
    for n in sorted(blocks):
        pre = f"transformer_blocks.{n}."
        for bfl, parts in _QKV.items():
            out[f"double_blocks.{n}.{bfl}"] = torch.cat([sd[pre + p] for p in parts])
    for key, value in sd.items():
        head, _, rest = key.partition(".")
        if head == "transformer_blocks":
            n, _, name = rest.partition(".")
            if name in _DOUBLE:
                out[f"double_blocks.{n}.{_DOUBLE[name]}"] = value
            elif not any(name in parts for parts in _QKV.values()):
                raise KeyError(f"no BFL name for FLUX.2 key {key!r}")
        elif head == "single_transformer_blocks":
            n, _, name = rest.partition(".")
            out[f"single_blocks.{n}.{_SINGLE[name]}"] = value
        elif key == "norm_out.linear.weight":  # diffusers (scale, shift) -> BFL (shift, scale)
            scale, shift = value.chunk(2, dim=0)
            out["final_layer.adaLN_modulation.1.weight"] = torch.cat([shift, scale])
        else:
            module, _, param = key.rpartition(".")
            out[f"{_TOP[module]}.{param}"] = value
    return out


def vae_to_bfl(sd: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    """An ``AutoencoderKLFlux2`` state dict in BFL's ``ae.safetensors`` names."""
    from invoke_nb.testing.ldm_keys import vae_to_ldm

    own = {k: v for k, v in sd.items() if k.startswith("bn.")}
    rest = {k: v for k, v in sd.items() if not k.startswith("bn.")}
    out = {}
    for k, v in vae_to_ldm(rest, cfg, prefix="").items():
        if k.startswith("quant_conv."):
            k = "encoder." + k
        elif k.startswith("post_quant_conv."):
            k = "decoder." + k
        out[k] = v
    out.update({k: v for k, v in own.items() if not k.endswith("num_batches_tracked")})
    return out


def to_scaled_fp8(sd: dict[str, Any]) -> dict[str, Any]:
    """ComfyUI's "scaled fp8" layout: each 2-D ``.weight`` as ``float8_e4m3fn`` divided by a
    per-tensor ``weight_scale`` (its largest magnitude over fp8's 448), plus the scalar
    ``scaled_fp8`` marker; norms stay as they are."""
    import torch

    out: dict[str, Any] = {"scaled_fp8": torch.zeros(0, dtype=torch.float8_e4m3fn)}
    for key, value in sd.items():
        if key.endswith(".weight") and value.dim() == 2:
            scale = value.abs().max().clamp(min=1e-12) / 448.0
            out[key] = (value / scale).to(torch.float8_e4m3fn)
            out[key + "_scale"] = scale.reshape(())
        else:
            out[key] = value
    return out


def make_flux2_single_files(folder: Path, dest: Path) -> dict[str, Path]:
    """BFL-layout single files of a tiny Klein folder's transformer and VAE, and the VAE
    in diffusers' names as one file, and the transformer in ComfyUI's scaled fp8:
    ``{"transformer", "vae", "vae_diffusers", "transformer_fp8"}`` paths."""
    import json

    from safetensors.torch import load_file, save_file

    folder, dest = Path(folder), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    tr = load_file(str(folder / "transformer" / "diffusion_pytorch_model.safetensors"))
    vae = load_file(str(folder / "vae" / "diffusion_pytorch_model.safetensors"))
    cfg = json.loads((folder / "vae" / "config.json").read_text(encoding="utf-8"))
    paths = {
        "transformer": dest / "flux-2-klein-tiny.safetensors",
        "vae": dest / "flux2-vae-tiny.safetensors",
        "vae_diffusers": dest / "flux2-vae-tiny-diffusers.safetensors",
        "transformer_fp8": dest / "flux-2-klein-tiny-fp8.safetensors",
    }
    bfl = transformer_to_bfl(tr)
    save_file({k: v.contiguous() for k, v in bfl.items()}, paths["transformer"])
    save_file({k: v.contiguous() for k, v in to_scaled_fp8(bfl).items()}, paths["transformer_fp8"])
    save_file({k: v.contiguous() for k, v in vae_to_bfl(vae, cfg).items()}, paths["vae"])
    save_file(vae, paths["vae_diffusers"])
    return paths
