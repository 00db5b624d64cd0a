"""``sd3_l2i`` and ``sd3_i2l``: SD3's 16-channel VAE, as InvokeAI 6.11 uses it.

InvokeAI scales SD3 latents by ``scaling_factor`` only (the VAE config's ``shift_factor``
is not applied) and turns the decoded [-1, 1] image into bytes by truncation
(``(127.5 * (x + 1)).byte()``); both are kept so its images re-generate. The encoder
samples the latent distribution with a fixed CPU generator (InvokeAI draws from torch's
global one), so the same image always gives the same latents.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from invoke_nb.nodes.base import Input, InputField, Node, node
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.devices import execution_device, precision_name
from invoke_nb.nodes.diffusion.fields import LatentsOutput, VAEField
from invoke_nb.nodes.diffusion.sd.latents import image_to_tensor
from invoke_nb.nodes.diffusion.sd.vae import encode_image
from invoke_nb.nodes.diffusion.sd3.fields import SD3InputError, check_part
from invoke_nb.nodes.primitives import ImageOutput
from invoke_nb.nodes.types import BoardField, ImageField, LatentsField

__all__ = ["SD3ImageToLatentsNode", "SD3LatentsToImageNode"]


def _check_vae(ctx: Context, vae: VAEField) -> None:
    check_part(ctx, "vae", vae.vae, "vae")
    if vae.seamless_axes:
        raise SD3InputError(ctx, "vae", "seamless tiling is not supported for SD3 here")


@node(
    "sd3_l2i",
    title="Latents to Image - SD3",
    category="latents",
    tags=["latents", "image", "vae", "l2i", "sd3"],
    version="1.3.2",
)
class SD3LatentsToImageNode(Node):
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
        import torch

        _check_vae(ctx, self.vae)
        latents = ctx.tensors.load(self.latents)
        ctx.progress(message="Running VAE")
        device = execution_device(ctx)
        with torch.inference_mode(), ctx.models.load(self.vae.vae) as vae:
            if latents.shape[1] != vae.config.latent_channels:
                raise SD3InputError(
                    ctx,
                    "latents",
                    f"{latents.shape[1]}-channel latents for a "
                    f"{vae.config.latent_channels}-channel VAE",
                )
            dtype = next(vae.parameters()).dtype
            # in the latents' own dtype, as InvokeAI divides (fp32 latents: one rounding)
            z = (latents.to(device) / vae.config.scaling_factor).to(dtype)
            img = vae.decode(z, return_dict=False)[0].clamp(-1, 1)
            arr = (127.5 * (img[0].permute(1, 2, 0) + 1.0)).byte().cpu().numpy()
        image = Image.fromarray(np.ascontiguousarray(arr))
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


@node(
    "sd3_i2l",
    title="Image to Latents - SD3",
    category="image",
    tags=["image", "latents", "vae", "i2l", "sd3"],
    version="1.0.1",
)
class SD3ImageToLatentsNode(Node):
    """Generates latents from an image."""

    board: BoardField | None = InputField(
        default=None, description="The board to save the image to", input=Input.DIRECT
    )
    metadata: dict[str, Any] | None = InputField(
        default=None,
        description="Optional metadata to be saved with the image",
        input=Input.CONNECTION,
    )
    image: ImageField = InputField(description="The image to encode")
    vae: VAEField = InputField(description="VAE", input=Input.CONNECTION)

    def invoke(self, ctx: Context) -> LatentsOutput:
        _check_vae(ctx, self.vae)
        image = ctx.images.get_pil(self.image, mode="RGB")
        t = image_to_tensor(image).unsqueeze(0)
        ctx.progress(message="Running VAE encoder")
        device = execution_device(ctx)
        with ctx.models.load(self.vae.vae) as vae:
            latents = encode_image(vae, t, fp32=False, device=device)
        name = ctx.tensors.save(latents)
        return LatentsOutput.of(name, latents)
