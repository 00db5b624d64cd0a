"""Image tools of InvokeAI's library: boxes, canvas paste-back, panels, enhance, thresholds,
dilate/erode. Ids, fields and results follow InvokeAI 6.11.1 (boxes from masks include the
last masked pixel as ``x_max``/``y_max``, as InvokeAI computes them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from invoke_nb.nodes.base import Input, InputField, Node, Output, OutputField, node, output
from invoke_nb.nodes.primitives import ImageOutput, ImageSavingNode
from invoke_nb.nodes.types import ColorField, ImageField
from invoke_nb.nodes.utilities import BoundingBoxField, BoundingBoxOutput

if TYPE_CHECKING:
    from invoke_nb.nodes.context import Context

__all__: list[str] = []


@node("show_image", title="Show Image", category="image", tags=["image"], version="1.0.1")
class ShowImageNode(Node):
    """Passes an image on unchanged; the editor shows it on the node."""

    image: ImageField = InputField(description="The image to show")

    def invoke(self, ctx: Context) -> ImageOutput:
        return ImageOutput.of(self.image, ctx.images.get_pil(self.image))


@node(
    "crop_image_to_bounding_box",
    title="Crop Image to Bounding Box",
    category="image",
    tags=["image", "crop"],
    version="1.0.0",
)
class CropImageToBoundingBoxNode(ImageSavingNode):
    """Crops to a box; without a box, to the image's non-empty area (PIL's ``getbbox``)."""

    image: ImageField = InputField(description="The image to crop")
    bounding_box: BoundingBoxField | None = InputField(
        default=None, description="The bounding box to crop the image to"
    )

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image)
        box = self.bounding_box.box() if self.bounding_box is not None else image.getbbox()
        return self.save_image(ctx, image.crop(box))


@node(
    "paste_image_into_bounding_box",
    title="Paste Image into Bounding Box",
    category="image",
    tags=["image", "crop"],
    version="1.0.0",
)
class PasteImageIntoBoundingBoxNode(ImageSavingNode):
    """Pastes ``source_image`` (its alpha as the mask) into ``target_image`` at a box of the
    source's size."""

    source_image: ImageField = InputField(description="The image to paste")
    target_image: ImageField = InputField(description="The image to paste into")
    bounding_box: BoundingBoxField = InputField(
        description="The bounding box to paste the image into"
    )

    def invoke(self, ctx: Context) -> ImageOutput:
        source = ctx.images.get_pil(self.source_image, mode="RGBA")
        target = ctx.images.get_pil(self.target_image, mode="RGBA").copy()
        box = self.bounding_box.box()
        if (box[2] - box[0], box[3] - box[1]) != source.size:
            raise ValueError(
                f"node {self.id!r}: box {box} is {box[2] - box[0]}x{box[3] - box[1]}, "
                f"the source image {source.width}x{source.height}"
            )
        target.paste(source, box, source)
        return self.save_image(ctx, target)


@node(
    "get_image_mask_bounding_box",
    title="Get Image Mask Bounding Box",
    category="mask",
    tags=["mask"],
    version="1.0.0",
)
class GetImageMaskBoundingBoxNode(Node):
    """The box around every pixel of ``mask_color`` in a mask image, grown by ``margin``."""

    mask: ImageField = InputField(description="Mask image")
    margin: int = InputField(default=0, description="Pixels added on every side")
    mask_color: ColorField = InputField(
        default_factory=lambda: ColorField(r=255, g=255, b=255, a=255),
        description="Colour of the masked pixels",
    )

    def invoke(self, ctx: Context) -> BoundingBoxOutput:
        arr = np.asarray(ctx.images.get_pil(self.mask, mode="RGBA"))
        ys, xs = np.nonzero(np.all(arr == np.array(self.mask_color.tuple()), axis=-1))
        if xs.size == 0:
            return BoundingBoxOutput(
                bounding_box=BoundingBoxField(x_min=0, y_min=0, x_max=0, y_max=0)
            )
        h, w = arr.shape[:2]
        m = self.margin
        return BoundingBoxOutput(
            bounding_box=BoundingBoxField(
                x_min=max(0, int(xs.min()) - m),
                y_min=max(0, int(ys.min()) - m),
                x_max=min(w, int(xs.max()) + m),
                y_max=min(h, int(ys.max()) + m),
            )
        )


