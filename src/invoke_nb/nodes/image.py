"""Image operations on PIL images, with InvokeAI's node ids, fields and pixel semantics.

Every node reads its inputs through ``ctx.images.get_pil`` and stores a *new* image with
``ctx.images.save``: images behind references are shared with the output cache, so a node
never draws into an image it was given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
from PIL import Image, ImageChops, ImageFilter, ImageOps

from invoke_nb.nodes.base import InputField, Node, node
from invoke_nb.nodes.primitives import ImageOutput, ImageSavingNode
from invoke_nb.nodes.types import ColorField, ImageField

if TYPE_CHECKING:
    from invoke_nb.nodes.context import Context

__all__ = [
    "CHANNEL_FORMATS",
    "COLOR_CHANNELS",
    "IMAGE_MODES",
    "PIL_RESAMPLING_MAP",
    "PIL_RESAMPLING_MODES",
    "match_histogram",
    "same_size",
]

IMAGE_MODES = Literal["L", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "I", "F"]

PIL_RESAMPLING_MODES = Literal["nearest", "box", "bilinear", "hamming", "bicubic", "lanczos"]
PIL_RESAMPLING_MAP: dict[str, Image.Resampling] = {
    "nearest": Image.Resampling.NEAREST,
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "hamming": Image.Resampling.HAMMING,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}

COLOR_CHANNELS = Literal[
    "Red (RGBA)",
    "Green (RGBA)",
    "Blue (RGBA)",
    "Alpha (RGBA)",
    "Cyan (CMYK)",
    "Magenta (CMYK)",
    "Yellow (CMYK)",
    "Black (CMYK)",
    "Hue (HSV)",
    "Saturation (HSV)",
    "Value (HSV)",
    "Luminosity (LAB)",
    "A (LAB)",
    "B (LAB)",
    "Y (YCbCr)",
    "Cb (YCbCr)",
    "Cr (YCbCr)",
]
CHANNEL_FORMATS: dict[str, tuple[str, int]] = {
    name: (name[name.index("(") + 1 : -1], index)
    for names in (
        ("Red (RGBA)", "Green (RGBA)", "Blue (RGBA)", "Alpha (RGBA)"),
        ("Cyan (CMYK)", "Magenta (CMYK)", "Yellow (CMYK)", "Black (CMYK)"),
        ("Hue (HSV)", "Saturation (HSV)", "Value (HSV)"),
        ("Luminosity (LAB)", "A (LAB)", "B (LAB)"),
        ("Y (YCbCr)", "Cb (YCbCr)", "Cr (YCbCr)"),
    )
    for index, name in enumerate(names)
}
"""Channel choice -> (PIL mode to work in, band index)."""


def same_size(n: Node, what: str, a: Image.Image, b: Image.Image) -> None:
    """Raise a ``ValueError`` naming the node when two images that must match in size do not."""
    if a.size != b.size:
        raise ValueError(
            f"node {n.id!r} ({n.type_id}): {what} must have the same size, got "
            f"{a.width}x{a.height} and {b.width}x{b.height}"
        )


def alpha_of(image: Image.Image) -> Image.Image | None:
    """The alpha band of an image that has one, else ``None``."""
    return image.getchannel("A") if image.mode in ("RGBA", "LA", "PA") else None


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Clip to 0..255 and truncate to bytes (InvokeAI truncates rather than rounds)."""
    return np.clip(arr, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------


@node("blank_image", title="Blank Image", category="image", tags=["image"], version="1.2.2")
class BlankImageNode(ImageSavingNode):
    """A new image filled with one colour."""

    width: int = InputField(default=512, gt=0, description="The width of the image")
    height: int = InputField(default=512, gt=0, description="The height of the image")
    mode: Literal["RGB", "RGBA"] = InputField(default="RGB", description="The mode of the image")
    color: ColorField = InputField(
        default_factory=lambda: ColorField(r=0, g=0, b=0, a=255),
        description="The color of the image",
    )

    def invoke(self, ctx: Context) -> ImageOutput:
        fill = self.color.tuple() if self.mode == "RGBA" else self.color.tuple()[:3]
        return self.save_image(ctx, Image.new(self.mode, (self.width, self.height), fill))


@node("img_crop", title="Crop Image", category="image", tags=["image", "crop"], version="1.2.2")
class ImageCropNode(ImageSavingNode):
    """Crops to a box that may reach outside the image; the outside is transparent."""

    image: ImageField = InputField(description="The image to crop")
    x: int = InputField(default=0, description="The left x coordinate of the crop rectangle")
    y: int = InputField(default=0, description="The top y coordinate of the crop rectangle")
    width: int = InputField(default=512, gt=0, description="The width of the crop rectangle")
    height: int = InputField(default=512, gt=0, description="The height of the crop rectangle")

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image)
        out = Image.new("RGBA", (self.width, self.height), (0, 0, 0, 0))
        out.paste(image, (-self.x, -self.y))
        return self.save_image(ctx, out)


