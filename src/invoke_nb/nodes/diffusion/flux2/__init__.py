"""FLUX.2 Klein nodes: model loader, Qwen3 prompt encoder, denoise, VAE encode/decode."""

from invoke_nb.nodes.diffusion.flux2 import denoise, model_loader, text_encoder, vae

__all__ = ["denoise", "model_loader", "text_encoder", "vae"]
