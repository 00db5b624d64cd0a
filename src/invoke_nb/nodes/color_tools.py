"""Colour-space image tools of InvokeAI's library (originally @dwringer's composition nodes):
``invokeai_img_hue_adjust_plus`` rotates hue in HSV, Okhsl, Okhsv, Oklch or CIELab LCh
(``invokeai_img_blend`` blends in the same spaces: :mod:`invoke_nb.nodes.layer_blend`).
Oklab-family maths is ours (:mod:`invoke_nb.nodes.oklab`); CIELab goes through Pillow's
littleCMS with the profiles and flags InvokeAI 6.11.1 uses, so results match its node."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
from PIL import Image, ImageCms

from invoke_nb.nodes import oklab
from invoke_nb.nodes.base import InputField, node
from invoke_nb.nodes.primitives import ImageOutput, ImageSavingNode
from invoke_nb.nodes.types import ImageField

if TYPE_CHECKING:
    from invoke_nb.nodes.context import Context

__all__ = ["rotate_hue"]

_CMS_FLAGS = 0x2400  # no cache, no optimisation: InvokeAI's


def _to_unit(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float64) / 255.0


def _to_bytes(x: np.ndarray) -> np.ndarray:
    """[0, 1] -> uint8 truncating, as torchvision's to_pil_image does."""
    return (np.clip(x, 0.0, 1.0) * 255).astype(np.uint8)


def _lab_transforms() -> tuple[object, object]:
    srgb = ImageCms.createProfile("sRGB")
    lab = ImageCms.createProfile("LAB", colorTemp=6500)
    to_lab = ImageCms.buildTransformFromOpenProfiles(
        srgb, lab, "RGB", "LAB", renderingIntent=2, flags=_CMS_FLAGS
    )
    to_rgb = ImageCms.buildTransformFromOpenProfiles(
        lab, srgb, "LAB", "RGB", renderingIntent=2, flags=_CMS_FLAGS
    )
    return to_lab, to_rgb


def rotate_hue(
    image: Image.Image,
    space: str,
    degrees: float,
    *,
    preserve_lightness: bool = False,
    adaptive_gamut: float = 0.05,
    high_precision: bool = True,
) -> Image.Image:
    """Rotate an RGB image's hue by ``degrees`` in ``space`` (hsv, okhsl, okhsv, oklch, lch);
    ``preserve_lightness`` puts the CIELab L* of the input back afterwards."""
    steps = 3 if high_precision else 1
    turn = degrees / 360.0
    lab_in = None
    if preserve_lightness or space == "lch":
        to_lab, to_rgb = _lab_transforms()
        lab_in = ImageCms.applyTransform(image, to_lab)
    if space == "hsv":
        hsv = _to_unit(image.convert("HSV"))
        hsv[..., 0] = np.remainder(hsv[..., 0] + turn, 1.0)
        out = Image.fromarray(_to_bytes(hsv), "HSV").convert("RGB")
    elif space in ("okhsl", "okhsv"):
        forward, back = (
            (oklab.okhsl_from_srgb, oklab.srgb_from_okhsl)
            if space == "okhsl"
            else (oklab.okhsv_from_srgb, oklab.srgb_from_okhsv)
        )
        hs = forward(_to_unit(image), steps)
        hs[..., 0] = np.remainder(hs[..., 0] + turn, 1.0)
        out = Image.fromarray(_to_bytes(back(hs, 0.0, steps)), "RGB")
    elif space == "oklch":
        lab = oklab.oklab_from_linear(oklab.linear_from_srgb(_to_unit(image)))
        c = np.hypot(lab[..., 1], lab[..., 2])
        h = np.remainder(np.arctan2(lab[..., 2], lab[..., 1]) + np.radians(degrees), 2 * np.pi)
        lab[..., 1], lab[..., 2] = c * np.cos(h), c * np.sin(h)
        lin = oklab.linear_from_oklab(lab)
        if adaptive_gamut > 0:
            lin = oklab.gamut_clip(lin, adaptive_gamut, steps)
        out = Image.fromarray(_to_bytes(oklab.srgb_from_linear(lin)), "RGB")
    elif space == "lch":
        assert lab_in is not None
        a = np.asarray(lab_in.getchannel("A"), dtype=np.float64) / 255 * 2 - 1
        b = np.asarray(lab_in.getchannel("B"), dtype=np.float64) / 255 * 2 - 1
        c = np.hypot(a, b)
        h = np.arctan2(b, a) + np.radians(degrees)
        h = np.remainder(h + np.pi, 2 * np.pi) - np.pi
        a_img = Image.fromarray(_to_bytes((c * np.cos(h) + 1) / 2), "L")
        b_img = Image.fromarray(_to_bytes((c * np.sin(h) + 1) / 2), "L")
        merged = Image.merge("LAB", (lab_in.getchannel("L"), a_img, b_img))
        return ImageCms.applyTransform(merged, to_rgb)
    else:
        raise ValueError(f"unknown hue space {space!r}")
    if preserve_lightness:
        assert lab_in is not None
        lab_out = ImageCms.applyTransform(out, to_lab)
        merged = Image.merge(
            "LAB", (lab_in.getchannel("L"), lab_out.getchannel("A"), lab_out.getchannel("B"))
        )
        out = ImageCms.applyTransform(merged, to_rgb)
    return out


@node(
    "invokeai_img_hue_adjust_plus",
    title="Adjust Image Hue Plus",
    category="image",
    tags=["image", "hue", "oklab", "cielab", "uplab", "lch", "hsv", "hsl", "lab"],
    version="1.2.0",
)
class AdjustImageHuePlusNode(ImageSavingNode):
    """Rotates an image's hue in the chosen colour space (*: not exactly invertible); the
    alpha channel is kept."""

    image: ImageField = InputField(description="The image to adjust")
    space: Literal[
        "HSV / HSL / RGB",
        "Okhsl",
        "Okhsv",
        "*Oklch / Oklab",
        "*LCh / CIELab",
        "*UPLab (w/CIELab_to_UPLab.icc)",
    ] = InputField(
        default="HSV / HSL / RGB",
        description="Color space in which to rotate hue by polar coords (*: non-invertible)",
    )
    degrees: float = InputField(default=0.0, description="Degrees by which to rotate image hue")
    preserve_lightness: bool = InputField(
        default=False, description="Whether to preserve CIELAB lightness values"
    )
    ok_adaptive_gamut: float = InputField(
        default=0.05,
        ge=0,
        description="Higher preserves chroma at the expense of lightness (Oklab)",
    )
    ok_high_precision: bool = InputField(
        default=True, description="Use more steps in computing gamut (Oklab/Okhsv/Okhsl)"
    )

    def invoke(self, ctx: Context) -> ImageOutput:
        space = self.space.split()[0].lower().strip("*")
        if space == "uplab":
            raise ValueError(
                f"node {self.id!r}: the UPLab space needs InvokeAI's CIELab_to_UPLab.icc "
                "profile, which invoke-nb does not ship; pick another space"
            )
        image = ctx.images.get_pil(self.image)
        alpha = image.getchannel("A") if image.mode in ("RGBA", "LA", "PA") else None
        keep = {"RGBA": "RGB", "LA": "L", "PA": "P"}.get(image.mode, image.mode)
        out = rotate_hue(
            image.convert("RGB"),
            space,
            self.degrees,
            preserve_lightness=self.preserve_lightness,
            adaptive_gamut=self.ok_adaptive_gamut,
            high_precision=self.ok_high_precision,
        ).convert(keep)
        if alpha is not None:
            out = Image.merge(image.mode, (*out.split(), alpha))
        return self.save_image(ctx, out)