@node(
    "img_pad_crop",
    title="Center Pad or Crop Image",
    category="image",
    tags=["image", "pad", "crop"],
    version="1.0.0",
)
class CenterPadCropNode(ImageSavingNode):
    """Grows (positive) or shrinks (negative) each side by a number of pixels; new area is
    transparent."""

    image: ImageField = InputField(description="The image to crop")
    left: int = InputField(default=0, description="Pixels to pad (+) or crop (-) on the left")
    right: int = InputField(default=0, description="Pixels to pad (+) or crop (-) on the right")
    top: int = InputField(default=0, description="Pixels to pad (+) or crop (-) on the top")
    bottom: int = InputField(default=0, description="Pixels to pad (+) or crop (-) on the bottom")

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image)
        width = image.width + self.left + self.right
        height = image.height + self.top + self.bottom
        if width <= 0 or height <= 0:
            raise ValueError(
                f"node {self.id!r} (img_pad_crop): cropping {image.width}x{image.height} by "
                f"left={self.left} right={self.right} top={self.top} bottom={self.bottom} "
                "leaves no image"
            )
        out = Image.new("RGBA", (width, height), (0, 0, 0, 0))
        out.paste(image, (self.left, self.top))
        return self.save_image(ctx, out)


@node("img_paste", title="Paste Image", category="image", tags=["image", "paste"], version="1.2.2")
class ImagePasteNode(ImageSavingNode):
    """Pastes an image onto a base image, growing the canvas to fit unless ``crop``.

    The optional mask is InvokeAI's: black pastes, white keeps the base.
    """

    base_image: ImageField = InputField(description="The base image")
    image: ImageField = InputField(description="The image to paste")
    mask: ImageField | None = InputField(default=None, description="The mask to use when pasting")
    x: int = InputField(default=0, description="The left x coordinate at which to paste the image")
    y: int = InputField(default=0, description="The top y coordinate at which to paste the image")
    crop: bool = InputField(default=False, description="Crop to base image dimensions")

    def invoke(self, ctx: Context) -> ImageOutput:
        base = ctx.images.get_pil(self.base_image, mode="RGBA")
        image = ctx.images.get_pil(self.image, mode="RGBA")
        mask = None
        if self.mask is not None:
            mask = ImageOps.invert(ctx.images.get_pil(self.mask, mode="L"))
            same_size(self, "image and mask", image, mask)

        left, top = min(0, self.x), min(0, self.y)
        right = max(base.width, image.width + self.x)
        bottom = max(base.height, image.height + self.y)
        canvas = Image.new("RGBA", (right - left, bottom - top), (0, 0, 0, 0))
        canvas.paste(base, (-left, -top))
        layer = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
        layer.paste(image, (self.x - left, self.y - top), mask=mask)
        out = Image.alpha_composite(canvas, layer)
        if self.crop:
            out = out.crop((-left, -top, -left + base.width, -top + base.height))
        return self.save_image(ctx, out)


@node(
    "img_mul",
    title="Multiply Images",
    category="image",
    tags=["image", "multiply"],
    version="1.2.2",
)
class ImageMultiplyNode(ImageSavingNode):
    """Multiplies two images pixel by pixel (``a * b / 255`` per band)."""

    image1: ImageField = InputField(description="The first image to multiply")
    image2: ImageField = InputField(description="The second image to multiply")

    def invoke(self, ctx: Context) -> ImageOutput:
        image1 = ctx.images.get_pil(self.image1)
        image2 = ctx.images.get_pil(self.image2, mode=image1.mode)
        same_size(self, "image1 and image2", image1, image2)
        return self.save_image(ctx, ImageChops.multiply(image1, image2))


