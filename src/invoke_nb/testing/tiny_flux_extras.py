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

__all__ = ["make_flux_controlnet", "make_flux_fill"]


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


def make_flux_controlnet(dest: Path, *, seed: int = 19) -> Path:
    """A diffusers ``FluxControlNetModel`` folder (InstantX layout: reads packed VAE latents
    of the control image) sized for the tiny FLUX transformer, every weight non-zero."""
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
    )
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    _init_(model).save_pretrained(dest, safe_serialization=True)
    return dest
