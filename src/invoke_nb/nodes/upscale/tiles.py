"""Tile nodes with InvokeAI 6.11.1's ids: lay tiles over an image, split a tile into
numbers, pair a tile with its processed image, merge tiles back into one image."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel

from invoke_nb.nodes.base import Input, InputField, Node, Output, OutputField, node, output
from invoke_nb.nodes.primitives import ImageOutput, ImageSavingNode
from invoke_nb.nodes.types import ImageField
from invoke_nb.nodes.upscale.tile_math import (
    Tile,
    merge_linear,
    merge_seam,
    tiles_even_split,
    tiles_min_overlap,
    tiles_with_overlap,
)

if TYPE_CHECKING:
    from invoke_nb.nodes.context import Context

__all__ = ["TileWithImage"]


class TileWithImage(BaseModel):
    """A tile and the image made for it."""

    tile: Tile
    image: ImageField


@output("calculate_image_tiles_output")
class CalculateImageTilesOutput(Output):
    """Tiles covering an image."""

    tiles: list[Tile] = OutputField(
        description="The tiles coordinates that cover a particular image shape."
    )


_W = "The image width, in pixels, to calculate tiles for."
_H = "The image height, in pixels, to calculate tiles for."


@node(
    "calculate_image_tiles",
    title="Calculate Image Tiles",
    category="tiles",
    tags=["tiles"],
    version="1.0.1",
)
class CalculateImageTilesNode(Node):
    """Fixed-size tiles overlapping by at least ``overlap``."""

    image_width: int = InputField(default=1024, ge=1, description=_W)
    image_height: int = InputField(default=1024, ge=1, description=_H)
    tile_width: int = InputField(default=576, ge=1, description="The tile width, in pixels.")
    tile_height: int = InputField(default=576, ge=1, description="The tile height, in pixels.")
    overlap: int = InputField(
        default=128, ge=0, description="The target overlap, in pixels, between adjacent tiles."
    )

    def invoke(self, ctx: Context) -> CalculateImageTilesOutput:
        try:
            tiles = tiles_with_overlap(
                self.image_height, self.image_width, self.tile_height, self.tile_width, self.overlap
            )
        except ValueError as e:
            raise ValueError(f"node {self.id!r}: {e}") from None
        return CalculateImageTilesOutput(tiles=tiles)


@node(
    "calculate_image_tiles_even_split",
    title="Calculate Image Tiles Even Split",
    category="tiles",
    tags=["tiles"],
    version="1.1.1",
)
class CalculateImageTilesEvenSplitNode(Node):
    """``num_tiles_x`` x ``num_tiles_y`` tiles of one size overlapping by ``overlap``."""

    image_width: int = InputField(default=1024, ge=1, description=_W)
    image_height: int = InputField(default=1024, ge=1, description=_H)
    num_tiles_x: int = InputField(
        default=2, ge=1, description="Number of tiles to divide image into on the x axis"
    )
    num_tiles_y: int = InputField(
        default=2, ge=1, description="Number of tiles to divide image into on the y axis"
    )
    overlap: int = InputField(
        default=128,
        ge=0,
        multiple_of=8,
        description="The overlap, in pixels, between adjacent tiles.",
    )

    def invoke(self, ctx: Context) -> CalculateImageTilesOutput:
        try:
            tiles = tiles_even_split(
                self.image_height,
                self.image_width,
                self.num_tiles_x,
                self.num_tiles_y,
                self.overlap,
            )
        except ValueError as e:
            raise ValueError(f"node {self.id!r}: {e}") from None
        return CalculateImageTilesOutput(tiles=tiles)


@node(
    "calculate_image_tiles_min_overlap",
    title="Calculate Image Tiles Minimum Overlap",
    category="tiles",
    tags=["tiles"],
    version="1.0.1",
)
class CalculateImageTilesMinOverlapNode(Node):
    """Fixed-size tiles, as few as keep ``min_overlap``, spread evenly."""

    image_width: int = InputField(default=1024, ge=1, description=_W)
    image_height: int = InputField(default=1024, ge=1, description=_H)
    tile_width: int = InputField(default=576, ge=1, description="The tile width, in pixels.")
    tile_height: int = InputField(default=576, ge=1, description="The tile height, in pixels.")
    min_overlap: int = InputField(
        default=128, ge=0, description="Minimum overlap between adjacent tiles, in pixels."
    )

    def invoke(self, ctx: Context) -> CalculateImageTilesOutput:
        try:
            tiles = tiles_min_overlap(
                self.image_height,
                self.image_width,
                self.tile_height,
                self.tile_width,
                self.min_overlap,
            )
        except ValueError as e:
            raise ValueError(f"node {self.id!r}: {e}") from None
        return CalculateImageTilesOutput(tiles=tiles)


@output("tile_to_properties_output")
class TileToPropertiesOutput(Output):
    """A tile's coordinates, size and overlaps as numbers."""

    coords_left: int = OutputField(description="Left coordinate of the tile.")
    coords_right: int = OutputField(description="Right coordinate of the tile.")
    coords_top: int = OutputField(description="Top coordinate of the tile.")
    coords_bottom: int = OutputField(description="Bottom coordinate of the tile.")
    width: int = OutputField(description="The width of the tile.")
    height: int = OutputField(description="The height of the tile.")
    overlap_top: int = OutputField(description="Overlap between this tile and its top neighbor.")
    overlap_bottom: int = OutputField(description="Overlap with its bottom neighbor.")
    overlap_left: int = OutputField(description="Overlap with its left neighbor.")
    overlap_right: int = OutputField(description="Overlap with its right neighbor.")