@node(
    "img_chan",
    title="Extract Image Channel",
    category="image",
    tags=["image", "channel"],
    version="1.2.2",
)
class ImageChannelNode(ImageSavingNode):
    """One band of an image as a greyscale image (``A`` of an opaque image is all white)."""

    image: ImageField = InputField(description="The image to get the channel from")
    channel: Literal["A", "R", "G", "B"] = InputField(default="A", description="The channel to get")

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image)
        if self.channel not in image.getbands():
            image = image.convert("RGBA")
        return self.save_image(ctx, image.getchannel(self.channel))


@node(
    "img_conv",
    title="Convert Image Mode",
    category="image",
    tags=["image", "convert"],
    version="1.2.2",
)
class ImageConvertNode(ImageSavingNode):
    """Converts an image to another PIL mode."""

    image: ImageField = InputField(description="The image to convert")
    mode: IMAGE_MODES = InputField(default="L", description="The mode to convert to")

    def invoke(self, ctx: Context) -> ImageOutput:
        return self.save_image(ctx, ctx.images.get_pil(self.image).convert(self.mode))


@node("img_blur", title="Blur Image", category="image", tags=["image", "blur"], version="1.2.2")
class ImageBlurNode(ImageSavingNode):
    """Gaussian or box blur, on premultiplied alpha so transparent pixels do not bleed colour."""

    image: ImageField = InputField(description="The image to blur")
    radius: float = InputField(default=8.0, ge=0, description="The blur radius")
    blur_type: Literal["gaussian", "box"] = InputField(
        default="gaussian", description="The type of blur"
    )

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image, mode="RGBA")
        # blur premultiplied colour so that transparent pixels add no colour of their own
        alpha = image.getchannel("A")
        premultiplied = ImageChops.multiply(image, alpha.convert("RGBA"))
        premultiplied.putalpha(alpha)
        if self.blur_type == "gaussian":
            blur = ImageFilter.GaussianBlur(self.radius)
        else:
            blur = ImageFilter.BoxBlur(self.radius)
        blurred = np.asarray(premultiplied.filter(blur), dtype=np.float32)
        a = blurred[..., 3:4]
        with np.errstate(divide="ignore", invalid="ignore"):
            rgb = np.where(a > 0, blurred[..., :3] * 255.0 / a, 0.0)
        out = np.concatenate([np.clip(np.rint(rgb), 0, 255), a], axis=-1).astype(np.uint8)
        return self.save_image(ctx, Image.fromarray(out, "RGBA"))


@node(
    "unsharp_mask",
    title="Unsharp Mask",
    category="image",
    tags=["image", "unsharp_mask"],
    version="1.2.2",
)
class UnsharpMaskNode(ImageSavingNode):
    """Sharpens: adds ``strength`` % of the difference from a Gaussian blur; keeps alpha."""

    image: ImageField = InputField(description="The image to use")
    radius: float = InputField(default=2, gt=0, description="Unsharp mask radius")
    strength: float = InputField(default=50, ge=0, description="Unsharp mask strength")

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image)
        alpha = alpha_of(image)
        rgb = image.convert("RGB")
        blurred = np.asarray(rgb.filter(ImageFilter.GaussianBlur(self.radius)), dtype=np.float64)
        arr = np.asarray(rgb, dtype=np.float64)
        sharp = arr + (arr - blurred) * (self.strength / 100.0)
        out = Image.fromarray(_to_uint8(sharp), "RGB").convert(image.mode)
        if alpha is not None:
            out.putalpha(alpha)
        return self.save_image(ctx, out)


@node(
    "img_resize", title="Resize Image", category="image", tags=["image", "resize"], version="1.2.2"
)
class ImageResizeNode(ImageSavingNode):
    """Resizes to a given width and height."""

    image: ImageField = InputField(description="The image to resize")
    width: int = InputField(default=512, gt=0, description="The width to resize to (px)")
    height: int = InputField(default=512, gt=0, description="The height to resize to (px)")
    resample_mode: PIL_RESAMPLING_MODES = InputField(
        default="bicubic", description="The resampling mode"
    )

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image)
        out = image.resize(
            (self.width, self.height), resample=PIL_RESAMPLING_MAP[self.resample_mode]
        )
        return self.save_image(ctx, out)


