"""Infill and inpaint nodes with InvokeAI 6.11.1's ids: ``infill_patchmatch`` (the
``pypatchmatch`` library), ``infill_lama`` (a LaMa network from the model manager) and
``cv_inpaint`` (OpenCV's Telea inpainting under a mask image).

The infill nodes fill an RGBA image's transparent part; an image without alpha passes
through unchanged, as in InvokeAI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image, ImageOps

from invoke_nb.nodes.base import InputField, node
from invoke_nb.nodes.mask import _cv2, _pass_through
from invoke_nb.nodes.primitives import ImageOutput, ImageSavingNode
from invoke_nb.nodes.types import ImageField

if TYPE_CHECKING:
    from invoke_nb.nodes.context import Context

__all__ = ["lama_infill", "patchmatch_infill"]

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "hamming": Image.Resampling.HAMMING,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


def patchmatch_infill(image: Image.Image) -> Image.Image:
    """Fill the transparent part of an RGBA image with PatchMatch (patch size 3): every
    hole pixel copies the best-matching 3x3 patch found in the opaque part."""
    try:
        from patchmatch import patch_match
    except ImportError:
        raise ImportError(
            "infill_patchmatch needs the 'pypatchmatch' package: pip install 'invoke-nb[upscale]'"
        ) from None
    if not patch_match.patchmatch_available:
        raise RuntimeError("pypatchmatch is installed but its native library did not load")
    arr = np.asarray(image.convert("RGBA"))
    holes = np.ascontiguousarray(255 - arr[:, :, 3])
    filled = patch_match.inpaint(np.ascontiguousarray(arr[:, :, :3]), holes, patch_size=3)
    return Image.fromarray(filled, "RGB")


@node(
    "infill_patchmatch",
    title="PatchMatch Infill",
    category="inpaint",
    tags=["image", "inpaint"],
    version="1.2.2",
)
class InfillPatchMatchNode(ImageSavingNode):
    """PatchMatch infill, run on a copy shrunk by ``downscale`` (faster; the fill is then
    enlarged back and the original pasted over it through its alpha)."""

    image: ImageField = InputField(description="The image to process")
    downscale: float = InputField(
        default=2.0, gt=0, description="Run patchmatch on downscaled image to speedup infill"
    )
    resample_mode: Literal["nearest", "box", "bilinear", "hamming", "bicubic", "lanczos"] = (
        InputField(default="bicubic", description="The resampling mode")
    )

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image)
        if (same := _pass_through(self, ctx, image)) is not None:
            return same
        resample = _RESAMPLE[self.resample_mode]
        small = (
            max(1, int(image.width / self.downscale)),
            max(1, int(image.height / self.downscale)),
        )
        # (InvokeAI 6.11.1 computes the small copy, then runs PatchMatch on the full image)
        filled = patchmatch_infill(image.resize(small, resample=resample))
        out = filled.resize(image.size, resample=resample)
        out.paste(image, (0, 0), mask=image.getchannel("A"))
        return self.save_image(ctx, out)


def lama_infill(image: Image.Image, net: Any) -> Image.Image:
    """Fill the transparent part of an RGBA image with a LaMa network. The image is padded
    (reflected) to a multiple of 8, as LaMa's down/up-sampling needs, then cropped back."""
    import torch

    arr = np.asarray(image.convert("RGBA"))
    h, w = arr.shape[:2]
    ph, pw = -h % 8, -w % 8
    rgb = np.pad(arr[:, :, :3], ((0, ph), (0, pw), (0, 0)), mode="reflect")
    hole = np.pad(arr[:, :, 3] < 255, ((0, ph), (0, pw)), mode="reflect")
    param = next(net.parameters())
    x = torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    m = torch.from_numpy(hole.astype(np.float32))[None, None]
    with torch.no_grad():
        y = net(x.to(param), m.to(param))[0, :, :h, :w]
    out = (y.permute(1, 2, 0).float().cpu().numpy() * 255).clip(0, 255).astype(np.uint8)
    return Image.fromarray(out, "RGB")


LAMA_URL = "https://github.com/Sanster/models/releases/download/add_big_lama/big-lama.pt"


def _installed_lama(ctx: Context, node_id: str) -> Any:
    from invoke_nb.models.local import identifier

    if ctx.models is not None:
        lister = getattr(ctx.models, "list", None) or ctx.models.store.list
        for rec in lister(type="spandrel_image_to_image"):
            if "lama" in rec.name.lower():
                return identifier(rec)
    raise ValueError(
        f"node {node_id!r}: infill_lama needs a LaMa model installed with 'lama' in its name "
        f"(big-lama weights as .safetensors; InvokeAI downloads {LAMA_URL})"
    )


@node(
    "infill_lama",
    title="LaMa Infill",
    category="inpaint",
    tags=["image", "inpaint"],
    version="1.2.2",
)
class LaMaInfillNode(ImageSavingNode):
    """Fills the transparent part with LaMa (large-mask inpainting)."""

    image: ImageField = InputField(description="The image to process")

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image)
        if (same := _pass_through(self, ctx, image)) is not None:
            return same
        with ctx.models.load(_installed_lama(ctx, self.id)) as net:
            return self.save_image(ctx, lama_infill(image, net))


@node(
    "cv_inpaint",
    title="OpenCV Inpaint",
    category="inpaint",
    tags=["opencv", "inpaint"],
    version="1.3.1",
)
class CvInpaintNode(ImageSavingNode):
    """OpenCV's Telea inpainting (radius 3) where the mask is black (white is kept)."""

    image: ImageField = InputField(description="The image to inpaint")
    mask: ImageField = InputField(description="The mask to use when inpainting")

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image)
        mask = ctx.images.get_pil(self.mask)
        if mask.size != image.size:
            raise ValueError(
                f"node {self.id!r}: mask is {mask.width}x{mask.height}, "
                f"image {image.width}x{image.height}"
            )
        rgb = np.asarray(image.convert("RGB"))
        holes = np.asarray(ImageOps.invert(mask.convert("L")))
        cv2 = _cv2()
        return self.save_image(ctx, Image.fromarray(cv2.inpaint(rgb, holes, 3, cv2.INPAINT_TELEA)))