@node(
    "tile_to_properties",
    title="Tile to Properties",
    category="tiles",
    tags=["tiles"],
    version="1.0.1",
)
class TileToPropertiesNode(Node):
    """Splits a tile into its numbers (width and height included, handy in graphs)."""

    tile: Tile = InputField(description="The tile to split into properties.")

    def invoke(self, ctx: Context) -> TileToPropertiesOutput:
        c, o = self.tile.coords, self.tile.overlap
        return TileToPropertiesOutput(
            coords_left=c.left,
            coords_right=c.right,
            coords_top=c.top,
            coords_bottom=c.bottom,
            width=c.right - c.left,
            height=c.bottom - c.top,
            overlap_top=o.top,
            overlap_bottom=o.bottom,
            overlap_left=o.left,
            overlap_right=o.right,
        )


@output("pair_tile_image_output")
class PairTileImageOutput(Output):
    """A tile with its image."""

    tile_with_image: TileWithImage = OutputField(
        description="A tile description with its corresponding image."
    )


@node(
    "pair_tile_image",
    title="Pair Tile with Image",
    category="tiles",
    tags=["tiles"],
    version="1.0.1",
)
class PairTileImageNode(Node):
    """Keeps a tile and its processed image together through a collect."""

    image: ImageField = InputField(description="The tile image.")
    tile: Tile = InputField(description="The tile properties.")

    def invoke(self, ctx: Context) -> PairTileImageOutput:
        return PairTileImageOutput(tile_with_image=TileWithImage(tile=self.tile, image=self.image))


@node(
    "merge_tiles_to_image",
    title="Merge Tiles to Image",
    category="tiles",
    tags=["tiles"],
    version="1.1.1",
)
class MergeTilesToImageNode(ImageSavingNode):
    """Merges tile images into one image; the size comes from the tiles' far edges."""

    tiles_with_images: list[TileWithImage] = InputField(
        description="A list of tile images with tile properties."
    )
    blend_mode: Literal["Linear", "Seam"] = InputField(
        default="Seam", description="blending type Linear or Seam", input=Input.DIRECT
    )
    blend_amount: int = InputField(
        default=32,
        ge=0,
        description="The amount to blend adjacent tiles in pixels. Must be <= the overlap.",
    )

    def invoke(self, ctx: Context) -> ImageOutput:
        if not self.tiles_with_images:
            raise ValueError(f"node {self.id!r}: tiles_with_images is empty")
        tiles = [t.tile for t in self.tiles_with_images]
        images = [
            np.asarray(ctx.images.get_pil(t.image, mode="RGB")) for t in self.tiles_with_images
        ]
        for i, (tile, img) in enumerate(zip(tiles, images, strict=True)):
            want = (tile.coords.bottom - tile.coords.top, tile.coords.right - tile.coords.left)
            if img.shape[:2] != want:
                c = tile.coords
                raise ValueError(
                    f"node {self.id!r} field 'tiles_with_images': item {i} has an image of "
                    f"{img.shape[1]}x{img.shape[0]} px for its tile of {want[1]}x{want[0]} px "
                    f"at ({c.left}, {c.top}); pair each tile with its own crop"
                )
        height = max(t.coords.bottom for t in tiles)
        width = max(t.coords.right for t in tiles)
        out = np.zeros((height, width, 3), dtype=np.uint8)
        merge = merge_linear if self.blend_mode == "Linear" else merge_seam
        try:
            merge(out, tiles, images, self.blend_amount)
        except ValueError as e:
            raise ValueError(f"node {self.id!r}: {e}") from None
        return self.save_image(ctx, Image.fromarray(out))