@node("img_scale", title="Scale Image", category="image", tags=["image", "scale"], version="1.2.2")
class ImageScaleNode(ImageSavingNode):
    """Scales by a factor (the new size is truncated to whole pixels)."""

    image: ImageField = InputField(description="The image to scale")
    scale_factor: float = InputField(
        default=2.0, gt=0, description="The factor by which to scale the image"
    )
    resample_mode: PIL_RESAMPLING_MODES = InputField(
        default="bicubic", description="The resampling mode"
    )

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image)
        width, height = int(image.width * self.scale_factor), int(image.height * self.scale_factor)
        if width < 1 or height < 1:
            raise ValueError(
                f"node {self.id!r} (img_scale): scale_factor {self.scale_factor} makes "
                f"{image.width}x{image.height} smaller than one pixel"
            )
        out = image.resize((width, height), resample=PIL_RESAMPLING_MAP[self.resample_mode])
        return self.save_image(ctx, out)


@node("img_lerp", title="Lerp Image", category="image", tags=["image", "lerp"], version="1.2.2")
class ImageLerpNode(ImageSavingNode):
    """Maps every value v (0..255) to ``min + v/255 * (max - min)``."""

    image: ImageField = InputField(description="The image to lerp")
    min: int = InputField(default=0, ge=0, le=255, description="The minimum output value")
    max: int = InputField(default=255, ge=0, le=255, description="The maximum output value")

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image)
        arr = np.asarray(image, dtype=np.float32) / 255 * (self.max - self.min) + self.min
        return self.save_image(ctx, Image.fromarray(_to_uint8(arr)))


@node(
    "img_ilerp",
    title="Inverse Lerp Image",
    category="image",
    tags=["image", "ilerp"],
    version="1.2.2",
)
class ImageInverseLerpNode(ImageSavingNode):
    """Stretches values in [min, max] to 0..255, clamping the rest."""

    image: ImageField = InputField(description="The image to lerp")
    min: int = InputField(default=0, ge=0, le=255, description="The minimum input value")
    max: int = InputField(default=255, ge=0, le=255, description="The maximum input value")

    def invoke(self, ctx: Context) -> ImageOutput:
        if self.max <= self.min:
            raise ValueError(
                f"node {self.id!r} (img_ilerp): max ({self.max}) must be greater than min ({self.min})"
            )
        image = ctx.images.get_pil(self.image)
        arr = np.asarray(image, dtype=np.float32)
        arr = np.clip((arr - self.min) / float(self.max - self.min), 0, 1) * 255
        return self.save_image(ctx, Image.fromarray(_to_uint8(arr)))


@node(
    "img_hue_adjust",
    title="Adjust Image Hue",
    category="image",
    tags=["image", "hue"],
    version="1.2.2",
)
class ImageHueAdjustmentNode(ImageSavingNode):
    """Rotates the hue by a number of degrees (HSV, 256 hue steps); the result is RGBA."""

    image: ImageField = InputField(description="The image to adjust")
    hue: int = InputField(default=0, description="The degrees by which to rotate the hue, 0-360")

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image)
        alpha = alpha_of(image)
        hsv = np.array(image.convert("RGB").convert("HSV"))
        shift = int(256 * ((self.hue % 360) / 360))
        hsv[..., 0] = (hsv[..., 0].astype(np.int32) + shift) % 256
        out = Image.fromarray(hsv, "HSV").convert("RGBA")
        if alpha is not None:
            out.putalpha(alpha)
        return self.save_image(ctx, out)


def _channel_array(image: Image.Image, channel: str) -> tuple[str, int, np.ndarray]:
    mode, band = CHANNEL_FORMATS[channel]
    return mode, band, np.array(image.convert(mode)).astype(np.float64)


def _from_channel_array(
    arr: np.ndarray, mode: str, channel: str, original: Image.Image
) -> Image.Image:
    out = Image.fromarray(arr.astype(np.uint8), mode).convert("RGBA")
    if channel != "Alpha (RGBA)":
        out.putalpha(original.getchannel("A"))
    return out