@node(
    "canvas_v2_mask_and_crop",
    title="Canvas V2 Mask and Crop",
    category="image",
    tags=["image", "mask", "id"],
    version="1.0.0",
)
class CanvasV2MaskAndCropNode(ImageSavingNode):
    """Puts a generated image back over its source where the mask allows (or, without a
    source, makes the mask the generated image's alpha). The mask keeps white, like the canvas."""

    source_image: ImageField | None = InputField(
        default=None, description="Image to paste onto; without one, the mask becomes the alpha"
    )
    generated_image: ImageField = InputField(description="The image to apply the mask to")
    mask: ImageField = InputField(description="The mask to apply")
    mask_blur: int = InputField(default=0, ge=0, description="The amount to blur the mask by")

    def _alpha(self, mask: Image.Image) -> Image.Image:
        import cv2

        size = self.mask_blur
        shrunk = Image.fromarray(
            cv2.erode(np.asarray(mask), np.ones((size, size), np.uint8), iterations=3)
        )
        if size > 0:
            mask = shrunk.filter(ImageFilter.GaussianBlur(size))
        return ImageOps.invert(mask.convert("L"))

    def invoke(self, ctx: Context) -> ImageOutput:
        alpha = self._alpha(ctx.images.get_pil(self.mask))
        generated = ctx.images.get_pil(self.generated_image).copy()
        if self.source_image is not None:
            out = ctx.images.get_pil(self.source_image).copy()
            out.paste(generated, (0, 0), alpha)
        else:
            out = generated
            out.putalpha(alpha)
        return self.save_image(ctx, out)


@output("image_panel_coordinate_output")
class ImagePanelCoordinateOutput(Output):
    """Where one panel of a grid sits."""

    x_left: int = OutputField(description="Panel left edge")
    y_top: int = OutputField(description="Panel top edge")
    width: int = OutputField(description="Panel width")
    height: int = OutputField(description="Panel height")


@node(
    "image_panel_layout",
    title="Image Panel Layout",
    category="image",
    tags=["image", "panel", "layout"],
    version="1.0.0",
)
class ImagePanelLayoutNode(Node):
    """The place of panel (row, column) when a width x height canvas is cut into a grid."""

    width: int = InputField(description="Grid width in pixels")
    height: int = InputField(description="Grid height in pixels")
    num_cols: int = InputField(default=1, ge=1, description="Columns")
    num_rows: int = InputField(default=1, ge=1, description="Rows")
    panel_col_idx: int = InputField(default=0, ge=0, description="Panel column (from 0)")
    panel_row_idx: int = InputField(default=0, ge=0, description="Panel row (from 0)")

    def invoke(self, ctx: Context) -> ImagePanelCoordinateOutput:
        w, h = self.width // self.num_cols, self.height // self.num_rows
        return ImagePanelCoordinateOutput(
            x_left=self.panel_col_idx * w, y_top=self.panel_row_idx * h, width=w, height=h
        )


# ---------------------------------------------------------------------------------------
# Composition tools (InvokeAI's "composition-nodes")


@node(
    "invokeai_img_enhance",
    title="Enhance Image",
    category="image",
    tags=["enhance", "image"],
    version="1.2.1",
)
class ImageEnhanceNode(ImageSavingNode):
    """Inverts, then adjusts colour, contrast, brightness and sharpness (1.0 = unchanged)."""

    image: ImageField = InputField(description="Input image")
    invert: bool = InputField(default=False, description="Whether to invert the image colors")
    color: float = InputField(default=1.0, ge=0, description="Color enhancement factor")
    contrast: float = InputField(default=1.0, ge=0, description="Contrast enhancement factor")
    brightness: float = InputField(default=1.0, ge=0, description="Brightness enhancement factor")
    sharpness: float = InputField(default=1.0, ge=0, description="Sharpness enhancement factor")

    def invoke(self, ctx: Context) -> ImageOutput:
        img = ctx.images.get_pil(self.image)
        if self.invert:
            img = ImageOps.invert(img if img.mode in ("L", "RGB") else img.convert("RGB"))
        for factor, enhancer in (
            (self.color, ImageEnhance.Color),
            (self.contrast, ImageEnhance.Contrast),
            (self.brightness, ImageEnhance.Brightness),
            (self.sharpness, ImageEnhance.Sharpness),
        ):
            if factor != 1.0:
                img = enhancer(img).enhance(factor)
        return self.save_image(ctx, img)


_ALPHA_MODES = {
    "RGBA": ("RGB", "A"),
    "RGBa": ("RGB", "a"),
    "LA": ("L", "A"),
    "La": ("L", "a"),
    "PA": ("P", "A"),
}


