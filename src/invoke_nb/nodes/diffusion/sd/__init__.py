"""Stable Diffusion 1.x/2.x/SDXL nodes with InvokeAI's type ids, fields and versions.

Importing the package registers the nodes: model loaders, prompts (compel), noise,
denoise, VAE decode/encode, latent ops, inpaint masks, LoRA/seamless/clip-skip modifiers,
core metadata and prompts from a file.
"""

from invoke_nb.nodes.diffusion.sd import (
    latent_ops,
    latents,
    masks,
    misc,
    model_loaders,
    patches,
    prompts,
    vae,
)

__all__ = ["latent_ops", "latents", "masks", "misc", "model_loaders", "patches", "prompts", "vae"]