@node(
    "img_channel_offset",
    title="Offset Image Channel",
    category="image",
    tags=["image", "offset", "red", "green", "blue", "alpha", "hue", "saturation", "value"],
    version="1.2.3",
)
class ImageChannelOffsetNode(ImageSavingNode):
    """Adds an offset to one channel (in its colour space); hue wraps, the others clip."""

    image: ImageField = InputField(description="The image to adjust")
    channel: COLOR_CHANNELS = InputField(description="Which channel to adjust")
    offset: int = InputField(
        default=0, ge=-255, le=255, description="The amount to adjust the channel by"
    )

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image, mode="RGBA")
        mode, band, arr = _channel_array(image, self.channel)
        values = arr[..., band] + self.offset
        arr[..., band] = values % 256 if self.channel == "Hue (HSV)" else np.clip(values, 0, 255)
        return self.save_image(ctx, _from_channel_array(arr, mode, self.channel, image))


@node(
    "img_channel_multiply",
    title="Multiply Image Channel",
    category="image",
    tags=["image", "invert", "scale", "multiply", "red", "green", "blue", "alpha", "hue"],
    version="1.2.3",
)
class ImageChannelMultiplyNode(ImageSavingNode):
    """Scales one channel (clipped to 0..255), optionally inverting it afterwards."""

    image: ImageField = InputField(description="The image to adjust")
    channel: COLOR_CHANNELS = InputField(description="Which channel to adjust")
    scale: float = InputField(
        default=1.0, ge=0.0, description="The amount to scale the channel by."
    )
    invert_channel: bool = InputField(default=False, description="Invert the channel after scaling")

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image, mode="RGBA")
        mode, band, arr = _channel_array(image, self.channel)
        values = np.clip(arr[..., band] * self.scale, 0, 255)
        arr[..., band] = 255 - values if self.invert_channel else values
        return self.save_image(ctx, _from_channel_array(arr, mode, self.channel, image))


@node(
    "canvas_paste_back",
    title="Canvas Paste Back",
    category="canvas",
    tags=["image", "combine"],
    version="1.0.1",
)
class CanvasPasteBackNode(ImageSavingNode):
    """Puts the target (generated) image over the source where the mask is black.

    With ``mask_blur`` > 0 the white area is first eroded and the mask blurred, so the
    seam is soft.
    """

    source_image: ImageField = InputField(description="The source image")
    target_image: ImageField = InputField(description="The target image")
    mask: ImageField = InputField(description="The mask to use when pasting")
    mask_blur: int = InputField(default=0, ge=0, description="The amount to blur the mask by")

    def invoke(self, ctx: Context) -> ImageOutput:
        source = ctx.images.get_pil(self.source_image)
        target = ctx.images.get_pil(self.target_image)
        mask = ctx.images.get_pil(self.mask, mode="L")
        same_size(self, "source_image and mask", source, mask)
        same_size(self, "source_image and target_image", source, target)
        if self.mask_blur > 0:
            import cv2

            kernel = np.ones((self.mask_blur, self.mask_blur), np.uint8)
            eroded = cv2.erode(np.asarray(mask), kernel, iterations=3)
            mask = Image.fromarray(eroded).filter(ImageFilter.GaussianBlur(self.mask_blur))
        out = source.copy()
        out.paste(target.convert(out.mode), (0, 0), ImageOps.invert(mask))
        return self.save_image(ctx, out)


