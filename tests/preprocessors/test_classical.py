"""Classical preprocessors: Canny equals OpenCV's, colour map and content shuffle equal
InvokeAI 6.11.1's (reference maps in tests/fixtures/preprocessors, made by its own code)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import invoke_nb as inb
from invoke_nb.nodes.preprocessors.classical import content_shuffle

FIX = Path(__file__).parents[1] / "fixtures"
SOURCE = FIX / "invokeai" / "invokeai-euler-seed42.png"


def _run(type_id: str, **values: object) -> tuple[object, np.ndarray]:
    g = inb.Graph()
    g.add(type_id, id="n", **values)
    r = inb.run(g)
    out = r.outputs["n"]
    return out, np.asarray(r.value(out.image))


def test_canny_equals_opencv_on_a_real_image() -> None:
    image = Image.open(SOURCE).convert("RGB")
    out, edges = _run("canny_edge_detection", image=image, low_threshold=50, high_threshold=120)
    expected = cv2.Canny(cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR), 50, 120)
    assert (out.width, out.height) == image.size and edges.shape == (64, 64, 3)
    assert expected.any() and np.array_equal(edges[..., 0], expected)
    assert np.array_equal(edges[..., 1], expected) and np.array_equal(edges[..., 2], expected)


def test_canny_finds_the_border_of_a_square() -> None:
    img = Image.new("RGB", (32, 32), (0, 0, 0))
    img.paste((255, 255, 255), (8, 8, 24, 24))
    _, edges = _run("canny_edge_detection", image=img)
    on = np.argwhere(edges[..., 0] == 255)
    assert len(on) > 40
    # every edge pixel sits on the square's outline (one pixel either side)
    near = np.minimum(np.abs(on - 8), np.abs(on - 23)).min(axis=1) <= 1
    assert near.all()


def test_color_map_equals_invokeai() -> None:
    image = Image.open(SOURCE).convert("RGB")
    _, ours = _run("color_map", image=image, tile_size=8)
    ref = np.asarray(Image.open(FIX / "preprocessors" / "color_map-tile8.png"))
    assert ours.shape == ref.shape
    assert np.abs(ours.astype(int) - ref.astype(int)).max() <= 2
    # flat 8x8 tiles
    assert (ours[:8, :8] == ours[0, 0]).all()


def test_content_shuffle_equals_invokeai_with_the_same_random_state() -> None:
    image = Image.open(SOURCE).convert("RGB")
    ours = np.asarray(content_shuffle(image, 16, rng=np.random.RandomState(3)))
    ref = np.asarray(Image.open(FIX / "preprocessors" / "content_shuffle-scale16-seed3.png"))
    diff = np.abs(ours.astype(int) - ref.astype(int))
    # OpenCV builds round bilinear sampling a little differently (ours 5.x, InvokeAI's 4.x)
    assert diff.max() <= 8 and (diff > 2).mean() < 0.001
    assert not np.array_equal(ours, np.asarray(image))


def test_content_shuffle_node_keeps_the_size_and_refuses_scale_zero() -> None:
    image = Image.open(SOURCE).convert("RGB")
    _, arr = _run("content_shuffle", image=image, scale_factor=16)
    assert arr.shape == (64, 64, 3)
    with pytest.raises(Exception, match="scale_factor"):
        _run("content_shuffle", image=image, scale_factor=0)
