"""Mask and infill nodes: pixels checked with numpy on small images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from invoke_nb.nodes.mask import fade_mask, infill_tile


def L(arr) -> Image.Image:
    return Image.fromarray(np.asarray(arr, np.uint8), "L")


def test_tomask_takes_alpha_or_luminance(run):
    arr = np.zeros((2, 2, 4), np.uint8)
    arr[..., 3] = [[0, 100], [200, 255]]
    out = run("tomask", image=Image.fromarray(arr, "RGBA"))
    mask = run.pil(out)
    assert mask.mode == "L" and np.asarray(mask).tolist() == [[0, 100], [200, 255]]
    inverted = run.arr(run("tomask", image=Image.fromarray(arr, "RGBA"), invert=True))
    assert inverted.tolist() == [[255, 155], [55, 0]]
    grey = run.arr(run("tomask", image=Image.new("RGB", (2, 2), (255, 255, 255))))
    assert np.all(grey == 255)


def test_mask_combine_multiplies(run):
    out = run("mask_combine", mask1=L([[255, 255], [0, 128]]), mask2=L([[255, 0], [255, 255]]))
    assert run.arr(out).tolist() == [[255, 0], [0, 128]]
    with pytest.raises(ValueError, match="mask1 and mask2 must have the same size"):
        run("mask_combine", mask1=L(np.zeros((2, 2))), mask2=L(np.zeros((3, 3))))


def _square_mask(size=32, lo=10, hi=22) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    mask[lo:hi, lo:hi] = 255
    return mask


def test_mask_edge_marks_the_border_black(run):
    out = run(
        "mask_edge",
        image=L(_square_mask()),
        edge_size=4,
        edge_blur=0,
        low_threshold=100,
        high_threshold=200,
    )
    arr = run.arr(out)
    assert arr.shape == (32, 32)
    assert arr[16, 10] == 0 and arr[10, 16] == 0  # on the square's border: edge (black)
    assert arr[16, 16] == 255 and arr[0, 0] == 255  # far from it: white
    blurred = run.arr(
        run(
            "mask_edge",
            image=L(_square_mask()),
            edge_size=4,
            edge_blur=2,
            low_threshold=100,
            high_threshold=200,
        )
    )
    assert 0 < blurred[16, 6] < 255  # soft falloff around the edge


def test_mask_edge_requires_its_fields(run):
    with pytest.raises(ValidationError) as exc:
        run.build("mask_edge", image="x", edge_size=1, edge_blur=1, low_threshold=1)
    assert exc.value.errors()[0]["loc"] == ("high_threshold",)


def test_fade_mask_grows_black_with_a_fade():
    mask = np.full((1, 40), 255, np.uint8)
    mask[0, :10] = 0
    out = fade_mask(np.repeat(mask, 3, axis=0), threshold=0, fade_size_px=16)[1]
    assert np.all(out[:10] == 0)  # black stays black
    assert out[10] < 20  # the first pixel out stays almost black (the fit is not exact)
    assert np.all(np.diff(out[10:27].astype(int)) >= 0)  # then a monotone fade
    assert 0 < out[18] < 255
    assert np.all(out[26:] == 255)  # white beyond the fade size


def test_fade_mask_threshold_and_zero_fade():
    grey = np.full((4, 4), 100, np.uint8)
    assert np.array_equal(fade_mask(grey, 0, 0), grey)
    assert np.all(fade_mask(grey, 150, 4) == 0)  # 100 <= threshold: all black


def test_expand_mask_with_fade_node(run):
    mask = np.full((8, 24), 255, np.uint8)
    mask[:, :4] = 0
    arr = run.arr(run("expand_mask_with_fade", mask=L(mask), fade_size_px=8))
    assert arr.shape == (8, 24) and np.all(arr[:, :4] == 0) and np.all(arr[:, 12:] == 255)
    assert np.all(arr[:, 4] < 40)
    assert 0 < arr[4, 8] < 255
    assert np.array_equal(run.arr(run("expand_mask_with_fade", mask=L(mask), fade_size_px=0)), mask)
    with pytest.raises(ValidationError) as exc:
        run.build("expand_mask_with_fade", mask="x", threshold=256)
    assert exc.value.errors()[0]["loc"] == ("threshold",)


def test_mask_from_id(run):
    arr = np.zeros((2, 2, 4), np.uint8)
    arr[..., 3] = 255
    arr[0, 0] = (200, 10, 10, 255)
    arr[0, 1] = (190, 20, 10, 255)  # close to the id colour
    img = Image.fromarray(arr, "RGBA")
    out = run("mask_from_id", image=img, color={"r": 200, "g": 10, "b": 10, "a": 255}, threshold=20)
    assert run.arr(out).tolist() == [[255, 255], [0, 0]]
    out = run(
        "mask_from_id",
        image=img,
        color={"r": 200, "g": 10, "b": 10, "a": 255},
        threshold=5,
        invert=True,
    )
    assert run.arr(out).tolist() == [[0, 255], [255, 255]]
    with pytest.raises(ValidationError) as exc:
        run.build("mask_from_id", image="x")
    assert exc.value.errors()[0]["loc"] == ("color",)


def test_apply_mask_to_image(run):
    img = Image.new("RGB", (2, 1), (9, 8, 7))
    out = run.arr(run("apply_mask_to_image", image=img, mask=L([[0, 255]])))
    assert out.tolist() == [[[9, 8, 7, 0], [9, 8, 7, 255]]]
    out = run.arr(run("apply_mask_to_image", image=img, mask=L([[0, 255]]), invert_mask=True))
    assert out[..., 3].tolist() == [[255, 0]]


def _holey(w=8, h=8, color=(200, 100, 50)) -> Image.Image:
    arr = np.zeros((h, w, 4), np.uint8)
    arr[...] = (*color, 255)
    arr[2:5, 3:6] = (0, 0, 0, 0)  # a transparent hole
    return Image.fromarray(arr, "RGBA")


def test_infill_rgba_fills_transparent_with_colour(run):
    out = run.arr(run("infill_rgba", image=_holey(), color={"r": 1, "g": 2, "b": 3, "a": 255}))
    assert tuple(out[3, 4]) == (1, 2, 3, 255)
    assert tuple(out[0, 0]) == (200, 100, 50, 255)
    assert np.all(run.arr(run("infill_rgba", image=_holey()))[3, 4] == (127, 127, 127, 255))


def test_infill_passes_images_without_alpha_through(run):
    img = Image.new("RGB", (4, 4), (1, 2, 3))
    for type_id in ("infill_rgba", "infill_tile", "infill_cv2"):
        node = run.build(type_id, image=img)
        out = run.invoke(node)
        assert out.image == node.image and (out.width, out.height) == (4, 4)


def test_infill_tile_uses_opaque_tiles_and_is_seeded(run):
    arr = np.zeros((8, 8, 4), np.uint8)
    arr[:4, :4] = (255, 0, 0, 255)  # one fully opaque 4x4 tile
    arr[:4, 4:] = (0, 255, 0, 128)  # partly transparent: not a tile
    img = Image.fromarray(arr, "RGBA")
    out = run.arr(run("infill_tile", image=img, tile_size=4, seed=3))
    assert out.shape == (8, 8, 3)
    assert np.all(out[4:, :] == (255, 0, 0))  # the hole is filled with the only tile
    a = infill_tile(_holey(16, 16), seed=1, tile_size=2)
    b = infill_tile(_holey(16, 16), seed=1, tile_size=2)
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert np.all(np.asarray(a) == (200, 100, 50))


def test_infill_tile_without_opaque_tile_is_a_clear_error(run):
    with pytest.raises(
        ValueError, match=r"infill_tile\): no fully opaque 32x32 tile in a 8x8 image"
    ):
        run("infill_tile", image=_holey(), tile_size=32)
    with pytest.raises(ValidationError) as exc:
        run.build("infill_tile", image="x", tile_size=0)
    assert exc.value.errors()[0]["loc"] == ("tile_size",)


def test_infill_cv2_fills_hole_from_surroundings(run):
    out = run.arr(run("infill_cv2", image=_holey(16, 16)))
    assert out.shape == (16, 16, 3)
    assert np.all(np.abs(out.astype(int) - (200, 100, 50)) <= 2)


# -- tensor masks ------------------------------------------------------------------------


def test_rectangle_mask(run):
    torch = pytest.importorskip("torch")
    out = run(
        "rectangle_mask",
        width=6,
        height=4,
        x_left=1,
        y_top=2,
        rectangle_width=3,
        rectangle_height=5,
    )
    assert type(out).output_type == "mask_output" and (out.width, out.height) == (6, 4)
    mask = run.values[out.mask.tensor_name]
    assert mask.dtype == torch.bool and mask.shape == (1, 4, 6)
    expected = torch.zeros((1, 4, 6), dtype=torch.bool)
    expected[:, 2:4, 1:4] = True  # clipped at the bottom
    assert torch.equal(mask, expected)
    with pytest.raises(ValidationError) as exc:
        run.build(
            "rectangle_mask",
            width=0,
            height=1,
            x_left=0,
            y_top=0,
            rectangle_width=1,
            rectangle_height=1,
        )
    assert exc.value.errors()[0]["loc"] == ("width",)


def test_alpha_and_image_masks_to_tensor(run):
    arr = np.zeros((1, 3, 4), np.uint8)
    arr[0, :, 3] = [0, 1, 255]
    out = run("alpha_mask_to_tensor", image=Image.fromarray(arr, "RGBA"))
    assert run.values[out.mask.tensor_name][0].tolist() == [[False, True, True]]
    out = run("alpha_mask_to_tensor", image=Image.fromarray(arr, "RGBA"), invert=True)
    assert run.values[out.mask.tensor_name][0].tolist() == [[True, False, False]]
    grey = L([[0, 127, 128, 255]])
    out = run("image_mask_to_tensor", image=grey)
    assert run.values[out.mask.tensor_name][0].tolist() == [[True, True, False, False]]
    out = run("image_mask_to_tensor", image=grey, cutoff=200, invert=True)
    assert run.values[out.mask.tensor_name][0].tolist() == [[False, False, False, True]]


def test_invert_tensor_mask_and_back_to_image(run):
    torch = pytest.importorskip("torch")
    out = run(
        "rectangle_mask",
        width=3,
        height=1,
        x_left=0,
        y_top=0,
        rectangle_width=1,
        rectangle_height=1,
    )
    inv = run("invert_tensor_mask", mask=out.mask)
    assert run.values[inv.mask.tensor_name].tolist() == [[[False, True, True]]]
    img = run("tensor_mask_to_image", mask=inv.mask)
    assert run.arr(img).tolist() == [[0, 255, 255]]
    # a float 2-D mask is thresholded at 0.5 and given its channel dimension
    run.values["float-mask"] = torch.tensor([[0.2, 0.9]])
    inv = run("invert_tensor_mask", mask={"tensor_name": "float-mask"})
    assert run.values[inv.mask.tensor_name].tolist() == [[[True, False]]]
    run.values["not-a-mask"] = torch.zeros(2, 2, 2, 2)
    with pytest.raises(ValueError, match=r"expected a mask tensor .* got Tensor \(2, 2, 2, 2\)"):
        run("invert_tensor_mask", mask={"tensor_name": "not-a-mask"})


def test_apply_tensor_mask_to_image(run):
    pytest.importorskip("torch")
    arr = np.full((1, 3, 4), 9, np.uint8)
    arr[0, 2, 3] = 0  # already transparent
    m = run(
        "rectangle_mask",
        width=3,
        height=1,
        x_left=0,
        y_top=0,
        rectangle_width=1,
        rectangle_height=1,
    )
    out = run.arr(
        run("apply_tensor_mask_to_image", image=Image.fromarray(arr, "RGBA"), mask=m.mask)
    )
    assert out[0, :, 3].tolist() == [255, 0, 0]
    out = run.arr(
        run(
            "apply_tensor_mask_to_image",
            image=Image.fromarray(arr, "RGBA"),
            mask=m.mask,
            invert=True,
        )
    )
    assert out[0, :, 3].tolist() == [0, 255, 0]
    with pytest.raises(ValueError, match="mask is 3x1 but the image is 2x2"):
        run("apply_tensor_mask_to_image", image=Image.new("RGBA", (2, 2)), mask=m.mask)
