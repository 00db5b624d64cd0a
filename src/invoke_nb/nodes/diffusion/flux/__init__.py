"""FLUX.1 nodes with InvokeAI 6.11.1's type ids, fields and versions.

Importing the package registers them: the model loader, prompt encoder, denoise (and its
metadata variant), VAE encode/decode and the LoRA loaders.
"""

from invoke_nb.nodes.diffusion.flux import denoise, loaders, text_vae

__all__ = ["denoise", "loaders", "text_vae"]
