"""Preprocessors that need no weights: Canny edges, colour map, content shuffle.

Each node reads its image as RGB and saves the map it makes, as InvokeAI 6.11.1's
``canny_edge_detection``, ``color_map`` and ``content_shuffle`` do. The work is done by
plain functions so tests (and other nodes) can call them without a graph.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from invoke_nb.nodes.base import InputField, node
from invoke_nb.nodes.primitives import ImageOutput, ImageSavingNode
from invoke_nb.nodes.types import ImageField

if TYPE_CHECKING:
    from invoke_nb.nodes.context import Context

__all__ = ["canny_edges", "color_map", "content_shuffle"]


def _cv2():  # imported lazily: `import invoke_nb` must stay light
    import cv2

    return cv2


def canny_edges(image: Image.Image, low: int, high: int) -> Image.Image:
    """OpenCV's Canny on the image's three channels (OpenCV takes the strongest channel
    gradient), as a grey map in an RGB image (InvokeAI saves it as RGB)."""
    cv2 = _cv2()
    bgr = cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2BGR)
    edges = cv2.Canny(bgr, low, high)
    return Image.fromarray(edges).convert("RGB")


def color_map(image: Image.Image, tile_size: int) -> Image.Image:
    """Shrink to one pixel per tile (bicubic), then blow back up with nearest neighbour: a
    mosaic of the image's average colours that a colour ControlNet follows."""
    cv2 = _cv2()
    arr = np.asarray(image.convert("RGB"))
    h, w = arr.shape[:2]
    small = (w // min(tile_size, w), h // min(tile_size, h))
    tiles = cv2.resize(arr, small, interpolation=cv2.INTER_CUBIC)
    return Image.fromarray(cv2.resize(tiles, (w, h), interpolation=cv2.INTER_NEAREST))


def _smooth_noise(h: int, w: int, cell: int, rng: np.random.RandomState) -> np.ndarray:
    """Values in [0, 1] over an h x w grid: random numbers on a coarse grid of ``cell``-pixel
    cells, bicubically interpolated and cropped so the field has no border effects."""
    cv2 = _cv2()
    coarse = rng.uniform(0.0, 1.0, size=(h // cell + 2, w // cell + 2, 1))
    fine = cv2.resize(coarse, (w + 2 * cell, h + 2 * cell), interpolation=cv2.INTER_CUBIC)
    fine = fine[cell : cell + h, cell : cell + w]
    fine = fine - fine.min()
    return (fine / fine.max())[:, :, None]  # OpenCV drops the single channel


def content_shuffle(
    image: Image.Image, scale_factor: int = 256, rng: np.random.RandomState | None = None
) -> Image.Image:
    """Remap every pixel to a source position taken from two smooth random fields (x and
    y), a 'liquify' of the content that keeps its colours. Without ``rng`` numpy's global
    generator is used, as InvokeAI does, so results differ run to run."""
    cv2 = _cv2()
    rng = rng if rng is not None else np.random.mtrand._rand
    arr = np.asarray(image.convert("RGB"))
    h, w = arr.shape[:2]
    xs = _smooth_noise(h, w, scale_factor, rng) * float(w - 1)
    ys = _smooth_noise(h, w, scale_factor, rng) * float(h - 1)
    flow = np.concatenate([xs, ys], axis=2).astype(np.float32)
    return Image.fromarray(cv2.remap(arr, flow, None, cv2.INTER_LINEAR))


@node(
    "canny_edge_detection",
    title="Canny Edge Detection",
    category="controlnet",
    tags=["controlnet", "canny"],
    version="1.0.0",
)
class CannyEdgeDetectionNode(ImageSavingNode):
    """An edge map from OpenCV's Canny detector."""

    image: ImageField = InputField(description="The image to process")
    low_threshold: int = InputField(
        default=100, ge=0, le=255, description="The low threshold of the Canny pixel gradient"
    )
    high_threshold: int = InputField(
        default=200, ge=0, le=255, description="The high threshold of the Canny pixel gradient"
    )

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image, mode="RGB")
        return self.save_image(ctx, canny_edges(image, self.low_threshold, self.high_threshold))


@node("color_map", title="Color Map", category="controlnet", tags=["controlnet"], version="1.0.0")
class ColorMapNode(ImageSavingNode):
    """A mosaic of the image's colours, one flat tile per ``tile_size`` pixels."""

    image: ImageField = InputField(description="The image to process")
    tile_size: int = InputField(default=64, ge=1, description="Tile size")

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image, mode="RGB")
        return self.save_image(ctx, color_map(image, self.tile_size))


@node(
    "content_shuffle",
    title="Content Shuffle",
    category="controlnet",
    tags=["controlnet", "normal"],
    version="1.0.0",
)
class ContentShuffleNode(ImageSavingNode):
    """Shuffles the image's content along smooth random fields (a 'liquify' filter)."""

    image: ImageField = InputField(description="The image to process")
    scale_factor: int = InputField(
        default=256, ge=0, description="The scale factor used for the shuffle"
    )

    def invoke(self, ctx: Context) -> ImageOutput:
        if self.scale_factor == 0:
            raise ValueError(f"node {self.id!r}: scale_factor must be at least 1, got 0")
        image = ctx.images.get_pil(self.image, mode="RGB")
        return self.save_image(ctx, content_shuffle(image, self.scale_factor))
