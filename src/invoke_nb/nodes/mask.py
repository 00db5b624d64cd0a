"""Mask nodes and infill nodes, with InvokeAI's ids, fields and conventions.

Image masks are greyscale (``L``) images; tensor masks (for regional prompts) are bool
torch tensors of shape [1, H, W], True inside. InvokeAI's inpainting convention applies throughout:
black marks the area to regenerate, white the area to keep. Infill nodes fill the
transparent part of an RGBA image before it is encoded for outpainting; an image without
an alpha channel passes through unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageChops, ImageFilter, ImageOps

from invoke_nb.nodes.base import Input, InputField, Node, node
from invoke_nb.nodes.image import same_size
from invoke_nb.nodes.primitives import ImageOutput, ImageSavingNode, MaskOutput
from invoke_nb.nodes.types import ColorField, ImageField, TensorField

if TYPE_CHECKING:
    from invoke_nb.nodes.context import Context

__all__ = ["fade_mask", "infill_tile"]

SEED_MAX = int(np.iinfo(np.uint32).max)


def _cv2():  # imported lazily: OpenCV is only needed by a few nodes
    import cv2

    return cv2


@node("tomask", title="Mask from Alpha", category="mask", tags=["image", "mask"], version="1.2.2")
class MaskFromAlphaNode(ImageSavingNode):
    """The alpha channel of an image as a mask (an image without alpha gives its luminance)."""

    image: ImageField = InputField(description="The image to create the mask from")
    invert: bool = InputField(default=False, description="Whether or not to invert the mask")

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image)
        bands = image.getbands()
        mask = image.getchannel("A") if "A" in bands else image.convert("L")
        if self.invert:
            mask = ImageOps.invert(mask)
        return self.save_image(ctx, mask)


@node(
    "mask_combine",
    title="Combine Masks",
    category="mask",
    tags=["image", "mask", "multiply"],
    version="1.2.2",
)
class MaskCombineNode(ImageSavingNode):
    """Multiplies two masks: black in either gives black."""

    mask1: ImageField = InputField(description="The first mask to combine")
    mask2: ImageField = InputField(description="The second image to combine")

    def invoke(self, ctx: Context) -> ImageOutput:
        mask1 = ctx.images.get_pil(self.mask1, mode="L")
        mask2 = ctx.images.get_pil(self.mask2, mode="L")
        same_size(self, "mask1 and mask2", mask1, mask2)
        return self.save_image(ctx, ImageChops.multiply(mask1, mask2))


@node(
    "mask_edge",
    title="Mask Edge",
    category="mask",
    tags=["image", "mask", "inpaint"],
    version="1.2.2",
)
class MaskEdgeNode(ImageSavingNode):
    """A mask that is black along the edges of the input mask (and its soft parts), white
    elsewhere: used to repaint only a seam."""

    image: ImageField = InputField(description="The image to apply the mask to")
    edge_size: int = InputField(ge=0, description="The size of the edge")
    edge_blur: int = InputField(ge=0, description="The amount of blur on the edge")
    low_threshold: int = InputField(
        ge=0,
        le=255,
        description="First threshold for the hysteresis procedure in Canny edge detection",
    )
    high_threshold: int = InputField(
        ge=0,
        le=255,
        description="Second threshold for the hysteresis procedure in Canny edge detection",
    )

    def invoke(self, ctx: Context) -> ImageOutput:
        cv2 = _cv2()
        mask = np.asarray(ctx.images.get_pil(self.image, mode="L"), dtype=np.uint8)
        # pixels that are neither fully black nor fully white are part of the edge
        soft = np.where((mask == 0) | (mask == 255), 0, 255).astype(np.uint8)
        edges = cv2.Canny(mask, self.low_threshold, self.high_threshold)
        edge = np.maximum(soft, edges)
        grown = cv2.dilate(edge, np.ones((3, 3), np.uint8), iterations=self.edge_size // 2)
        out = Image.fromarray(grown, "L")
        if self.edge_blur > 0:
            out = out.filter(ImageFilter.BoxBlur(self.edge_blur))
        return self.save_image(ctx, ImageOps.invert(out))


def fade_mask(mask: np.ndarray, threshold: int, fade_size_px: int) -> np.ndarray:
    """Grow the black area of a greyscale mask by ``fade_size_px`` with a smooth fade.

    The mask is binarised (``> threshold`` is white). Each white pixel's distance to the
    nearest black pixel, as a fraction of the fade size, is mapped through a cubic that
    passes near (0, 0), (1px, 0), (0.2, 0.2), (0.8, 0.9) and (1, 1): the black edge is grown
    by about one pixel, then fades to white at ``fade_size_px``.
    """
    if fade_size_px == 0:
        return mask.copy()
    cv2 = _cv2()
    binary = np.where(mask > threshold, 255, 0).astype(np.uint8)
    dist = cv2.distanceTransform(binary, cv2.DIST_L2, 5)
    band = (dist > 0) & (dist < fade_size_px)
    if band.any():
        xs = np.array([0.0, 1.0 / fade_size_px, 0.2, 0.8, 1.0])
        ys = np.array([0.0, 0.0, 0.2, 0.9, 1.0])
        curve = np.poly1d(np.polyfit(xs, ys, 3))
        values = np.clip(curve(dist[band] / fade_size_px), 0, 1)
        binary[band] = (values * 255).astype(np.uint8)
    return binary


@node(
    "expand_mask_with_fade",
    title="Expand Mask with Fade",
    category="mask",
    tags=["image", "mask"],
    version="1.0.1",
)
class ExpandMaskWithFadeNode(ImageSavingNode):
    """Expands the black area of a mask by ``fade_size_px`` with a smooth fade to white.

    Fade size 0 returns the mask unchanged.
    """

    mask: ImageField = InputField(description="The mask to expand")
    threshold: int = InputField(
        default=0, ge=0, le=255, description="The threshold for the binary mask (0-255)"
    )
    fade_size_px: int = InputField(default=32, ge=0, description="The size of the fade in pixels")

    def invoke(self, ctx: Context) -> ImageOutput:
        mask = np.asarray(ctx.images.get_pil(self.mask, mode="L"))
        out = fade_mask(mask, self.threshold, self.fade_size_px)
        return self.save_image(ctx, Image.fromarray(out, "L"))


@node(
    "mask_from_id",
    title="Mask from Segmented Image",
    category="mask",
    tags=["image", "mask", "id"],
    version="1.0.1",
)
class MaskFromIDNode(ImageSavingNode):
    """White where a pixel's RGBA colour is within ``threshold`` (Euclidean) of ``color``."""

    image: ImageField = InputField(description="The image to create the mask from")
    color: ColorField = InputField(description="ID color to mask")
    threshold: int = InputField(default=100, description="Threshold for color detection")
    invert: bool = InputField(default=False, description="Whether or not to invert the mask")

    def invoke(self, ctx: Context) -> ImageOutput:
        image = np.asarray(ctx.images.get_pil(self.image, mode="RGBA"), dtype=np.float64)
        distance = np.linalg.norm(image - np.array(self.color.tuple(), dtype=np.float64), axis=-1)
        inside = distance < self.threshold
        if self.invert:
            inside = ~inside
        return self.save_image(ctx, Image.fromarray(np.where(inside, 255, 0).astype(np.uint8), "L"))


