"""Stable Diffusion 3 / 3.5 nodes with InvokeAI 6.11.1's type ids, fields and versions.

Importing the package registers ``sd3_model_loader``, ``sd3_text_encoder``, ``sd3_denoise``,
``sd3_i2l`` and ``sd3_l2i``. They run on diffusers' ``SD3Transformer2DModel`` and
``AutoencoderKL`` and transformers' CLIP and T5 encoders, each part its own cache entry.
"""

from invoke_nb.nodes.diffusion.sd3 import denoise, loader, text_encoder, vae

__all__ = ["denoise", "loader", "text_encoder", "vae"]