def match_histogram(source: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Remap one uint8 channel so its histogram follows ``reference``'s (CDF matching)."""
    src_cdf = np.bincount(source.ravel(), minlength=256).cumsum().astype(np.float64)
    ref_cdf = np.bincount(reference.ravel(), minlength=256).cumsum().astype(np.float64)
    src_cdf /= max(src_cdf[-1], 1)
    ref_cdf /= max(ref_cdf[-1], 1)
    lookup = np.interp(src_cdf, ref_cdf, np.arange(256))
    return lookup[source].astype(np.uint8)


@node(
    "color_correct",
    title="Color Correct",
    category="image",
    tags=["image", "color"],
    version="2.0.0",
)
class ColorCorrectNode(ImageSavingNode):
    """Matches the colour histogram of an image to a reference, optionally only where a mask
    is black (white keeps the original); the alpha channel is kept."""

    base_image: ImageField = InputField(description="The image to color-correct")
    color_reference: ImageField = InputField(description="Reference image for color-correction")
    mask: ImageField | None = InputField(
        default=None, description="Optional mask to limit color correction area"
    )
    colorspace: Literal["RGB", "YCbCr", "YCbCr-Chroma", "YCbCr-Luma"] = InputField(
        default="RGB",
        description="Colorspace in which to apply histogram matching",
        title="Color Space",
    )

    def invoke(self, ctx: Context) -> ImageOutput:
        base = ctx.images.get_pil(self.base_image, mode="RGBA")
        work = "RGB" if self.colorspace == "RGB" else "YCbCr"
        channels = {
            "RGB": (0, 1, 2),
            "YCbCr": (0, 1, 2),
            "YCbCr-Chroma": (1, 2),
            "YCbCr-Luma": (0,),
        }
        src = np.array(base.convert("RGB").convert(work))
        ref = np.asarray(ctx.images.get_pil(self.color_reference).convert("RGB").convert(work))
        for c in channels[self.colorspace]:
            src[..., c] = match_histogram(src[..., c], ref[..., c])
        corrected = Image.fromarray(src, work).convert("RGB")
        if self.mask is not None:
            mask = ctx.images.get_pil(self.mask, mode="L")
            same_size(self, "base_image and mask", base, mask)
            corrected.paste(base.convert("RGB"), (0, 0), mask)
        out = corrected.convert("RGBA")
        out.putalpha(base.getchannel("A"))
        return self.save_image(ctx, out)


@node(
    "img_noise", title="Add Image Noise", category="image", tags=["image", "noise"], version="1.1.0"
)
class ImageNoiseNode(ImageSavingNode):
    """Blends seeded noise into an image (where an optional mask is black); keeps alpha."""

    image: ImageField = InputField(description="The image to add noise to")
    mask: ImageField | None = InputField(
        default=None,
        description="Optional mask determining where to apply noise (black=noise, white=no noise)",
    )
    seed: int = InputField(
        default=0, ge=0, le=2**32 - 1, description="Seed for random number generation"
    )
    noise_type: Literal["gaussian", "salt_and_pepper"] = InputField(
        default="gaussian", description="The type of noise to add"
    )
    amount: float = InputField(default=0.1, ge=0, le=1, description="The amount of noise to add")
    noise_color: bool = InputField(default=True, description="Whether to add colored noise")
    size: int = InputField(default=1, ge=1, description="The size of the noise points")

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image, mode="RGBA")
        h, w = image.height // self.size, image.width // self.size
        if h < 1 or w < 1:
            raise ValueError(
                f"node {self.id!r} (img_noise): noise size {self.size} is larger than the "
                f"{image.width}x{image.height} image"
            )
        rs = np.random.RandomState(np.random.MT19937(np.random.SeedSequence(self.seed)))
        shape = (h, w, 3) if self.noise_color else (h, w)
        if self.noise_type == "gaussian":
            noise = rs.normal(0, 1, shape) * 255
        else:
            noise = rs.choice([0, 255], shape, p=[1 - self.amount, self.amount])
        if not self.noise_color:
            noise = np.stack([noise] * 3, axis=-1)
        noise_img = Image.fromarray(_to_uint8(noise), "RGB").resize(
            image.size, Image.Resampling.NEAREST
        )
        noisy = Image.blend(image.convert("RGB"), noise_img, self.amount).convert("RGBA")
        if self.mask is not None:
            mask = ctx.images.get_pil(self.mask, mode="L")
            if mask.size != image.size:
                mask = mask.resize(image.size, Image.Resampling.LANCZOS)
            out = image.copy()
            out.paste(noisy, (0, 0), ImageOps.invert(mask))
        else:
            out = noisy
        out.putalpha(image.getchannel("A"))
        return self.save_image(ctx, out)


@node(
    "save_image",
    title="Save Image",
    category="image",
    tags=["primitives", "image"],
    version="1.2.2",
    deterministic=False,
)
class SaveImageNode(ImageSavingNode):
    """Stores a copy of the image (to the gallery, unless the node is intermediate)."""

    image: ImageField = InputField(description="The image to process")

    def invoke(self, ctx: Context) -> ImageOutput:
        return self.save_image(ctx, ctx.images.get_pil(self.image).copy())
