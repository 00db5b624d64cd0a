"""FLUX.2 VAE nodes: images to 32-channel latents and back.

Latents between nodes are the VAE's own (un-normalized, 1/8 size); the denoiser applies
and removes the VAE's batch-norm statistics around the transformer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from invoke_nb.nodes.base import Input, InputField, Node, node
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.devices import execution_device, precision_name
from invoke_nb.nodes.diffusion.fields import LatentsOutput, VAEField
from invoke_nb.nodes.diffusion.flux2.errors import input_error
from invoke_nb.nodes.diffusion.sd.latents import image_to_tensor
from invoke_nb.nodes.primitives import ImageOutput
from invoke_nb.nodes.types import BoardField, ImageField, LatentsField

__all__ = ["Flux2VaeDecodeNode", "Flux2VaeEncodeNode", "flux2_vae"]


def flux2_vae(ctx: Context, vae: VAEField, field: str = "vae") -> Any:
    """The loaded FLUX.2 VAE of ``vae`` (a context manager); other VAEs fail naming ``field``."""
    rec = ctx.models.record(vae.vae)
    if rec.base != "flux2":
        raise input_error(ctx, field, f"{rec.name!r} is a {rec.base} model; a FLUX.2 VAE is needed")
    return ctx.models.load(vae.vae)


@node(
    "flux2_vae_encode",
    title="Image to Latents - FLUX2",
    category="latents",
    tags=["latents", "image", "vae", "i2l", "flux2", "klein"],
    version="1.0.0",
)
class Flux2VaeEncodeNode(Node):
    """Encodes an image into latents using FLUX.2 Klein's 32-channel VAE."""

    image: ImageField = InputField(description="The image to encode.")
    vae: VAEField = InputField(description="VAE", input=Input.CONNECTION)

    def invoke(self, ctx: Context) -> LatentsOutput:
        import torch

        t = image_to_tensor(ctx.images.get_pil(self.image, mode="RGB")).unsqueeze(0)
        device = execution_device(ctx)
        ctx.progress(message="Running VAE Encode")
        with flux2_vae(ctx, self.vae) as vae, torch.inference_mode():
            dist = vae.encode(t.to(device, vae.dtype)).latent_dist
            latents = dist.mode().to("cpu", torch.float32)
        return LatentsOutput.of(ctx.tensors.save(latents), latents)


@node(
    "flux2_vae_decode",
    title="Latents to Image - FLUX2",
    category="latents",
    tags=["latents", "image", "vae", "l2i", "flux2", "klein"],
    version="1.0.0",
)
class Flux2VaeDecodeNode(Node):
    """Generates an image from latents using FLUX.2 Klein's 32-channel VAE."""

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
        import torch

        latents = ctx.tensors.load(self.latents)
        if latents.ndim != 4 or latents.shape[1] != 32:
            raise input_error(
                ctx, "latents", f"FLUX.2 latents have 32 channels; got shape {tuple(latents.shape)}"
            )
        device = execution_device(ctx)
        ctx.progress(message="Running VAE")
        with flux2_vae(ctx, self.vae) as vae, torch.inference_mode():
            decoded = vae.decode(latents.to(device, vae.dtype), return_dict=False)[0]
        rgb = (decoded[0].float() / 2 + 0.5).clamp(0, 1).permute(1, 2, 0)
        image = Image.fromarray(np.asarray((rgb * 255).byte().cpu()), mode="RGB")
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
