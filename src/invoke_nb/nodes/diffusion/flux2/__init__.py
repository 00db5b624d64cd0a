"""FLUX.2 Klein nodes: model loader, LoRA loaders, Qwen3 prompt encoder, denoise, VAE
encode/decode."""

from invoke_nb.nodes.diffusion.flux2 import denoise, lora_loader, model_loader, text_encoder, vae

__all__ = ["denoise", "lora_loader", "model_loader", "text_encoder", "vae"]
