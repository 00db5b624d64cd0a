"""Tiny random models for FLUX.1's extras: Fill (and more as they arrive), built offline.

A FLUX Fill transformer reads, per token, the 64 packed noise channels, 64 packed channels of
the masked image's latents and 256 of the mask (8x8 pixels per latent pixel, 2x2 patches):
384 input channels, 64 out. The folder is the tiny dev model's with that transformer and
``FluxFillPipeline`` as its class, so our probe calls it ``dev_fill`` and diffusers loads it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from invoke_nb.testing import tiny_flux

__all__ = [
    "SIGLIP_NAME",
    "make_flux_controlnet",
    "make_flux_controlnet_file",
    "make_flux_fill",
    "make_flux_ip_adapter",
    "make_flux_redux",
    "make_siglip",
]


def make_flux_fill(dest: Path, *, t5: Path, clip: Path, vae: Path, seed: int = 17) -> Path:
    """A diffusers ``FluxFillPipeline`` folder (guidance-embedding dev transformer, 384 in)."""
    dest = tiny_flux.make_flux(Path(dest), "dev", t5=t5, clip=clip, vae=vae, seed=seed)
    shutil.rmtree(dest / "transformer")
    tiny_flux._transformer(True, seed, in_channels=384).save_pretrained(
        dest / "transformer", safe_serialization=True
    )
    index_file = dest / "model_index.json"
    index = json.loads(index_file.read_text())
    index_file.write_text(json.dumps({**index, "_class_name": "FluxFillPipeline"}, indent=1))
    return dest


def make_flux_controlnet(dest: Path, *, seed: int = 19, num_mode: int | None = None) -> Path:
    """A diffusers ``FluxControlNetModel`` folder (InstantX layout: reads packed VAE latents
    of the control image) sized for the tiny FLUX transformer, every weight non-zero
    (``num_mode``: a Union ControlNet with that many control modes)."""
    import torch
    from diffusers import FluxControlNetModel

    from invoke_nb.testing.tiny_models import _init_

    torch.manual_seed(seed)
    model = FluxControlNetModel(
        patch_size=1,
        in_channels=64,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=tiny_flux.HEAD,
        num_attention_heads=tiny_flux.HIDDEN // tiny_flux.HEAD,
        joint_attention_dim=tiny_flux.T5_WIDTH,
        pooled_projection_dim=768,
        guidance_embeds=True,
        axes_dims_rope=(tiny_flux.HEAD // 8, tiny_flux.HEAD * 7 // 16, tiny_flux.HEAD * 7 // 16),
        num_mode=num_mode,
    )
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    _init_(model).save_pretrained(dest, safe_serialization=True)
    return dest


def make_flux_controlnet_file(dest: Path, folder: Path) -> Path:
    """The weights of a diffusers ControlNet ``folder`` as one InstantX-style file.

    InstantX publishes its FLUX ControlNets as diffusers' own state dict in a single
    ``.safetensors`` (no config beside it); this writes the same from the tiny folder,
    with the file's metadata dropped, so the loader must infer the whole config."""
    from safetensors.torch import load_file, save_file

    sd = load_file(str(Path(folder) / "diffusion_pytorch_model.safetensors"))
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_file(sd, str(dest))
    return dest


SIGLIP_NAME = "SigLIP - google/siglip-so400m-patch14-384"
"""The name InvokeAI installs the Redux image encoder under (and looks it up by).

(The same string as ``nodes.diffusion.flux_extras.redux.SIGLIP_NAME``; testing code does
not import the node modules.)"""


def make_siglip(dest: Path, *, width: int = 32, seed: int = 23) -> Path:
    """A tiny SigLIP vision tower with its image processor (32 px, 8 px patches: 16 tokens)."""
    import torch
    from transformers import SiglipImageProcessor, SiglipVisionConfig, SiglipVisionModel

    from invoke_nb.testing.tiny_models import _init_

    torch.manual_seed(seed)
    cfg = SiglipVisionConfig(
        hidden_size=width,
        intermediate_size=2 * width,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
    )
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    _init_(SiglipVisionModel(cfg)).save_pretrained(dest, safe_serialization=True)
    SiglipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(dest)
    return dest


def make_flux_redux(dest: Path, *, siglip_width: int = 32, seed: int = 29) -> Path:
    """A tiny Redux projector as one safetensors file (BFL's ``redux_up``/``redux_down``)."""
    import torch
    from diffusers.pipelines.flux.modeling_flux import ReduxImageEncoder
    from safetensors.torch import save_file

    from invoke_nb.testing.tiny_models import _init_

    torch.manual_seed(seed)
    model = _init_(ReduxImageEncoder(redux_dim=siglip_width, txt_in_features=tiny_flux.T5_WIDTH))
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(dest))
    return dest


def make_flux_controlnet_xlabs(dest: Path, *, seed: int = 37) -> tuple[Path, Path]:
    """A tiny XLabs-layout ControlNet file and the same weights as a diffusers folder.

    XLabs ControlNets read the control image itself through a conv stack
    (``input_hint_block``) and have double blocks only, in BFL's key names. Returns
    ``(xlabs_file, diffusers_folder)``.
    """
    import torch
    from diffusers import FluxControlNetModel
    from safetensors.torch import save_file

    from invoke_nb.models.load_flux_extras import diffusers_to_xlabs
    from invoke_nb.testing.tiny_models import _init_

    torch.manual_seed(seed)
    model = FluxControlNetModel(
        patch_size=2,  # packs the input-hint output into 2x2 patches (XLabs' config)
        in_channels=64,
        num_layers=2,
        num_single_layers=0,
        attention_head_dim=tiny_flux.HEAD,
        num_attention_heads=tiny_flux.HIDDEN // tiny_flux.HEAD,
        joint_attention_dim=tiny_flux.T5_WIDTH,
        pooled_projection_dim=768,
        guidance_embeds=True,
        axes_dims_rope=(tiny_flux.HEAD // 8, tiny_flux.HEAD * 7 // 16, tiny_flux.HEAD * 7 // 16),
        conditioning_embedding_channels=16,
    )
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    folder = dest / "diffusers"
    _init_(model).save_pretrained(folder, safe_serialization=True)
    xlabs = dest / "flux-canny-controlnet-xlabs.safetensors"
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(diffusers_to_xlabs(sd), str(xlabs))
    return xlabs, folder


def make_flux_ip_adapter(
    dest: Path,
    *,
    clip_dim: int = 32,
    context: int = 48,
    tokens: int = 4,
    double_blocks: int = 1,
    seed: int = 31,
) -> Path:
    """A tiny XLabs FLUX IP-Adapter file (their key names; ``clip_dim`` is the CLIP vision
    projection width, the k/v projections are as wide as the tiny transformer)."""
    import torch
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(seed)

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g) / shape[-1] ** 0.5

    sd = {
        "ip_adapter_proj_model.proj.weight": r(tokens * context, clip_dim),
        "ip_adapter_proj_model.proj.bias": r(tokens * context),
        "ip_adapter_proj_model.norm.weight": 1.0 + 0.1 * r(context),
        "ip_adapter_proj_model.norm.bias": 0.1 * r(context),
    }
    for i in range(double_blocks):
        for kv in ("k", "v"):
            name = f"double_blocks.{i}.processor.ip_adapter_double_stream_{kv}_proj"
            sd[f"{name}.weight"] = r(tiny_flux.HIDDEN, context)
            sd[f"{name}.bias"] = r(tiny_flux.HIDDEN)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_file(sd, dest)
    return dest
