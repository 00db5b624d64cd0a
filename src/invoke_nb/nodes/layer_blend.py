"""``invokeai_img_blend`` (InvokeAI's "Image Layer Blend", originally @dwringer's): paint-program
layer modes in RGB, linear RGB, HSL, HSV, Okhsl, Okhsv, Oklch or CIELab LCh, then an alpha
composite with opacity and an optional mask.

InvokeAI's node works on float32 torch tensors laid out (channel, y, x) and truncates to bytes
the way torchvision's ``to_pil_image`` does; the arithmetic here keeps that order of
operations so results land on the same bytes (benchmarks/invokeai_node_parity.py measures it).
The Oklab family goes through our float64 numpy maths (:mod:`invoke_nb.nodes.oklab`), so those
spaces can differ by a byte where a value sits on a truncation edge, and more on the few
pixels where hue or saturation is ill-conditioned (near grey or black).
"""

from __future__ import annotations

from io import BytesIO
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image, ImageCms, ImageOps

from invoke_nb.nodes import oklab
from invoke_nb.nodes.base import InputField, node
from invoke_nb.nodes.color_tools import _lab_transforms
from invoke_nb.nodes.primitives import ImageOutput, ImageSavingNode
from invoke_nb.nodes.types import ImageField

if TYPE_CHECKING:
    from invoke_nb.nodes.context import Context

__all__ = ["BLEND_MODES", "BLEND_SPACES"]

BLEND_MODES = Literal[
    "Normal",
    "Lighten Only",
    "Darken Only",
    "Lighten Only (EAL)",
    "Darken Only (EAL)",
    "Hue",
    "Saturation",
    "Color",
    "Luminosity",
    "Linear Dodge (Add)",
    "Subtract",
    "Multiply",
    "Divide",
    "Screen",
    "Overlay",
    "Linear Burn",
    "Difference",
    "Hard Light",
    "Soft Light",
    "Vivid Light",
    "Linear Light",
    "Color Burn",
    "Color Dodge",
]
BLEND_SPACES = Literal[
    "RGB", "Linear RGB", "HSL (RGB)", "HSV (RGB)", "Okhsl", "Okhsv", "Oklch (Oklab)", "LCh (CIELab)"
]
_POLAR = ("Hue", "Saturation", "Color", "Luminosity")
# (hue, chroma/saturation, lightness) channel of each space; None: channels blend alike
_CHANNELS: dict[str, tuple[int, int, int] | None] = {
    "RGB": None,
    "Linear": None,
    "HSL": (0, 1, 2),
    "HSV": (0, 1, 2),
    "Okhsl": (0, 1, 2),
    "Okhsv": (0, 1, 2),
    "Oklch": (2, 1, 0),
    "LCh": (2, 1, 0),
}
_BIG32 = 3.4028234663852886e38  # float32's largest: what InvokeAI puts in place of NaN