@node(
    "apply_mask_to_image",
    title="Apply Mask to Image",
    category="mask",
    tags=["image", "mask", "blend"],
    version="1.0.0",
)
class ApplyMaskToImageNode(ImageSavingNode):
    """Uses a mask as the image's alpha channel (``invert_mask`` flips it first)."""

    image: ImageField = InputField(description="The image from which to extract the masked region")
    mask: ImageField = InputField(
        description="The mask defining the region (black=keep, white=discard)"
    )
    invert_mask: bool = InputField(
        default=False, description="Whether to invert the mask before applying it"
    )

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image, mode="RGBA")
        mask = ctx.images.get_pil(self.mask, mode="L")
        same_size(self, "image and mask", image, mask)
        if self.invert_mask:
            mask = ImageOps.invert(mask)
        out = image.copy()
        out.putalpha(mask)
        return self.save_image(ctx, out)


# ---------------------------------------------------------------------------------------
# Infill


def _pass_through(node_: ImageSavingNode, ctx: Context, image: Image.Image) -> ImageOutput | None:
    """InvokeAI leaves images without alpha untouched (same reference, nothing saved)."""
    if image.mode != "RGBA":
        return ImageOutput.of(node_.image, image)  # type: ignore[attr-defined]
    return None


@node(
    "infill_rgba",
    title="Solid Color Infill",
    category="inpaint",
    tags=["image", "inpaint"],
    version="1.2.2",
)
class InfillColorNode(ImageSavingNode):
    """Fills the transparent part of an image with a solid colour."""

    image: ImageField = InputField(description="The image to process")
    color: ColorField = InputField(
        default_factory=lambda: ColorField(r=127, g=127, b=127, a=255),
        description="The color to use to infill",
    )

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image)
        if (same := _pass_through(self, ctx, image)) is not None:
            return same
        out = Image.alpha_composite(Image.new("RGBA", image.size, self.color.tuple()), image)
        out.paste(image, (0, 0), image.getchannel("A"))
        return self.save_image(ctx, out)