def _on_lightness(image: Image.Image, op: Any) -> Image.Image:
    """Applies ``op`` (PIL "L" image -> same) to the CIELAB lightness only, keeping alpha."""
    base_mode, alpha_band = _ALPHA_MODES.get(image.mode, (image.mode, None))
    alpha = image.getchannel(alpha_band) if alpha_band else None
    lab = image.convert("RGB").convert("LAB")
    lab = Image.merge("LAB", (op(lab.getchannel("L")), lab.getchannel("A"), lab.getchannel("B")))
    out = lab.convert("RGB") if base_mode in ("L", "P") else lab
    out = out.convert(base_mode)
    if alpha is not None:
        out = Image.merge(image.mode, [*(out.getchannel(c) for c in base_mode), alpha])
    return out


@node(
    "invokeai_img_dilate_erode",
    title="Image Dilate or Erode",
    category="image",
    tags=["image", "mask", "dilate", "erode", "expand", "contract", "mask"],
    version="1.3.0",
)
class ImageDilateErodeNode(Node):
    """Grows (dilate) or shrinks (erode) bright areas with an elliptical kernel."""

    image: ImageField = InputField(description="Input image")
    radius_w: int = InputField(default=4, ge=0, description="Horizontal kernel radius in pixels")
    radius_h: int = InputField(default=4, ge=0, description="Vertical kernel radius in pixels")
    lightness_only: bool = InputField(
        default=False, description="Work on the CIELAB lightness only"
    )
    mode: Literal["Dilate", "Erode"] = InputField(
        default="Dilate", description="Grow or shrink bright areas"
    )
    metadata: dict[str, Any] | None = InputField(
        default=None,
        description="Optional metadata to be saved with the image",
        input=Input.CONNECTION,
    )

    def _morph(self, image: Image.Image) -> Image.Image:
        import cv2

        kernel = cv2.getStructuringElement(
            cv2.MORPH_ELLIPSE, (self.radius_w * 2 + 1, self.radius_h * 2 + 1)
        )
        fn = cv2.dilate if self.mode == "Dilate" else cv2.erode
        return Image.fromarray(fn(np.asarray(image), kernel, iterations=1), mode=image.mode)

    def invoke(self, ctx: Context) -> ImageOutput:
        img = ctx.images.get_pil(self.image)
        out = _on_lightness(img, self._morph) if self.lightness_only else self._morph(img)
        ref = ctx.images.save(out, metadata=self.metadata)
        return ImageOutput.of(ref, out)


def _to_grid(image: Image.Image, multiple: int = 8) -> np.ndarray:
    """Pixels in [0, 1], channels first, resized down to multiples of 8 (as InvokeAI does)."""
    w, h = image.width - image.width % multiple, image.height - image.height % multiple
    if (w, h) != image.size:
        image = image.resize((w, h), Image.Resampling.LANCZOS)
    arr = np.asarray(image, dtype=np.float32) / 255.0
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _from_grid(arr: np.ndarray, mode_hint: str) -> Image.Image:
    """Back to 8-bit (values truncated, as torchvision's ``to_pil_image`` does)."""
    u8 = (arr * 255).astype(np.uint8)
    if u8.shape[0] == 1:
        return Image.fromarray(u8[0], mode="L")
    return Image.fromarray(u8.transpose(1, 2, 0), mode=mode_hint if u8.shape[0] in (3, 4) else None)


@node(
    "invokeai_img_val_thresholds",
    title="Image Value Thresholds",
    category="image",
    tags=["image", "mask", "value", "threshold"],
    version="1.2.0",
)
class ImageValueThresholdsNode(ImageSavingNode):
    """Values at or above ``threshold_upper`` become 1, below ``threshold_lower`` 0; values
    between stay (or are stretched to 0..1 with ``renormalize_values``)."""

    image: ImageField = InputField(description="Input image")
    invert_output: bool = InputField(
        default=False, description="Swap which side of the thresholds becomes 1"
    )
    renormalize_values: bool = InputField(
        default=False, description="Stretch values between the thresholds to 0..1"
    )
    lightness_only: bool = InputField(
        default=False, description="Work on the CIELAB lightness only"
    )
    threshold_upper: float = InputField(default=0.5, description="Values at or above become 1")
    threshold_lower: float = InputField(default=0.5, description="Values below become 0")

    def _threshold(self, x: np.ndarray) -> np.ndarray:
        x = x.copy()
        hi, lo = self.threshold_upper, self.threshold_lower
        to_one, to_zero = (x < lo, x >= hi) if self.invert_output else (x >= hi, x < lo)
        if hi != lo and self.renormalize_values:
            between = (x >= lo) & (x < hi)
            vmax, vmin = max(hi, lo), min(hi, lo)
            scaled = (x[between] - vmin) / (vmax - vmin)
            x[between] = 1.0 - scaled if self.invert_output else scaled
        x[to_one] = 1.0
        x[to_zero] = 0.0
        return x

    def _on_image(self, image: Image.Image) -> Image.Image:
        return _from_grid(self._threshold(_to_grid(image)), image.mode)

    def invoke(self, ctx: Context) -> ImageOutput:
        img = ctx.images.get_pil(self.image)
        out = _on_lightness(img, self._on_image) if self.lightness_only else self._on_image(img)
        return self.save_image(ctx, out)


