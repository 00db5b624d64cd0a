"""Tile layouts equal InvokeAI 6.11.1's, merges match its images, and split + merge keeps a
picture (a constant image stays exactly constant: no seams)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import invoke_nb as inb
from invoke_nb.nodes.context import register_image
from invoke_nb.nodes.upscale.tile_math import (
    merge_linear,
    merge_seam,
    tiles_even_split,
    tiles_min_overlap,
    tiles_with_overlap,
)
from invoke_nb.nodes.upscale.tiles import TileWithImage

FIX = Path(__file__).parents[1] / "fixtures" / "tiles"
FUNCS = {
    "with_overlap": tiles_with_overlap,
    "even_split": tiles_even_split,
    "min_overlap": tiles_min_overlap,
}


def test_layouts_equal_invokeai() -> None:
    ref = json.loads((FIX / "layouts.json").read_text())
    for name, cases in ref["cases"].items():
        for args, expected in zip(cases, ref["tiles"][name], strict=True):
            assert [t.model_dump() for t in FUNCS[name](*args)] == expected, (name, args)


NODE_FIELDS = {  # each layout's node and the names of the fixture's arguments
    "with_overlap": (
        "calculate_image_tiles",
        ("image_height", "image_width", "tile_height", "tile_width", "overlap"),
    ),
    "even_split": (
        "calculate_image_tiles_even_split",
        ("image_height", "image_width", "num_tiles_x", "num_tiles_y", "overlap"),
    ),
    "min_overlap": (
        "calculate_image_tiles_min_overlap",
        ("image_height", "image_width", "tile_height", "tile_width", "min_overlap"),
    ),
}


@pytest.mark.parametrize("name", sorted(NODE_FIELDS))
def test_tile_nodes_output_invokeais_layouts(name: str) -> None:
    ref = json.loads((FIX / "layouts.json").read_text())
    node_type, fields = NODE_FIELDS[name]
    for args, expected in zip(ref["cases"][name], ref["tiles"][name], strict=True):
        g = inb.Graph()
        g.add(node_type, id="t", **dict(zip(fields, args, strict=True)))
        tiles = inb.run(g).outputs["t"].tiles
        assert [t.model_dump() for t in tiles] == expected, (name, args)


def _tiles_of_picture() -> tuple[list, list[np.ndarray]]:
    picture = np.asarray(Image.open(FIX / "picture.png"))
    tiles = tiles_with_overlap(96, 128, 48, 64, 16)
    images = []
    for i, t in enumerate(tiles):
        c = t.coords
        noise = np.random.RandomState(i).randint(
            -12, 12, size=(c.bottom - c.top, c.right - c.left, 3)
        )
        cast = picture[c.top : c.bottom, c.left : c.right].astype(int) + noise
        images.append(np.clip(cast, 0, 255).astype(np.uint8))
    return tiles, images


@pytest.mark.parametrize("mode", ["seam", "linear"])
def test_merge_matches_invokeai(mode: str) -> None:
    tiles, images = _tiles_of_picture()
    out = np.zeros((96, 128, 3), dtype=np.uint8)
    (merge_seam if mode == "seam" else merge_linear)(out, tiles, images, 8)
    ref = np.asarray(Image.open(FIX / f"merged-{mode}.png"))
    # InvokeAI may lose a level to float noise where we do not
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1


def _split_merge_graph(image: Image.Image, mode: str, blend: int) -> Image.Image:
    """calculate tiles -> iterate -> crop each tile -> pair -> collect -> merge."""
    g = inb.Graph()
    calc = g.add(
        "calculate_image_tiles_min_overlap",
        image_width=image.width,
        image_height=image.height,
        tile_width=48,
        tile_height=40,
        min_overlap=16,
    )
    it = g.add("iterate")
    g.connect(calc, "tiles", it, "collection")
    props = g.add("tile_to_properties")
    g.connect(it, "item", props, "tile")
    crop = g.add("img_crop", image=image)
    for src, dst in (
        ("coords_left", "x"),
        ("coords_top", "y"),
        ("width", "width"),
        ("height", "height"),
    ):
        g.connect(props, src, crop, dst)
    pair = g.add("pair_tile_image")
    g.connect(crop, "image", pair, "image")
    g.connect(it, "item", pair, "tile")
    col = g.add("collect")
    g.connect(pair, "tile_with_image", col, "item")
    merge = g.add("merge_tiles_to_image", id="merge", blend_mode=mode, blend_amount=blend)
    g.connect(col, "collection", merge, "tiles_with_images")
    r = inb.run(g)
    out = r.outputs["merge"]
    assert (out.width, out.height) == image.size
    return r.value(out.image)


@pytest.mark.parametrize("mode", ["Seam", "Linear"])
def test_constant_image_stays_constant_through_split_and_merge(mode: str) -> None:
    flat = Image.new("RGB", (100, 72), (201, 37, 118))
    merged = np.asarray(_split_merge_graph(flat, mode, 8))
    assert (merged == np.array([201, 37, 118], dtype=np.uint8)).all()


def test_picture_comes_back_through_split_and_merge() -> None:
    picture = Image.open(FIX / "picture.png").crop((0, 0, 100, 72))
    merged = np.asarray(_split_merge_graph(picture, "Seam", 8)).astype(int)
    assert np.abs(merged - np.asarray(picture).astype(int)).max() <= 1


def test_tile_to_properties_and_bad_blend() -> None:
    tiles = tiles_with_overlap(96, 128, 48, 64, 16)
    g = inb.Graph()
    g.add("tile_to_properties", id="p", tile=tiles[4])
    out = inb.run(g).outputs["p"]
    c = tiles[4].coords
    assert (out.coords_left, out.coords_top, out.width, out.height) == (
        c.left,
        c.top,
        c.right - c.left,
        c.bottom - c.top,
    )
    assert (out.overlap_left, out.overlap_top) == (16, 16)
    twi = [TileWithImage(tile=t, image=register_image(Image.new("RGB", (64, 48)))) for t in tiles]
    g = inb.Graph()
    g.add("merge_tiles_to_image", id="m", tiles_with_images=twi, blend_amount=32)
    with pytest.raises(Exception, match="blend_amount 32 is larger than an overlap of 16"):
        inb.run(g)
    with pytest.raises(ValueError, match="overlap 64 must be smaller"):
        tiles_with_overlap(96, 128, 48, 64, 64)


def test_a_tile_image_of_the_wrong_size_names_node_field_and_item() -> None:
    tiles = tiles_with_overlap(96, 128, 48, 64, 16)
    twi = [TileWithImage(tile=t, image=register_image(Image.new("RGB", (64, 48)))) for t in tiles]
    twi[2] = TileWithImage(tile=tiles[2], image=register_image(Image.new("RGB", (60, 40))))
    g = inb.Graph()
    g.add("merge_tiles_to_image", id="m", tiles_with_images=twi, blend_amount=8)
    with pytest.raises(inb.NodeError) as err:
        inb.run(g)
    text = str(err.value)
    assert "'m'" in text and "tiles_with_images" in text and "item 2" in text
    assert "60x40 px" in text and "64x48 px" in text