def infill_tile(image: Image.Image, seed: int, tile_size: int) -> Image.Image:
    """Fill the transparent part of an RGBA image with random fully opaque tiles of itself.

    Tiles come from a grid of ``tile_size`` squares; the canvas is covered in grid order
    with tiles drawn by ``numpy.random.default_rng(seed)``, then the image is pasted over
    it through its alpha. Returns an RGB image.
    """
    arr = np.asarray(image.convert("RGBA"))
    rows, cols = arr.shape[:2]
    pool = [
        arr[y : y + tile_size, x : x + tile_size, :3]
        for y in range(0, rows - tile_size + 1, tile_size)
        for x in range(0, cols - tile_size + 1, tile_size)
        if (arr[y : y + tile_size, x : x + tile_size, 3] == 255).all()
    ]
    if not pool:
        raise ValueError(
            f"no fully opaque {tile_size}x{tile_size} tile in a {cols}x{rows} image: "
            "use a smaller tile_size"
        )
    rng = np.random.default_rng(seed)
    filled = np.zeros((rows, cols, 3), np.uint8)
    for y in range(0, rows, tile_size):
        for x in range(0, cols, tile_size):
            tile = pool[rng.integers(len(pool))]
            h, w = min(tile_size, rows - y), min(tile_size, cols - x)
            filled[y : y + h, x : x + w] = tile[:h, :w]
    out = Image.fromarray(filled, "RGB")
    out.paste(image, (0, 0), image.getchannel("A"))
    return out


@node(
    "infill_tile",
    title="Tile Infill",
    category="inpaint",
    tags=["image", "inpaint"],
    version="1.2.3",
)
class InfillTileNode(ImageSavingNode):
    """Fills the transparent part with random tiles taken from the opaque part."""

    image: ImageField = InputField(description="The image to process")
    tile_size: int = InputField(default=32, ge=1, description="The tile size (px)")
    seed: int = InputField(
        default=0,
        ge=0,
        le=SEED_MAX,
        description="The seed to use for tile generation (omit for random)",
    )

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image)
        if (same := _pass_through(self, ctx, image)) is not None:
            return same
        try:
            out = infill_tile(image, self.seed, self.tile_size)
        except ValueError as e:
            raise ValueError(f"node {self.id!r} (infill_tile): {e}") from e
        return self.save_image(ctx, out)


@node(
    "infill_cv2", title="CV2 Infill", category="inpaint", tags=["image", "inpaint"], version="1.2.2"
)
class CV2InfillNode(ImageSavingNode):
    """Fills the transparent part with OpenCV's Telea inpainting (radius 3)."""

    image: ImageField = InputField(description="The image to process")

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image)
        if (same := _pass_through(self, ctx, image)) is not None:
            return same
        cv2 = _cv2()
        rgb = np.asarray(image.convert("RGB"))
        holes = 255 - np.asarray(image.getchannel("A"))
        filled = cv2.inpaint(rgb, holes, 3, cv2.INPAINT_TELEA)
        return self.save_image(ctx, Image.fromarray(filled, "RGB"))


# ---------------------------------------------------------------------------------------
# Tensor masks (regional prompts): bool tensors of shape [1, H, W], True = inside


def _mask_output(ctx: Context, mask: Any) -> MaskOutput:
    return MaskOutput(
        mask=TensorField(tensor_name=ctx.tensors.save(mask)),
        width=int(mask.shape[-1]),
        height=int(mask.shape[-2]),
    )


def _as_bool_mask(n: Node, mask: Any) -> Any:
    """A stored mask as a bool tensor [1, H, W] (2-D masks get the channel dimension)."""
    import torch

    if not isinstance(mask, torch.Tensor) or mask.dim() not in (2, 3):
        shape = tuple(getattr(mask, "shape", ()))
        raise ValueError(
            f"node {n.id!r} ({n.type_id}): expected a mask tensor [1, H, W] or [H, W], "
            f"got {type(mask).__name__} {shape}"
        )
    if mask.dim() == 2:
        mask = mask.unsqueeze(0)
    return mask if mask.dtype == torch.bool else mask > 0.5


@node(
    "rectangle_mask",
    title="Create Rectangle Mask",
    category="mask",
    tags=["conditioning"],
    version="1.0.1",
)
class RectangleMaskNode(Node):
    """A width x height mask that is True inside one rectangle (clipped to the mask)."""

    width: int = InputField(gt=0, description="The width of the entire mask.")
    height: int = InputField(gt=0, description="The height of the entire mask.")
    x_left: int = InputField(
        description="The left x-coordinate of the rectangular masked region (inclusive)."
    )
    y_top: int = InputField(
        description="The top y-coordinate of the rectangular masked region (inclusive)."
    )
    rectangle_width: int = InputField(
        ge=0, description="The width of the rectangular masked region."
    )
    rectangle_height: int = InputField(
        ge=0, description="The height of the rectangular masked region."
    )

    metadata: dict[str, Any] | None = InputField(
        default=None,
        description="Optional metadata (InvokeAI's node has the input; nothing is saved here)",
        input=Input.CONNECTION,
    )

    def invoke(self, ctx: Context) -> MaskOutput:
        import torch

        mask = torch.zeros((1, self.height, self.width), dtype=torch.bool)
        top, left = max(0, self.y_top), max(0, self.x_left)
        bottom, right = self.y_top + self.rectangle_height, self.x_left + self.rectangle_width
        if bottom > top and right > left:
            mask[:, top:bottom, left:right] = True
        return _mask_output(ctx, mask)


