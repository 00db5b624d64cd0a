"""Stable Diffusion 1.x/2.x/SDXL nodes with InvokeAI's type ids, fields and versions.

Importing the package registers the nodes: model loaders, prompts (compel), noise,
denoise, VAE decode/encode, latent ops, inpaint masks, LoRA/seamless/clip-skip modifiers,
core metadata and prompts from a file.
"""

from invoke_nb.nodes.diffusion import latents, misc, model_loaders, prompts
from invoke_nb.nodes.diffusion.fields import CLIPField, LoRAField, UNetField, VAEField
from invoke_nb.nodes.diffusion.schedulers import SCHEDULER_NAMES

__all__ = [
    "SCHEDULER_NAMES",
    "CLIPField",
    "LoRAField",
    "UNetField",
    "VAEField",
    "latents",
    "misc",
    "model_loaders",
    "prompts",
]