# ---------------------------------------------------------------------------------------
# Invisible watermark


@node(
    "img_watermark",
    title="Add Invisible Watermark",
    category="image",
    tags=["image", "watermark"],
    version="1.2.2",
)
class ImageWatermarkNode(ImageSavingNode):
    """Hides ``text`` in the image with the ``invisible-watermark`` library's DWT-DCT method,
    the way InvokeAI marks images (a decoder reading ``len(text) * 8`` bits gets it back)."""

    image: ImageField = InputField(description="The image to check")
    text: str = InputField(default="InvokeAI", description="Watermark text")

    def invoke(self, ctx: Context) -> ImageOutput:
        try:
            from imwatermark import WatermarkEncoder
        except ImportError:
            raise ImportError(
                f"node {self.id!r}: img_watermark needs the invisible-watermark package "
                "(pip install 'invoke-nb[watermark]')"
            ) from None
        rgb = np.asarray(ctx.images.get_pil(self.image, mode="RGB"))
        encoder = WatermarkEncoder()
        encoder.set_watermark("bytes", self.text.encode("utf-8"))
        marked = encoder.encode(np.ascontiguousarray(rgb[..., ::-1]), "dwtDct")  # BGR in/out
        out = Image.fromarray(np.ascontiguousarray(marked[..., ::-1])).convert("RGBA")
        return self.save_image(ctx, out)


def _chroma_key(text: str) -> tuple[int, ...]:
    """A key colour from CSS text (``"#00ff00"``, ``"green"``) or a tuple ``"(0, 255, 0)"``."""
    import ast

    from PIL import ImageColor

    if text.startswith("("):
        values = tuple(int(v) for v in ast.literal_eval(text))
        values = (*values, 0, 0, 0)[: max(3, len(values))]
        return (*values, 255) if len(values) == 3 else values
    return tuple(ImageColor.getcolor(text, "RGBA"))


@node(
    "invokeai_img_composite",
    title="Image Compositor",
    category="image",
    tags=["image", "compose", "chroma", "key"],
    version="1.2.0",
)
class ImageCompositorNode(ImageSavingNode):
    """Cuts a subject off its plain backdrop (a chroma key, or flood fill from the corners)
    and lays it over a background, scaled to fit and offset."""

    image_subject: ImageField = InputField(description="Subject on a plain backdrop")
    image_background: ImageField = InputField(description="Background scene")
    chroma_key: str = InputField(
        default="", description="Backdrop colour (CSS or a tuple); empty: flood from corners"
    )
    threshold: int = InputField(default=50, ge=0, description="Backdrop colour tolerance")
    fill_x: bool = InputField(default=False, description="Fit the subject to the background width")
    fill_y: bool = InputField(default=True, description="Fit the subject to the background height")
    x_offset: int = InputField(default=0, description="Subject shift to the right")
    y_offset: int = InputField(default=0, description="Subject shift upwards")

    def invoke(self, ctx: Context) -> ImageOutput:
        from PIL import ImageChops, ImageDraw

        bg = ctx.images.get_pil(self.image_background).convert("RGBA")
        subject = ctx.images.get_pil(self.image_subject).convert("RGBA")
        key = self.chroma_key.strip()
        if key:
            k = np.array(_chroma_key(key), dtype=np.int64)
            px = np.asarray(subject, dtype=np.int64)[..., : len(k)]
            arr = np.array(subject)
            arr[((px - k) ** 2).sum(-1) < self.threshold**2] = 0
            subject = Image.fromarray(arr, mode="RGBA")
        else:
            w, h = subject.width - 1, subject.height - 1
            for corner in ((0, 0), (0, h), (w, 0), (w, h)):
                ImageDraw.floodfill(subject, corner, (0, 0, 0, 0), thresh=self.threshold)
        size = bg.size
        a_bg, a_sub = bg.width / bg.height, subject.width / subject.height
        if self.fill_x and self.fill_y:
            subject = subject.resize(size)
        elif (self.fill_x and a_bg < a_sub) or (self.fill_y and a_sub <= a_bg):
            subject = ImageOps.pad(subject, size, color=(0, 0, 0, 0))
        elif (self.fill_x and a_sub <= a_bg) or (self.fill_y and a_bg < a_sub):
            subject = ImageOps.fit(subject, size)
        if self.x_offset or self.y_offset:
            subject = ImageChops.offset(subject, self.x_offset, yoffset=-self.y_offset)
        return self.save_image(ctx, Image.alpha_composite(bg, subject))


