"""FLUX prompt encoding and VAE encode/decode nodes.

The prompt runs through T5 (padded to ``t5_max_seq_len`` tokens, last hidden state) and
CLIP-L (77 tokens, pooled output), each borrowed from the model cache on its own. The FLUX
VAE maps images to 16-channel latents shifted and scaled by the VAE's ``shift_factor`` and
``scaling_factor``; encoding samples the latent distribution with a generator seeded 0 and
decoding truncates to 8 bits, both as InvokeAI does.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, Literal

from invoke_nb.nodes.base import Input, InputField, Node, UIHint, node
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.devices import execution_device, precision_name
from invoke_nb.nodes.diffusion.fields import CLIPField, LatentsOutput, VAEField
from invoke_nb.nodes.diffusion.flux.fields import (
    FluxConditioning,
    FluxConditioningField,
    FluxConditioningOutput,
    T5EncoderField,
)
from invoke_nb.nodes.diffusion.lora import patched
from invoke_nb.nodes.diffusion.sd.latents import image_to_tensor
from invoke_nb.nodes.primitives import ImageOutput
from invoke_nb.nodes.types import BoardField, ImageField, LatentsField, TensorField

if TYPE_CHECKING:
    import torch
    from PIL import Image

__all__ = ["FluxTextEncoderNode", "FluxVaeDecodeNode", "FluxVaeEncodeNode"]


def lora_parts(
    ctx: Context, loras: list[Any], part: str, inner_dim: int = 0
) -> list[tuple[dict, float]]:
    """``(peft_state_dict, weight)`` of each LoRA's ``part`` ("transformer", "text_encoder"
    for CLIP, "text_encoder_2" for T5)."""
    from invoke_nb.nodes.diffusion.flux.lora_formats import convert_flux_lora

    out = []
    for lora in loras:
        with ctx.models.load(lora.lora) as sd:
            converted = convert_flux_lora(sd, inner_dim, only=part)[part]
        if converted:
            out.append((converted, lora.weight))
    return out


@node(
    "flux_text_encoder",
    title="Prompt - FLUX",
    category="conditioning",
    tags=["prompt", "conditioning", "flux"],
    version="1.1.2",
)
class FluxTextEncoderNode(Node):
    """Encodes and preps a prompt for a flux image."""

    clip: CLIPField = InputField(
        description="CLIP (tokenizer, text encoder, LoRAs) and skipped layer count",
        input=Input.CONNECTION,
        title="CLIP",
    )
    t5_encoder: T5EncoderField = InputField(
        description="T5 tokenizer and text encoder", input=Input.CONNECTION, title="T5Encoder"
    )
    t5_max_seq_len: Literal[256, 512] = InputField(
        description="Max sequence length for the T5 encoder. Expected to be 256 for FLUX "
        "schnell models and 512 for FLUX dev models."
    )
    prompt: str = InputField(description="Text prompt to encode.", ui_hint=UIHint.TEXTAREA)
    mask: TensorField | None = InputField(
        default=None,
        description="A mask defining the region that this conditioning prompt applies to.",
    )

    def invoke(self, ctx: Context) -> FluxConditioningOutput:
        import torch

        from invoke_nb.nodes.diffusion.flux.position_memo import t5_buckets_memo

        device = execution_device(ctx)
        cache = getattr(ctx.models, "cache", None)
        t5_loras = lora_parts(ctx, self.t5_encoder.loras, "text_encoder_2")
        with torch.inference_mode():
            with (
                ctx.models.load(self.t5_encoder.text_encoder) as t5,
                ctx.models.load(self.t5_encoder.tokenizer) as tok,
                patched(t5, t5_loras, "text_encoder_2", cache=cache),
                t5_buckets_memo(t5),  # the same position buckets for every prompt
            ):
                ids = tok(
                    [self.prompt],
                    padding="max_length",
                    max_length=self.t5_max_seq_len,
                    truncation=True,
                    return_tensors="pt",
                ).input_ids
                t5_embeds = t5(input_ids=ids.to(device), output_hidden_states=False)[0]
            clip_loras = lora_parts(ctx, self.clip.loras, "text_encoder")
            with ExitStack() as stack:
                clip = stack.enter_context(ctx.models.load(self.clip.text_encoder))
                tok = stack.enter_context(ctx.models.load(self.clip.tokenizer))
                stack.enter_context(
                    patched(
                        clip, clip_loras, "text_encoder", cache=getattr(ctx.models, "cache", None)
                    )
                )
                ids = tok(
                    [self.prompt],
                    padding="max_length",
                    max_length=77,
                    truncation=True,
                    return_tensors="pt",
                ).input_ids
                pooled = clip(input_ids=ids.to(device), output_hidden_states=False).pooler_output
        name = ctx.conditioning.save(
            FluxConditioning(t5_embeds=t5_embeds.float().cpu(), clip_embeds=pooled.float().cpu())
        )
        return FluxConditioningOutput(
            conditioning=FluxConditioningField(conditioning_name=name, mask=self.mask)
        )


def vae_decode(vae: Any, latents: torch.Tensor, device: str) -> Image.Image:
    """FLUX latents -> PIL image (InvokeAI's clamp and 8-bit truncation)."""
    import torch
    from PIL import Image

    dtype = next(vae.parameters()).dtype
    z = latents.to(device, dtype) / vae.config.scaling_factor + vae.config.shift_factor
    with torch.inference_mode():
        img = vae.decode(z, return_dict=False)[0]
    img = img.clamp(-1, 1)[0].permute(1, 2, 0)
    return Image.fromarray((127.5 * (img.float() + 1.0)).byte().cpu().numpy())


def vae_encode(vae: Any, image: Image.Image, device: str) -> torch.Tensor:
    """PIL image -> FLUX latents, sampling with a generator seeded 0 (InvokeAI's rule)."""
    import torch

    dtype = next(vae.parameters()).dtype
    t = image_to_tensor(image.convert("RGB")).unsqueeze(0).to(device, dtype)
    gen = torch.Generator(device=device).manual_seed(0)
    with torch.inference_mode():
        z = vae.encode(t).latent_dist.sample(generator=gen)
    return ((z - vae.config.shift_factor) * vae.config.scaling_factor).float().cpu()


@node(
    "flux_vae_encode",
    title="Image to Latents - FLUX",
    category="latents",
    tags=["latents", "image", "vae", "i2l", "flux"],
    version="1.0.1",
)
class FluxVaeEncodeNode(Node):
    """Encodes an image into latents."""

    image: ImageField = InputField(description="The image to encode.")
    vae: VAEField = InputField(description="VAE", input=Input.CONNECTION)

    def invoke(self, ctx: Context) -> LatentsOutput:
        image = ctx.images.get_pil(self.image, mode="RGB")
        w, h = image.width // 8 * 8, image.height // 8 * 8
        if (w, h) != image.size:  # InvokeAI resizes to the 8-pixel grid
            from PIL import Image as _Image

            image = image.resize((w, h), resample=_Image.Resampling.BICUBIC)
        ctx.progress(message="Running VAE")
        with ctx.models.load(self.vae.vae) as vae:
            latents = vae_encode(vae, image, execution_device(ctx))
        name = ctx.tensors.save(latents)
        return LatentsOutput.of(name, latents)


@node(
    "flux_vae_decode",
    title="Latents to Image - FLUX",
    category="latents",
    tags=["latents", "image", "vae", "l2i", "flux"],
    version="1.0.2",
)
class FluxVaeDecodeNode(Node):
    """Generates an image from latents."""

    board: BoardField | None = InputField(
        default=None, description="The board to save the image to", input=Input.DIRECT
    )
    metadata: dict[str, Any] | None = InputField(
        default=None,
        description="Optional metadata to be saved with the image",
        input=Input.CONNECTION,
    )
    latents: LatentsField = InputField(description="Latents tensor", input=Input.CONNECTION)
    vae: VAEField = InputField(description="VAE", input=Input.CONNECTION)

    def invoke(self, ctx: Context) -> ImageOutput:
        latents = ctx.tensors.load(self.latents)
        ctx.progress(message="Running VAE")
        with ctx.models.load(self.vae.vae) as vae:
            image = vae_decode(vae, latents, execution_device(ctx))
        metadata = self.metadata
        precision = precision_name(ctx)
        if metadata is not None and precision is not None:
            metadata = {**metadata, "precision": precision}
        ref = ctx.images.save(
            image,
            metadata=metadata,
            board_id=self.board.board_id if self.board is not None else None,
        )
        return ImageOutput(image=ref, width=image.width, height=image.height)
