"""Z-Image (Turbo) nodes with InvokeAI 6.11.1's type ids, fields and versions.

``z_image_model_loader`` (transformer + Qwen3 encoder + VAE, each from the main model or
separate models), ``z_image_text_encoder``, ``z_image_seed_variance_enhancer``,
``z_image_denoise`` / ``z_image_denoise_meta`` (Euler, Heun or LCM; img2img; inpaint
mask; LoRAs), ``z_image_i2l`` / ``z_image_l2i``, ``z_image_lora_loader`` and
``z_image_lora_collection_loader``, ``z_image_control`` (diffusers' Z-Image ControlNet).
"""

from invoke_nb.nodes.diffusion.z_image import control, denoise, loaders, text_encoder, vae

__all__ = ["control", "denoise", "loaders", "text_encoder", "vae"]
