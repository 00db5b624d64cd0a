"""Inpaint masks in latent space: ``create_denoise_mask`` and ``create_gradient_mask``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    import torch
from PIL import Image

from invoke_nb.nodes.base import Input, InputField, Node, node
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.devices import execution_device
from invoke_nb.nodes.diffusion.fields import (
    LATENT_SCALE_FACTOR,
    DenoiseMaskOutput,
    GradientMaskOutput,
    UNetField,
    VAEField,
)
from invoke_nb.nodes.diffusion.sd.denoise import resize_mask
from invoke_nb.nodes.diffusion.sd.latents import image_to_tensor
from invoke_nb.nodes.diffusion.sd.vae import encode_image, vae_tiling
from invoke_nb.nodes.types import (
    DenoiseMaskField,
    ImageField,
)

log = logging.getLogger("invoke_nb.nodes.latents")


@node(
    "create_denoise_mask",
    title="Create Denoise Mask",
    category="mask",
    tags=["mask", "denoise"],
    version="1.0.2",
)
class CreateDenoiseMaskNode(Node):
    """Creates mask for denoising model run."""

    vae: VAEField = InputField(description="VAE", input=Input.CONNECTION, ui_order=0)
    image: ImageField | None = InputField(
        default=None, description="Image which will be masked", ui_order=1
    )
    mask: ImageField = InputField(description="The mask to use when pasting", ui_order=2)
    tiled: bool = InputField(
        default=False,
        description="Processing using overlapping tiles (reduce memory consumption)",
        ui_order=3,
    )
    fp32: bool = InputField(
        default=False, description="Whether or not to use full float32 precision", ui_order=4
    )

    def invoke(self, ctx: Context) -> DenoiseMaskOutput:
        import torch

        mask = image_to_tensor(ctx.images.get_pil(self.mask, mode="L"), normalize=False).unsqueeze(
            0
        )
        masked_name = None
        if self.image is not None:
            img = image_to_tensor(ctx.images.get_pil(self.image, mode="RGB")).unsqueeze(0)
            keep = resize_mask(mask, tuple(img.shape[-2:]))
            masked = img * torch.where(keep < 0.5, 0.0, 1.0)
            base = ctx.models.record(self.vae.vae).base
            with ctx.models.load(self.vae.vae) as vae, vae_tiling(vae, self.tiled, 0):
                latents = encode_image(
                    vae, masked, fp32=self.fp32, device=execution_device(ctx), base=base
                )
                masked_name = ctx.tensors.save(latents)
        name = ctx.tensors.save(mask)
        return DenoiseMaskOutput(
            denoise_mask=DenoiseMaskField(
                mask_name=name, masked_latents_name=masked_name, gradient=False
            )
        )


def _gaussian_kernel(radius: int) -> np.ndarray:
    size = radius * 2 + 1
    sigma = radius / 2.5
    x = np.arange(size, dtype=np.float64) - radius
    g = np.exp(-(x**2) / (2 * sigma**2))
    k = np.outer(g, g)
    return k / k.max()


def _disc_kernel(radius: int, kernel: np.ndarray | None = None) -> np.ndarray:
    size = radius * 2 + 1
    yy, xx = np.mgrid[0:size, 0:size] - radius
    dist = np.sqrt(xx**2 + yy**2)
    if kernel is None:  # box: linear fade from the centre
        return np.where(dist <= radius, 1.0 - dist / radius, 0.0)
    return np.where(dist > radius, 0.0, kernel)


def _weighted_max_filter(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    import torch
    import torch.nn.functional as F

    kh, kw = kernel.shape
    padded = F.pad(image, (kw // 2, kw // 2, kh // 2, kh // 2), value=0.0)
    out = torch.zeros_like(image)
    for i in range(kh):
        for j in range(kw):
            w = float(kernel[i, j])
            if w > 0:
                out = torch.maximum(out, padded[i : i + image.shape[0], j : j + image.shape[1]] * w)
    return out


@node(
    "create_gradient_mask",
    title="Create Gradient Mask",
    category="mask",
    tags=["mask", "denoise"],
    version="1.3.0",
)
class CreateGradientMaskNode(Node):
    """Creates mask for denoising."""

    mask: ImageField = InputField(description="Image which will be masked", ui_order=1)
    edge_radius: int = InputField(
        default=16, ge=0, description="How far to expand the edges of the mask", ui_order=2
    )
    coherence_mode: Literal["Gaussian Blur", "Box Blur", "Staged"] = InputField(
        default="Gaussian Blur", ui_order=3
    )
    minimum_denoise: float = InputField(
        default=0.0,
        ge=0,
        le=1,
        description="Minimum denoise level for the coherence region",
        ui_order=4,
    )
    image: ImageField | None = InputField(
        default=None,
        description="OPTIONAL: Only connect for specialized Inpainting models, masked_latents will be generated from the image with the VAE",
        title="[OPTIONAL] Image",
        ui_order=6,
    )
    unet: UNetField | None = InputField(
        default=None,
        description="OPTIONAL: If the Unet is a specialized Inpainting model, masked_latents will be generated from the image with the VAE",
        input=Input.CONNECTION,
        title="[OPTIONAL] UNet",
        ui_order=5,
    )
    vae: VAEField | None = InputField(
        default=None,
        description="OPTIONAL: Only connect for specialized Inpainting models, masked_latents will be generated from the image with the VAE",
        title="[OPTIONAL] VAE",
        input=Input.CONNECTION,
        ui_order=7,
    )
    tiled: bool = InputField(
        default=False,
        description="Processing using overlapping tiles (reduce memory consumption)",
        ui_order=8,
    )
    fp32: bool = InputField(
        default=False, description="Whether or not to use full float32 precision", ui_order=9
    )

    def invoke(self, ctx: Context) -> GradientMaskOutput:
        import torch

        src = ctx.images.get_pil(self.mask, mode="L")
        small = src.resize((src.width // 8, src.height // 8), Image.Resampling.BILINEAR)
        orig = np.asarray(small, dtype=np.float32)
        radius = self.edge_radius // LATENT_SCALE_FACTOR
        if radius > 0:
            inverted = torch.from_numpy(255.0 - orig)  # 0 = keep; larger = denoise more
            if self.coherence_mode == "Box Blur":
                kernel = _disc_kernel(radius)
            else:
                kernel = _disc_kernel(radius, _gaussian_kernel(radius))
            grown = (
                255.0 - _weighted_max_filter(inverted, torch.from_numpy(kernel).float())
            ).numpy()
            threshold = (1 - self.minimum_denoise) * 255
            if self.coherence_mode == "Staged":
                staged = (grown < orig) & (orig > threshold)
                grown = np.where(staged, threshold, orig)
            grown = np.where((grown > threshold) & (grown < 255), threshold, grown)
        else:
            grown = orig.copy()
        grown = np.clip(grown, 0, 255).astype(np.uint8)
        full = (small.width * 8, small.height * 8)
        area = Image.fromarray(np.where(grown < 255, 0, 255).astype(np.uint8), mode="L").resize(
            full, Image.Resampling.NEAREST
        )
        area_ref = ctx.images.save(area, intermediate=True)
        mask_img = Image.fromarray(grown, mode="L").resize(full, Image.Resampling.NEAREST)
        mask_t = image_to_tensor(mask_img, normalize=False).unsqueeze(0)
        mask_name = ctx.tensors.save(mask_t)
        masked_name = None
        if self.unet is not None and self.vae is not None and self.image is not None:
            with ctx.models.load(self.unet.unet) as unet:
                inpaint_model = unet.config.in_channels == 9
            if inpaint_model:
                img = image_to_tensor(ctx.images.get_pil(self.image, mode="RGB")).unsqueeze(0)
                keep = resize_mask(mask_t, tuple(img.shape[-2:]))
                base = ctx.models.record(self.vae.vae).base
                with ctx.models.load(self.vae.vae) as vae:
                    masked_name = ctx.tensors.save(
                        encode_image(
                            vae,
                            img * torch.where(keep < 0.5, 0.0, 1.0),
                            fp32=self.fp32,
                            device=execution_device(ctx),
                            base=base,
                        )
                    )
        return GradientMaskOutput(
            denoise_mask=DenoiseMaskField(
                mask_name=mask_name, masked_latents_name=masked_name, gradient=True
            ),
            expanded_mask_area=area_ref,
        )