@node(
    "alpha_mask_to_tensor",
    title="Alpha Mask to Tensor",
    category="mask",
    tags=["conditioning"],
    version="1.0.0",
)
class AlphaMaskToTensorNode(Node):
    """A mask tensor from an image's alpha: any opacity is True (``invert``: transparent is)."""

    image: ImageField = InputField(description="The mask image to convert.")
    invert: bool = InputField(default=False, description="Whether to invert the mask.")

    def invoke(self, ctx: Context) -> MaskOutput:
        import torch

        alpha = np.asarray(ctx.images.get_pil(self.image, mode="RGBA"))[..., 3]
        inside = alpha == 0 if self.invert else alpha > 0
        return _mask_output(ctx, torch.from_numpy(inside.copy()).unsqueeze(0))


@node(
    "image_mask_to_tensor",
    title="Image Mask to Tensor",
    category="mask",
    tags=["conditioning"],
    version="1.0.0",
)
class ImageMaskToTensorNode(Node):
    """A mask tensor from a greyscale image: True where the value is below ``cutoff``
    (``invert``: at or above it)."""

    image: ImageField = InputField(description="The mask image to convert.")
    cutoff: int = InputField(default=128, ge=0, le=255, description="Cutoff (<)")
    invert: bool = InputField(default=False, description="Whether to invert the mask.")
    metadata: dict[str, Any] | None = InputField(
        default=None,
        description="Optional metadata (InvokeAI's node has the input; nothing is saved here)",
        input=Input.CONNECTION,
    )

    def invoke(self, ctx: Context) -> MaskOutput:
        import torch

        grey = np.asarray(ctx.images.get_pil(self.image, mode="L"))
        inside = grey >= self.cutoff if self.invert else grey < self.cutoff
        return _mask_output(ctx, torch.from_numpy(inside.copy()).unsqueeze(0))


@node(
    "invert_tensor_mask",
    title="Invert Tensor Mask",
    category="mask",
    tags=["conditioning"],
    version="1.1.0",
)
class InvertTensorMaskNode(Node):
    """Flips a mask tensor."""

    mask: TensorField = InputField(description="The tensor mask to convert.")

    def invoke(self, ctx: Context) -> MaskOutput:
        return _mask_output(ctx, ~_as_bool_mask(self, ctx.tensors.load(self.mask)))


@node(
    "tensor_mask_to_image",
    title="Tensor Mask to Image",
    category="mask",
    tags=["mask"],
    version="1.1.0",
)
class MaskTensorToImageNode(ImageSavingNode):
    """A mask tensor as a black and white image (True is white)."""

    mask: TensorField = InputField(description="The mask tensor to convert.")

    def invoke(self, ctx: Context) -> ImageOutput:
        mask = _as_bool_mask(self, ctx.tensors.load(self.mask))[0]
        arr = mask.cpu().numpy().astype(np.uint8) * 255
        return self.save_image(ctx, Image.fromarray(arr, "L"))


@node(
    "apply_tensor_mask_to_image",
    title="Apply Tensor Mask to Image",
    category="mask",
    tags=["mask"],
    version="1.0.0",
)
class ApplyMaskTensorToImageNode(ImageSavingNode):
    """Makes the image transparent outside the mask; already transparent pixels stay so."""

    mask: TensorField = InputField(description="The mask tensor to apply.")
    image: ImageField = InputField(description="The image to apply the mask to.")
    invert: bool = InputField(default=False, description="Whether to invert the mask.")

    def invoke(self, ctx: Context) -> ImageOutput:
        image = np.array(ctx.images.get_pil(self.image, mode="RGBA"))
        inside = _as_bool_mask(self, ctx.tensors.load(self.mask))[0].cpu().numpy()
        if inside.shape != image.shape[:2]:
            raise ValueError(
                f"node {self.id!r} (apply_tensor_mask_to_image): mask is "
                f"{inside.shape[1]}x{inside.shape[0]} but the image is "
                f"{image.shape[1]}x{image.shape[0]}"
            )
        if self.invert:
            inside = ~inside
        alpha = image[..., 3]
        image[..., 3] = np.where(alpha > 0, np.where(inside, 255, 0), alpha)
        return self.save_image(ctx, Image.fromarray(image, "RGBA"))
