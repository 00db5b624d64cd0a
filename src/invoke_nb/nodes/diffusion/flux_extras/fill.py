"""FLUX Fill conditioning: the image to inpaint and the mask of what to repaint.

A Fill model (variant ``dev_fill``) gets the masked image's latents and the mask beside the
noisy latents on every step (``flux_denoise`` builds them, as BFL's and InvokeAI's Fill
sampling does); this node only bundles the two inputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from invoke_nb.nodes.base import InputField, Node, Output, OutputField, node, output
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.flux.fields import FluxFillConditioningField
from invoke_nb.nodes.types import ImageField, TensorField

__all__ = ["FluxFillNode", "FluxFillOutput", "fill_image_conditioning"]


@output("flux_fill_output")
class FluxFillOutput(Output):
    """The conditioning output of a FLUX Fill invocation."""

    fill_cond: FluxFillConditioningField = OutputField(
        description="FLUX Fill conditioning", title="Conditioning"
    )


@node(
    "flux_fill",
    title="FLUX Fill Conditioning",
    category="inpaint",
    tags=["inpaint"],
    version="1.0.0",
)
class FluxFillNode(Node):
    """Prepare the FLUX Fill conditioning data."""

    image: ImageField = InputField(description="The FLUX Fill reference image.")
    mask: TensorField = InputField(
        description="The bool inpainting mask. Excluded regions should be set to False, "
        "included regions should be set to True.",
    )

    def invoke(self, ctx: Context) -> FluxFillOutput:
        return FluxFillOutput(fill_cond=FluxFillConditioningField(image=self.image, mask=self.mask))


def fill_image_conditioning(den: Any, ctx: Context, device: str) -> torch.Tensor:
    """Packed (1, tokens, 64 + 256) Fill input: masked-image latents, then the mask.

    The image is resized (bicubic) to the output size and zeroed where the mask is set; the
    mask is resized (nearest) and each latent pixel's 8x8 block becomes 64 channels.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F
    from PIL import Image

    from invoke_nb.nodes.diffusion.flux import sampling

    fill = den.fill_conditioning
    w, h = den.width, den.height
    image = ctx.images.get_pil(fill.image, mode="RGB")
    if image.size != (w, h):
        image = image.resize((w, h), Image.Resampling.BICUBIC)
    mask = ctx.tensors.load(fill.mask)
    if mask.dim() == 2:
        mask = mask.unsqueeze(0)
    if mask.dim() != 3 or mask.shape[0] != 1:
        raise ValueError(
            f"node {ctx.node_id!r} field 'fill_conditioning': the mask must be (1, H, W), "
            f"got {tuple(mask.shape)}"
        )
    mask = F.interpolate(mask[None].float(), size=(h, w), mode="nearest")  # (1, 1, h, w)
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 127.5 - 1.0)
    pixels = pixels.permute(2, 0, 1)[None] * (1.0 - mask)
    with ctx.models.load(den.controlnet_vae.vae) as vae, torch.inference_mode():
        dtype = next(vae.parameters()).dtype
        gen = torch.Generator(device=device).manual_seed(0)  # as flux_vae_encode samples
        z = vae.encode(pixels.to(device, dtype)).latent_dist.sample(generator=gen)
        latents = ((z - vae.config.shift_factor) * vae.config.scaling_factor).float().cpu()
    blocks = mask[:, 0].reshape(1, h // 8, 8, w // 8, 8).permute(0, 2, 4, 1, 3)
    blocks = blocks.reshape(1, 64, h // 8, w // 8)
    return torch.cat((sampling.pack(latents.float()), sampling.pack(blocks)), dim=-1)
