"""Tile layouts and tile merging, as InvokeAI 6.11.1 computes them (torch-free).

Three layouts cover an image with overlapping tiles (fixed size and overlap, an even split
into n x m tiles, fixed size with the overlap spread out); the overlap of each tile with its
neighbours is then measured from the coordinates. Two merges put tile images back: a linear
ramp centred in each overlap, or a cut along the seam where neighbouring tiles differ least,
softened by a box blur. Tiles are merged left to right into rows, rows top to bottom.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field

__all__ = [
    "TBLR",
    "Tile",
    "merge_linear",
    "merge_seam",
    "tiles_even_split",
    "tiles_min_overlap",
    "tiles_with_overlap",
]

LATENT_SCALE = 8  # even-split tiles are whole latent pixels


class TBLR(BaseModel):
    """Top, bottom, left, right in pixels."""

    top: int
    bottom: int
    left: int
    right: int


class Tile(BaseModel):
    """Where a tile sits in its image and how far it overlaps each neighbour."""

    coords: TBLR = Field(description="The coordinates of this tile relative to its parent image.")
    overlap: TBLR = Field(description="The amount of overlap with adjacent tiles on each side.")


def _tile(top: int, bottom: int, left: int, right: int) -> Tile:
    return Tile(
        coords=TBLR(top=top, bottom=bottom, left=left, right=right),
        overlap=TBLR(top=0, bottom=0, left=0, right=0),
    )


def _measure_overlaps(tiles: list[Tile], nx: int, ny: int) -> list[Tile]:
    """Fill each tile's overlaps from its upper and left neighbours' coordinates (row-major
    list of ``ny`` rows of ``nx`` tiles)."""
    for y in range(ny):
        for x in range(nx):
            cur = tiles[y * nx + x]
            if y > 0:
                up = tiles[(y - 1) * nx + x]
                cur.overlap.top = up.overlap.bottom = max(0, up.coords.bottom - cur.coords.top)
            if x > 0:
                left = tiles[y * nx + x - 1]
                cur.overlap.left = left.overlap.right = max(0, left.coords.right - cur.coords.left)
    return tiles


def tiles_with_overlap(
    image_height: int, image_width: int, tile_height: int, tile_width: int, overlap: int = 0
) -> list[Tile]:
    """Fixed-size tiles stepping by ``size - overlap``; the last row/column is pushed back
    inside the image (so it overlaps more)."""
    if image_height < tile_height or image_width < tile_width:
        raise ValueError(
            f"tiles of {tile_width}x{tile_height} do not fit an image of "
            f"{image_width}x{image_height}"
        )
    if overlap >= tile_height or overlap >= tile_width:
        raise ValueError(f"overlap {overlap} must be smaller than the tile size")
    step_y, step_x = tile_height - overlap, tile_width - overlap
    ny = math.ceil((image_height - overlap) / step_y)
    nx = math.ceil((image_width - overlap) / step_x)
    tiles = []
    for y in range(ny):
        top = min(y * step_y, image_height - tile_height)
        for x in range(nx):
            left = min(x * step_x, image_width - tile_width)
            tiles.append(_tile(top, top + tile_height, left, left + tile_width))
    return _measure_overlaps(tiles, nx, ny)


def _even_size(extent: int, n: int, overlap: int, axis: str) -> int:
    if n == 1:
        return extent
    if overlap > extent - LATENT_SCALE * (n - 1):
        raise ValueError(f"overlap {overlap} is too large for {n} tiles across {extent} px")
    size = LATENT_SCALE * (((extent + overlap * (n - 1)) // n) // LATENT_SCALE)
    if overlap >= size:
        raise ValueError(f"overlap {overlap} must be smaller than the {axis} tile size {size}")
    return size


def tiles_even_split(
    image_height: int, image_width: int, num_tiles_x: int, num_tiles_y: int, overlap: int = 0
) -> list[Tile]:
    """``num_tiles_x`` x ``num_tiles_y`` tiles of one size (a multiple of 8); the last
    row/column reaches the image edge."""
    if image_width % LATENT_SCALE or image_height % LATENT_SCALE:
        raise ValueError(
            f"image size ({image_width}, {image_height}) must be divisible by {LATENT_SCALE}"
        )
    sx = _even_size(image_width, num_tiles_x, overlap, "width")
    sy = _even_size(image_height, num_tiles_y, overlap, "height")
    tiles = []
    for y in range(num_tiles_y):
        top = y * (sy - overlap)
        bottom = image_height if y == num_tiles_y - 1 else min(top + sy, image_height)
        for x in range(num_tiles_x):
            left = x * (sx - overlap)
            right = image_width if x == num_tiles_x - 1 else min(left + sx, image_width)
            tiles.append(_tile(top, bottom, left, right))
    return _measure_overlaps(tiles, num_tiles_x, num_tiles_y)


def tiles_min_overlap(
    image_height: int, image_width: int, tile_height: int, tile_width: int, min_overlap: int = 0
) -> list[Tile]:
    """As few fixed-size tiles as keep at least ``min_overlap``, spread evenly so the extra
    overlap is shared; tiles larger than the image shrink to it."""
    if min_overlap >= tile_height or min_overlap >= tile_width:
        raise ValueError(f"min_overlap {min_overlap} must be smaller than the tile size")
    tile_width, tile_height = min(tile_width, image_width), min(tile_height, image_height)
    nx = math.ceil((image_width - min_overlap) / (tile_width - min_overlap))
    ny = math.ceil((image_height - min_overlap) / (tile_height - min_overlap))
    tiles = []
    for y in range(ny):
        top = (y * (image_height - tile_height)) // (ny - 1) if ny > 1 else 0
        for x in range(nx):
            left = (x * (image_width - tile_width)) // (nx - 1) if nx > 1 else 0
            tiles.append(_tile(top, top + tile_height, left, left + tile_width))
    return _measure_overlaps(tiles, nx, ny)


def _rows(
    tiles: Sequence[Tile], images: Sequence[np.ndarray]
) -> list[list[tuple[Tile, np.ndarray]]]:
    """Tiles with their images grouped into rows (same top and bottom), each row left to
    right, rows top to bottom."""
    pairs = sorted(
        zip(tiles, images, strict=True), key=lambda p: (p[0].coords.top, p[0].coords.left)
    )
    rows: list[list[tuple[Tile, np.ndarray]]] = []
    for pair in pairs:
        c = pair[0].coords
        if rows and (rows[-1][0][0].coords.top, rows[-1][0][0].coords.bottom) == (c.top, c.bottom):
            rows[-1].append(pair)
        else:
            rows.append([pair])
    return rows


def _check_blend(overlap: int, blend_amount: int) -> None:
    if overlap < blend_amount:
        raise ValueError(
            f"blend_amount {blend_amount} is larger than an overlap of {overlap} px between tiles"
        )


def _store(dst: np.ndarray, values: np.ndarray) -> None:
    """Write blended values into ``dst``. Integer images are truncated as InvokeAI does
    (the seams found later depend on these values), after forgiving float noise: InvokeAI's
    ``v * m + v * (1 - m)`` can land a hair under ``v`` and lose a level, so a flat colour
    would not survive a merge there; here it does."""
    if np.issubdtype(dst.dtype, np.integer):
        values = np.floor(values + 1e-6)
    dst[...] = values


def _blend_into(dst: np.ndarray, src: np.ndarray, mask: np.ndarray) -> None:
    """dst = src * mask + dst * (1 - mask), in place (mask is H x W in [0, 1])."""
    m = mask[..., None]
    _store(dst, src * m + dst * (1.0 - m))


def _ramp_mask(h: int, w: int, overlap: int, blend_amount: int, vertical: bool) -> np.ndarray:
    """1 where the new tile wins, 0 where the old one stays, a linear ramp of
    ``blend_amount`` pixels centred in the overlap (along x, or along y if ``vertical``)."""
    mask = np.ones((h, w))
    if overlap > 0:
        _check_blend(overlap, blend_amount)
        start = overlap // 2 - blend_amount // 2
        ramp = np.linspace(0.0, 1.0, num=blend_amount)
        if vertical:
            mask[:start] = 0.0
            mask[start : start + blend_amount] = ramp[:, None]
        else:
            mask[:, :start] = 0.0
            mask[:, start : start + blend_amount] = ramp
    return mask


def merge_linear(
    dst: np.ndarray, tiles: Sequence[Tile], images: Sequence[np.ndarray], blend_amount: int
) -> None:
    """Paste tile images into ``dst`` (H x W x C) with linear ramps across the overlaps."""
    for row in _rows(tiles, images):
        first = row[0][0].coords
        row_img = np.zeros((first.bottom - first.top, *dst.shape[1:]), dtype=dst.dtype)
        for tile, img in row:
            mask = _ramp_mask(img.shape[0], img.shape[1], tile.overlap.left, blend_amount, False)
            _blend_into(row_img[:, tile.coords.left : tile.coords.right], img, mask)
        mask = _ramp_mask(
            row_img.shape[0], row_img.shape[1], row[0][0].overlap.top, blend_amount, True
        )
        _blend_into(dst[first.top : first.bottom], row_img, mask)


_LUMA = np.array([0.2989, 0.5870, 0.1140])  # BT.601


def _shifted(row: np.ndarray, by: int) -> np.ndarray:
    """``row`` moved ``by`` places, the gap filled with 255 (a high cost)."""
    out = np.full_like(row, 255.0)
    if by > 0:
        out[by:] = row[:-by]
    elif by < 0:
        out[:by] = row[-by:]
    else:
        out[:] = row
    return out


def seam_blend(old: np.ndarray, new: np.ndarray, blend_amount: int, horizontal: bool) -> np.ndarray:
    """Blend two views of the same overlap: find the top-to-bottom (or, if ``horizontal``,
    left-to-right) path through the pixels where their brightness difference changes least,
    keep ``old`` before the path and ``new`` after it, and blur the cut by
    ``blend_amount``."""
    diff = new @ _LUMA - old @ _LUMA
    if horizontal:
        diff = np.rot90(diff, 1)
    gutter = math.ceil(blend_amount / 2) if blend_amount > 0 else 0
    rows, cols = diff.shape
    lo, hi = gutter, cols - gutter
    energy = np.abs(np.gradient(diff, axis=0)) + np.abs(np.gradient(diff, axis=1))
    cost = energy.copy()
    for y in range(1, rows):
        r = cost[y]
        cost[y] = cost[y - 1] + np.min([r, _shifted(r, -1), _shifted(r, 1)], axis=0)
    path = np.empty(rows, dtype=np.int64)
    # InvokeAI takes the argmin of the gutter-trimmed last row without adding the gutter
    # back; kept, so merged images match InvokeAI's
    path[-1] = np.argmin(cost[-1, lo : hi - 1])
    for y in range(rows - 2, -1, -1):
        a = int(np.clip(path[y + 1] - 1, lo, hi - 1))
        b = int(np.clip(path[y + 1] + 1, lo, hi - 1))
        path[y] = np.argmin(energy[y, a : b + 1]) + a
    mask = (np.arange(cols)[None, :] < path[:, None]).astype(diff.dtype)
    if horizontal:
        mask = np.rot90(mask, 3)
    if blend_amount > 0:
        import cv2  # lazily: `import invoke_nb` must stay light

        mask = cv2.blur(mask, (blend_amount, blend_amount))
    return old * mask[..., None] + new * (1.0 - mask[..., None])


def merge_seam(
    dst: np.ndarray, tiles: Sequence[Tile], images: Sequence[np.ndarray], blend_amount: int
) -> None:
    """Paste tile images into ``dst`` (H x W x C), cutting each overlap along its seam."""
    for row in _rows(tiles, images):
        first = row[0][0].coords
        row_img = np.zeros((first.bottom - first.top, *dst.shape[1:]), dtype=dst.dtype)
        for tile, img in row:
            c, ov = tile.coords, tile.overlap.left
            if ov > 0:
                _check_blend(ov, blend_amount)
                region = row_img[:, c.left : c.left + ov]
                _store(region, seam_blend(region, img[:, :ov], blend_amount, horizontal=False))
                row_img[:, c.left + ov : c.right] = img[:, ov:]
            else:
                row_img[:, c.left : c.right] = img
        ov = row[0][0].overlap.top
        if ov > 0:
            _check_blend(ov, blend_amount)
            region = dst[first.top : first.top + ov]
            _store(region, seam_blend(region, row_img[:ov], blend_amount, horizontal=True))
            dst[first.top + ov : first.bottom] = row_img[ov:]
        else:
            dst[first.top : first.bottom] = row_img
