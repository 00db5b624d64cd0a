"""``cogview4_i2l`` and ``cogview4_l2i``: CogView4's 16-channel VAE, no tiling (as InvokeAI).

Decoding converts as InvokeAI does: clamp to [-1, 1], then ``uint8(127.5 * (x + 1))``
(truncated, where diffusers rounds: at most one level apart). Encoding samples the latent
distribution with a fixed CPU generator, so one image always gives the same latents.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from PIL import Image
from pydantic import BeforeValidator

if TYPE_CHECKING:
    import torch

from invoke_nb.nodes.base import Input, InputField, Node, node
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.devices import execution_device
from invoke_nb.nodes.diffusion.fields import LatentsOutput, VAEField
from invoke_nb.nodes.diffusion.sd.latents import image_to_tensor
from invoke_nb.nodes.diffusion.sd.vae import encode_image
from invoke_nb.nodes.primitives import ImageOutput
from invoke_nb.nodes.types import BoardField, ImageField, LatentsField

__all__ = [
    "CogView4ImageToLatentsNode",
    "CogView4LatentsToImageNode",
    "WithBoard",
    "decode",
]


def decode(vae: Any, latents: torch.Tensor, device: Any = "cpu") -> Image.Image:
    """Latents (scaled by the VAE's ``scaling_factor``) to an RGB image, InvokeAI's rounding."""
    import torch

    dtype = next(vae.parameters()).dtype
    with torch.inference_mode():
        lat = latents.to(device, dtype) / vae.config.scaling_factor
        shift = getattr(vae.config, "shift_factor", None)
        if shift:
            lat = lat + shift
        img = vae.decode(lat, return_dict=False)[0].clamp(-1, 1)
        arr = (127.5 * (img[0].permute(1, 2, 0).float() + 1.0)).to(torch.uint8).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(arr))


def encode(vae: Any, image: Image.Image, device: Any = "cpu") -> torch.Tensor:
    """An RGB image to scaled latents (float32, CPU)."""
    t = image_to_tensor(image.convert("RGB")).unsqueeze(0)
    dtype = next(vae.parameters()).dtype
    latents = encode_image(vae, t, fp32=dtype == t.dtype, device=device)
    shift = getattr(vae.config, "shift_factor", None)
    if shift:  # encode_image scaled without the shift; undo and redo with it
        latents = (latents / vae.config.scaling_factor - shift) * vae.config.scaling_factor
    return latents


def _auto_board(v: Any) -> Any:
    # InvokeAI's editor writes "auto" / "none" for "the default board": no board here
    return None if v in ("auto", "none") else v


class WithBoard(Node):
    """Board and metadata inputs (InvokeAI's ``WithBoard``/``WithMetadata``)."""

    board: Annotated[BoardField | None, BeforeValidator(_auto_board)] = InputField(
        default=None, description="The board to save the image to", input=Input.DIRECT
    )

    metadata: dict[str, Any] | None = InputField(
        default=None,
        description="Optional metadata to be saved with the image",
        input=Input.CONNECTION,
    )


@node(
    "cogview4_l2i",
    title="Latents to Image - CogView4",
    category="latents",
    tags=["latents", "image", "vae", "l2i", "cogview4"],
    version="1.0.0",
)
class CogView4LatentsToImageNode(WithBoard):
    """Generates an image from latents."""

    latents: LatentsField = InputField(description="Latents tensor", input=Input.CONNECTION)
    vae: VAEField = InputField(description="VAE", input=Input.CONNECTION)

    def invoke(self, ctx: Context) -> ImageOutput:
        latents = ctx.tensors.load(self.latents)
        ctx.progress(message="Running VAE")
        with ctx.models.load(self.vae.vae) as vae:
            channels = vae.config.latent_channels
            if latents.ndim != 4 or latents.shape[1] != channels:
                raise ValueError(
                    f"node {ctx.node_id!r} ({ctx.node_type}): latents: shape "
                    f"{tuple(latents.shape)} does not fit a {channels}-channel VAE"
                )
            image = decode(vae, latents, execution_device(ctx))
        ref = ctx.images.save(
            image,
            metadata=self.metadata,
            board_id=self.board.board_id if self.board is not None else None,
        )
        return ImageOutput(image=ref, width=image.width, height=image.height)


@node(
    "cogview4_i2l",
    title="Image to Latents - CogView4",
    category="image",
    tags=["image", "latents", "vae", "i2l", "cogview4"],
    version="1.0.0",
)
class CogView4ImageToLatentsNode(WithBoard):
    """Generates latents from an image."""

    image: ImageField = InputField(description="The image to encode.")
    vae: VAEField = InputField(description="VAE", input=Input.CONNECTION)

    def invoke(self, ctx: Context) -> LatentsOutput:
        image = ctx.images.get_pil(self.image, mode="RGB")
        ctx.progress(message="Running VAE encoder")
        with ctx.models.load(self.vae.vae) as vae:
            latents = encode(vae, image, execution_device(ctx))
        name = ctx.tensors.save(latents)
        return LatentsOutput.of(name, latents)
