"""CogView4 nodes with InvokeAI 6.11.1's type ids, fields and versions.

``cogview4_model_loader`` splits a CogView4 diffusers folder into transformer, GLM encoder
and VAE references; ``cogview4_text_encoder`` encodes a prompt with GLM;
``cogview4_denoise`` runs the flow-matching loop (txt2img, img2img, inpaint mask);
``cogview4_i2l`` / ``cogview4_l2i`` go through the 16-channel VAE.
"""

from invoke_nb.nodes.diffusion.cogview4 import denoise, loader, text_encoder, vae

__all__ = ["denoise", "loader", "text_encoder", "vae"]