# ---------------------------------------------------------------------------------------
# NSFW check


@node(
    "img_nsfw", title="Blur NSFW Image", category="image", tags=["image", "nsfw"], version="1.2.3"
)
class ImageNSFWBlurNode(ImageSavingNode):
    """Blurs the image (Gaussian, radius 32) when the Stable Diffusion safety checker flags
    it. The checker is an installed model of type ``safety_checker`` (a diffusers
    ``StableDiffusionSafetyChecker`` folder with its CLIP image processor); InvokeAI also
    pastes a caution sign over the blur, which is left out here."""

    image: ImageField = InputField(description="The image to check")

    def flagged(self, ctx: Context, image: Image.Image) -> bool:
        """Whether the safety checker flags ``image``."""
        import torch

        from invoke_nb.nodes.types import ModelIdentifierField

        found = ctx.models.list(type="safety_checker") if ctx.models is not None else []
        if not found:
            raise LookupError(
                f"node {self.id!r}: no safety checker installed (install a diffusers "
                "StableDiffusionSafetyChecker folder with studio.models.install)"
            )
        ident = ModelIdentifierField(key=found[0].key, name=found[0].name, type="safety_checker")
        with ctx.models.load(ident) as (checker, processor):
            clip_input = processor([image], return_tensors="pt").pixel_values
            pixels = (np.asarray(image, dtype=np.float32) / 255.0)[None].transpose(0, 3, 1, 2)
            with torch.no_grad():
                _, has_nsfw = checker(images=pixels, clip_input=clip_input.to(checker.dtype))
        return bool(has_nsfw[0])

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image, mode="RGB")
        if self.flagged(ctx, image):
            ctx.log.warning("image flagged by the safety checker: blurred")
            image = image.filter(ImageFilter.GaussianBlur(radius=32))
        return self.save_image(ctx, image)


@node(
    "invokeai_ealightness",
    title="Equivalent Achromatic Lightness",
    category="image",
    tags=["image", "channel", "mask", "cielab", "lab"],
    version="1.2.0",
)
class EquivalentAchromaticLightnessNode(ImageSavingNode):
    """Greyscale lightness with the Helmholtz-Kohlrausch chroma correction, as InvokeAI
    computes it: the correction is summed over the whole image and then normalised away, so
    the result is the CIELAB lightness channel up to float rounding."""

    image: ImageField = InputField(description="Image from which to get channel")

    def invoke(self, ctx: Context) -> ImageOutput:
        import math

        import torch

        img = ctx.images.get_pil(self.image)
        lab = (img.convert("RGB") if img.mode == "L" else img).convert("LAB")

        def chan(name: str, signed: bool) -> torch.Tensor:
            x = torch.from_numpy(np.asarray(lab.getchannel(name), dtype=np.float32) / 255.0)[None]
            return x * 2.0 - 1.0 if signed else x

        lightness, a, b = chan("L", False), chan("A", True), chan("B", True)
        chroma = torch.sqrt(a**2 + b**2)
        hue = torch.atan2(b, a)
        k = (0.1644, 0.0603, 0.1307, 0.0060)
        shifted = torch.remainder(hue - math.pi / 2 + 3 * math.pi, 2 * math.pi) - math.pi
        f_by = k[0] * torch.abs(torch.sin(shifted / 2.0)) + k[1]
        f_r = torch.where(
            (hue >= -math.pi / 2) & (hue <= math.pi / 2),
            k[2] * torch.abs(torch.cos(hue)) + k[3],
            torch.zeros_like(hue),
        )
        adjust = torch.tensordot(f_by + f_r, chroma, dims=([1, 2], [1, 2]))
        low, high = torch.zeros_like(lightness) + adjust, torch.ones_like(lightness) + adjust
        out = (lightness + adjust - low.min()) / (high.max() - low.min())
        grey = (out[0] * 255).to(torch.uint8).numpy()  # truncation, as torchvision does
        return self.save_image(ctx, Image.fromarray(grey, mode="L"))