def _t_linear(srgb: Any) -> Any:
    """sRGB -> linear light on a float32 tensor."""
    import torch

    return torch.where(srgb <= 0.0404482362771082, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def _t_srgb(lin: Any) -> Any:
    """Linear light (clamped to [0, 1]) -> sRGB on a float32 tensor."""
    import torch

    lin = lin.clamp(0.0, 1.0)
    return torch.where(
        lin < 0.0404482362771082 / 12.92, lin * 12.92, lin ** (1 / 2.4) * 1.055 - 0.055
    )


def _t_bytes(x: Any) -> np.ndarray:
    """float tensor (c, y, x) -> uint8 array (y, x, c), truncating as torchvision does."""
    return (x * 255).byte().permute(1, 2, 0).numpy()


def _t_from(image: Image.Image) -> Any:
    """PIL image -> float32 tensor (c, y, x) in [0, 1]."""
    import torch

    arr = np.asarray(image, dtype=np.uint8)
    arr = arr[..., None] if arr.ndim == 2 else arr
    return torch.from_numpy(arr.astype(np.float32) / np.float32(255)).permute(2, 0, 1).contiguous()


def _np_space(fn: Any, rgb: Any, *args: Any) -> Any:
    """Run one of our numpy colour conversions on a (3, y, x) tensor."""
    import torch

    out = fn(rgb.permute(1, 2, 0).double().numpy(), *args)
    return torch.from_numpy(np.ascontiguousarray(out)).float().permute(2, 0, 1).contiguous()


def _polar(lab: Any) -> Any:
    """(L, a, b) -> (L, chroma, hue angle in radians)."""
    import torch

    return torch.stack([lab[0], torch.sqrt(lab[1] ** 2 + lab[2] ** 2), torch.atan2(lab[2], lab[1])])


def _cielab_lch(image: Image.Image) -> Any:
    """CIELab LCh of an RGB image through littleCMS: L in [0, 1], a/b in [-1, 1]."""
    import torch

    to_lab, _ = _lab_transforms()
    lab = ImageCms.applyTransform(image, to_lab)
    # per band: numpy's view of a LAB image stores a/b differently from getchannel's bytes
    t = torch.cat([_t_from(lab.getchannel(band)) for band in "LAB"])
    return _polar(torch.stack([t[0], t[1] * 2.0 - 1.0, t[2] * 2.0 - 1.0]))


def _eal(lch: Any) -> Any:
    """Equivalent achromatic lightness (High, Green & Nussbaum 2023) as InvokeAI computes it:
    the chroma correction is one sum over the whole image, added and then normalised away."""
    import math

    import torch

    hue = lch[2]
    turned = torch.remainder(hue - math.pi / 2 + 3 * math.pi, 2 * math.pi) - math.pi
    f_by = 0.1644 * torch.abs(torch.sin(turned / 2.0)) + 0.0603
    f_r = torch.where(
        (hue >= -math.pi / 2) & (hue <= math.pi / 2),
        0.1307 * torch.abs(torch.cos(hue)) + 0.0060,
        torch.zeros_like(hue),
    )
    shift = torch.tensordot(f_by + f_r, lch[1], dims=([0, 1], [0, 1]))
    low, high = torch.zeros_like(hue) + shift, torch.ones_like(hue) + shift
    return (lch[0] + shift - low.min()) / (high.max() - low.min())


def _hsl(rgb: Any) -> Any:
    """sRGB -> HSL, all in [0, 1] (the colorsys definitions, vectorised)."""
    import torch

    hi, lo = rgb.max(0).values, rgb.min(0).values
    grey = hi == lo
    light = (hi + lo) / 2.0
    sat = torch.where(light < 0.5, (hi - lo) / (hi + lo), (hi - lo) / (-(hi + lo) + 2.0))
    sat = torch.where(grey, 0.0, sat)
    rc, gc, bc = (hi - rgb) / (hi - lo)
    hue = torch.where(
        rgb[0] == hi, bc - gc, torch.where(rgb[1] == hi, rc - bc + 2.0, gc - rc + 4.0)
    )
    hue = torch.remainder(torch.where(grey, 0.0, hue) / 6.0, 1.0)
    return torch.stack([hue, sat, light])


def _rgb_from_hsl(hsl: Any) -> Any:
    """HSL -> sRGB (inputs clamped to [0, 1] first)."""
    import torch

    h, s, lig = hsl.clamp(0.0, 1.0)
    m2 = torch.where(lig <= 0.5, lig * (s + 1.0), lig + s - lig * s)
    m1 = lig * 2.0 - m2

    def channel(hue: Any) -> Any:
        hue = torch.remainder(hue, 1.0)
        rising = m1 + (m2 - m1) * (hue * 6.0)
        falling = m1 + (m2 - m1) * ((-hue + 2.0 / 3.0) * 6.0)
        return torch.where(
            hue < 1.0 / 6.0,
            rising,
            torch.where(hue < 0.5, m2, torch.where(hue < 2.0 / 3.0, falling, m1)),
        )

    return torch.stack([channel(h + 1.0 / 3.0), channel(h), channel(h - 1.0 / 3.0)])


def _no_nans(x: Any) -> Any:
    import torch

    return torch.where(torch.isnan(x), _BIG32, x)


class _Blender:
    """One blend: the chosen space's tensors of both layers and the way back to linear sRGB."""

    def __init__(self, space: str, adaptive_gamut: float, steps: int) -> None:
        self.space, self.alpha, self.steps = space, adaptive_gamut, steps

    def to_space(self, rgb: Any, image: Image.Image) -> Any:
        s = self.space
        if s == "RGB":
            return rgb
        if s == "Linear":
            return _t_linear(rgb)
        if s == "HSL":
            return _hsl(rgb)
        if s == "HSV":
            return _t_from(image.convert("HSV"))
        if s == "Okhsl":
            return _np_space(oklab.okhsl_from_srgb, rgb, self.steps)
        if s == "Okhsv":
            return _np_space(oklab.okhsv_from_srgb, rgb, self.steps)
        if s == "Oklch":
            return _polar(
                _np_space(lambda x: oklab.oklab_from_linear(oklab.linear_from_srgb(x)), rgb)
            )
        return _cielab_lch(image)

    def back(self, t: Any) -> Any:
        """Space tensor -> linear sRGB (no clipping beyond what the space itself does)."""
        import torch

        s = self.space
        if s == "RGB":
            return _t_linear(t)
        if s == "Linear":
            return t
        if s == "HSL":
            return _t_linear(_rgb_from_hsl(t))
        if s == "HSV":
            rgb = Image.fromarray(_t_bytes(t.clamp(0.0, 1.0)), "HSV").convert("RGB")
            return _t_linear(_t_from(rgb))
        if s in ("Okhsl", "Okhsv"):
            fn = oklab.srgb_from_okhsl if s == "Okhsl" else oklab.srgb_from_okhsv
            rgb = _np_space(fn, t.clamp(0.0, 1.0), self.alpha, self.steps)
            return _t_linear(torch.nan_to_num(rgb, nan=0.0).clamp(0.0, 1.0))
        lab = torch.stack([t[0], t[1] * torch.cos(t[2]), t[1] * torch.sin(t[2])])
        if s == "Oklch":
            return _np_space(oklab.linear_from_oklab, lab)
        planes = [lab[0].clamp(0.0, 1.0), (lab[1] + 1.0) / 2.0, (lab[2] + 1.0) / 2.0]
        merged = Image.merge(
            "LAB", [Image.fromarray(_t_bytes(p[None])[..., 0], "L") for p in planes]
        )
        return _t_linear(_t_from(ImageCms.applyTransform(merged, _lab_transforms()[1])))

    def clipped(self, lin: Any) -> Any:
        """NaNs out, optional adaptive gamut clip, clamp to [0, 1]."""
        lin = _no_nans(lin)
        if self.alpha > 0:
            lin = _no_nans(self.gamut_clip(lin))
        return lin.clamp(0.0, 1.0)

    def gamut_clip(self, lin: Any) -> Any:
        return _np_space(oklab.gamut_clip, lin, self.alpha, self.steps)


def _blend(mode: str, up: Any, lo: Any, bl: _Blender, eal: tuple[Any, Any] | None) -> Any:
    """The blended layer in linear sRGB. Modes follow InvokeAI 6.11.1: in hue/chroma/lightness
    spaces the contrast modes act on the lightness channel only, the arithmetic ones on all
    three (hue wrapped to [0, 1)); Color Burn and Vivid Light in (linear) RGB are as InvokeAI
    has them (the latter goes back to linear light twice)."""
    import torch

    idx = _CHANNELS[bl.space]
    hue_i, sat_i, lig_i = idx if idx is not None else (None, None, None)

    def on_lightness(fn: Any, target: Any) -> Any:
        if lig_i is None:
            return fn(up, lo)
        target[lig_i] = fn(up[lig_i], lo[lig_i])
        return target

    def wrap_hue(t: Any) -> Any:
        if hue_i is not None:
            t[hue_i] = torch.remainder(t[hue_i], 1.0)
        return t

    if mode == "Normal":
        return bl.back(up)
    if mode == "Multiply":
        return bl.back(lo * up)
    if mode == "Screen":
        return bl.back(-((-up + 1.0) * (-lo + 1.0)) + 1.0)
    if mode in ("Overlay", "Hard Light"):

        def overlay(u: Any, b: Any) -> Any:
            cond = (b if mode == "Overlay" else u) < 0.5
            return torch.where(cond, b * u * 2.0, -((-b + 1.0) * (-u + 1.0) * 2.0) + 1.0)

        return bl.clipped(bl.back(on_lightness(overlay, up)))
    if mode == "Soft Light":
        g_all = torch.where(
            (lo <= 0.25) if lig_i is None else (lo[lig_i] <= 0.25).expand(up.shape),
            ((lo * 16.0 - 12.0) * lo + 4.0) * lo,
            torch.sqrt(lo),
        )

        def soft(u: Any, b: Any) -> Any:
            g = g_all if lig_i is None else g_all[lig_i]
            return torch.where(
                u <= 0.5, b - (-b + 1.0) * b * (-(u * 2.0) + 1.0), b + (u * 2.0 - 1.0) * (g - b)
            )

        return bl.clipped(bl.back(on_lightness(soft, lo)))
    if mode in ("Linear Dodge (Add)", "Color Dodge", "Divide", "Subtract"):
        op = {
            "Linear Dodge (Add)": lambda: lo + up,
            "Color Dodge": lambda: lo / (-up + 1.0),
            "Divide": lambda: lo / up,
            "Subtract": lambda: lo - up,
        }[mode]
        return bl.clipped(bl.back(wrap_hue(op())))
    if mode == "Linear Burn":
        return bl.clipped(bl.back(on_lightness(lambda u, b: b + u - 1.0, lo)))
    if mode == "Linear Light":
        return bl.clipped(bl.back(on_lightness(lambda u, b: b + u * 2.0 - 1.0, lo)))
    if mode == "Color Burn":
        burnt = -torch.minimum((-lo + 1.0) / up, torch.ones_like(lo)) + 1.0
        return bl.clipped(bl.back(burnt))
    if mode == "Vivid Light":

        def vivid(u: Any, b: Any) -> Any:
            return torch.where(u < 0.5, (-((-b + 1.0) / u) + 1.0) / 2.0, b / (-u + 1.0) / 2.0)

        if lig_i is None:
            return bl.clipped(bl.back(bl.clipped(bl.back(vivid(up, lo)))))
        return bl.clipped(bl.back(on_lightness(vivid, lo)))
    if mode == "Difference":
        return bl.clipped(bl.back(torch.abs(lo - up)))
    if mode in ("Darken Only", "Lighten Only"):
        if lig_i is None:
            return bl.back(
                torch.minimum(up, lo) if mode == "Darken Only" else torch.maximum(up, lo)
            )
        keep_lower = up[lig_i] >= lo[lig_i] if mode == "Darken Only" else up[lig_i] < lo[lig_i]
        return bl.back(torch.where(keep_lower.expand(up.shape), lo, up))
    if mode in _POLAR:
        from_lower = {
            "Hue": (lig_i, sat_i),
            "Saturation": (lig_i, hue_i),
            "Color": (lig_i,),
            "Luminosity": (sat_i, hue_i),
        }[mode]
        for i in from_lower:
            up[i] = lo[i]
        return bl.back(up)
    assert eal is not None  # the two EAL modes
    eal_up, eal_lo = eal
    keep_lower = eal_up < eal_lo if mode == "Lighten Only (EAL)" else eal_up >= eal_lo
    return bl.back(torch.where(keep_lower.expand(up.shape), lo, up))


def _fit(image: Image.Image, base: Image.Image, to_width: bool, to_height: bool) -> Image.Image:
    """Scale ``image`` to the base's size: stretch (both), pad with zeros, or crop to fill."""
    size = base.size
    a_base, a_img = base.width / base.height, image.width / image.height
    if to_width and to_height:
        return image.resize(size)
    if (to_width and a_base < a_img) or (to_height and a_img <= a_base):
        return ImageOps.pad(image, size, color=tuple(0 for _ in image.getbands()))
    if (to_width and a_img <= a_base) or (to_height and a_base < a_img):
        return ImageOps.fit(image, size)
    return image


def _split_alpha(image: Image.Image) -> tuple[Image.Image, Any]:
    """RGB part and alpha plane (ones unless the image is RGBA, as InvokeAI reads it)."""
    import torch

    if image.mode == "RGBA":
        return image.convert("RGB"), _t_from(image.getchannel("A"))[0]
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return rgb, torch.ones((image.height, image.width))


def _to_srgb(image: Image.Image) -> tuple[Image.Image, bytes | None]:
    """An image with an embedded ICC profile converted to sRGB RGBA, and that profile."""
    icc = image.info.get("icc_profile")
    if not icc:
        return image, None
    srgb = ImageCms.createProfile("sRGB")
    xform = ImageCms.buildTransformFromOpenProfiles(BytesIO(icc), srgb, image.mode, "RGBA")
    return ImageCms.applyTransform(image, xform), icc


@node(
    "invokeai_img_blend",
    title="Image Layer Blend",
    category="image",
    tags=["image", "blend", "layer", "alpha", "composite", "dodge", "burn"],
    version="1.2.0",
)
class ImageLayerBlendNode(ImageSavingNode):
    """Blends an upper layer onto a base like a paint program's layer modes, in the chosen
    colour space, then alpha-composites it with its opacity; white in ``mask`` keeps the base.
    The result has the base's size and mode (and its ICC profile, if it had one)."""

    layer_upper: ImageField = InputField(description="The top image to blend", ui_order=1)
    blend_mode: BLEND_MODES = InputField(
        default="Normal", description="Available blend modes", ui_order=2
    )
    opacity: float = InputField(
        default=1.0, ge=0, description="Desired opacity of the upper layer", ui_order=3
    )
    mask: ImageField | None = InputField(
        default=None,
        description="Optional mask, used to restrict areas from blending",
        ui_order=4,
    )
    fit_to_width: bool = InputField(
        default=False, description="Scale upper layer to fit base width", ui_order=5
    )
    fit_to_height: bool = InputField(
        default=True, description="Scale upper layer to fit base height", ui_order=6
    )
    layer_base: ImageField = InputField(description="The bottom image to blend", ui_order=7)
    color_space: BLEND_SPACES = InputField(
        default="RGB", description="Available color spaces for blend computations", ui_order=8
    )
    adaptive_gamut: float = InputField(
        default=0.0,
        ge=0,
        description="Adaptive gamut clipping (0=off). Higher prioritizes chroma over lightness",
        ui_order=9,
    )
    high_precision: bool = InputField(
        default=True, description="Use more steps in computing gamut when possible", ui_order=10
    )

    def invoke(self, ctx: Context) -> ImageOutput:
        import torch

        upper, _ = _to_srgb(ctx.images.get_pil(self.layer_upper))
        base_in = ctx.images.get_pil(self.layer_base)
        base, base_icc = _to_srgb(base_in)
        upper = _fit(upper, base, self.fit_to_width, self.fit_to_height)
        mask, mask_size = None, None
        if self.mask is not None:
            fitted = _fit(
                ctx.images.get_pil(self.mask), base, self.fit_to_width, self.fit_to_height
            )
            mask, mask_size = _t_from(fitted.convert("L"))[0], fitted.size
        upper_rgb, alpha_up = _split_alpha(upper)
        base_rgb, alpha_lo = _split_alpha(base)
        for what, size in (("upper layer", upper_rgb.size), ("mask", mask_size)):
            if size is not None and size != base_rgb.size:
                raise ValueError(
                    f"node {self.id!r}: the {what} is {size[0]}x{size[1]} after fitting, the "
                    f"base {base_rgb.width}x{base_rgb.height}: set fit_to_width or fit_to_height"
                )
        space = self.color_space.split()[0]
        if space in ("RGB", "Linear") and self.blend_mode in _POLAR:
            space = "HSL"
        steps = 3 if self.high_precision else 1
        bl = _Blender(space, self.adaptive_gamut, steps)
        up_t, lo_t = _t_from(upper_rgb), _t_from(base_rgb)
        eal = None
        if "EAL" in self.blend_mode:
            eal = (_eal(_cielab_lch(upper_rgb)), _eal(_cielab_lch(base_rgb)))
        blended = _blend(
            self.blend_mode, bl.to_space(up_t, upper_rgb), bl.to_space(lo_t, base_rgb), bl, eal
        )
        if self.adaptive_gamut > 0:
            blended = bl.gamut_clip(blended)
        top = _no_nans(_t_srgb(blended))
        a_up = alpha_up * self.opacity
        if mask is not None:
            a_up = a_up * (-mask + 1.0)
        a_out = a_up + alpha_lo * (-a_up + 1.0)
        rgb = (top * a_up + lo_t * alpha_lo * (-a_up + 1.0)) / a_out
        out = Image.fromarray(_t_bytes(torch.cat([rgb, a_out[None]])), "RGBA")
        if base_icc is not None:
            srgb = ImageCms.createProfile("sRGB")
            xform = ImageCms.buildTransformFromOpenProfiles(srgb, BytesIO(base_icc), "RGBA", "RGBA")
            out = ImageCms.applyTransform(out, xform)
        else:
            out = out.convert(base_in.mode)
        return self.save_image(ctx, out)
