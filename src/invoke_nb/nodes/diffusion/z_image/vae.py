"""``z_image_i2l`` and ``z_image_l2i``: the 16-channel (FLUX) VAE with its scale and shift.

``latents = (sample - shift_factor) * scaling_factor`` going in and the inverse going out,
as ``ZImagePipeline`` and InvokeAI do; the conversions are CogView4's (:mod:`..cogview4.vae`).
"""

from __future__ import annotations

from invoke_nb.nodes.base import node
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.cogview4.vae import (
    CogView4ImageToLatentsNode,
    CogView4LatentsToImageNode,
)
from invoke_nb.nodes.diffusion.fields import LatentsOutput
from invoke_nb.nodes.primitives import ImageOutput

__all__ = ["ZImageImageToLatentsNode", "ZImageLatentsToImageNode"]


@node(
    "z_image_l2i",
    title="Latents to Image - Z-Image",
    category="latents",
    tags=["latents", "image", "vae", "l2i", "z-image"],
    version="1.1.0",
)
class ZImageLatentsToImageNode(CogView4LatentsToImageNode):
    """Generates an image from latents using FLUX VAE (compatible with Z-Image)."""

    def invoke(self, ctx: Context) -> ImageOutput:
        return super().invoke(ctx)


@node(
    "z_image_i2l",
    title="Image to Latents - Z-Image",
    category="image",
    tags=["image", "latents", "vae", "i2l", "z-image"],
    version="1.1.0",
)
class ZImageImageToLatentsNode(CogView4ImageToLatentsNode):
    """Generates latents from an image using FLUX VAE (compatible with Z-Image)."""

    def invoke(self, ctx: Context) -> LatentsOutput:
        return super().invoke(ctx)
