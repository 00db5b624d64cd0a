"""Image operations: pixels checked with numpy on small images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from invoke_nb.nodes.base import get_node_class


def rgb(w: int, h: int, color=(0, 0, 0)) -> Image.Image:
    return Image.new("RGB", (w, h), color)


def ramp(w: int = 4, h: int = 4) -> Image.Image:
    """RGB image whose red is 10*x + 40*y, so every pixel is distinct."""
    arr = np.zeros((h, w, 3), np.uint8)
    for y in range(h):
        for x in range(w):
            arr[y, x] = (10 * x + 40 * y, 7, 9)
    return Image.fromarray(arr, "RGB")


def field_error(run, type_id, **fields):
    with pytest.raises(ValidationError) as exc:
        run.build(type_id, **fields)
    return exc.value.errors()[0]["loc"]


def test_blank_image(run):
    out = run("blank_image", width=3, height=2, color={"r": 1, "g": 2, "b": 3, "a": 4})
    assert (out.width, out.height) == (3, 2)
    img = run.pil(out)
    assert img.mode == "RGB" and np.all(np.asarray(img) == (1, 2, 3))
    img = run.pil(
        run("blank_image", width=2, height=2, mode="RGBA", color={"r": 1, "g": 2, "b": 3, "a": 4})
    )
    assert img.mode == "RGBA" and np.all(np.asarray(img) == (1, 2, 3, 4))
    assert field_error(run, "blank_image", width=0) == ("width",)
    assert field_error(run, "blank_image", mode="P") == ("mode",)


def test_img_crop_box_may_reach_outside(run):
    out = run("img_crop", image=ramp(), x=-1, y=1, width=3, height=2)
    arr = run.arr(out)
    assert arr.shape == (2, 3, 4) and (out.width, out.height) == (3, 2)
    assert tuple(arr[0, 0]) == (0, 0, 0, 0)  # outside the image: transparent
    assert tuple(arr[0, 1]) == (40, 7, 9, 255)  # source pixel (0, 1)
    assert tuple(arr[1, 2]) == (10 + 80, 7, 9, 255)  # source pixel (1, 2)
    assert field_error(run, "img_crop", image="x", width=0) == ("width",)


def test_img_pad_crop(run):
    arr = run.arr(run("img_pad_crop", image=ramp(), left=1, top=-1))
    assert arr.shape == (3, 5, 4)
    assert arr[:, 0, 3].tolist() == [0, 0, 0]  # new column is transparent
    assert tuple(arr[0, 1]) == (40, 7, 9, 255)  # first kept row is the source's row 1
    with pytest.raises(ValueError, match="leaves no image"):
        run("img_pad_crop", image=ramp(), left=-2, right=-2)


def test_img_paste_inside(run):
    out = run(
        "img_paste", base_image=rgb(4, 4, (255, 0, 0)), image=rgb(2, 2, (0, 0, 255)), x=1, y=1
    )
    arr = run.arr(out)
    assert arr.shape == (4, 4, 4)
    blue = np.all(arr == (0, 0, 255, 255), axis=-1)
    expected = np.zeros((4, 4), bool)
    expected[1:3, 1:3] = True
    assert np.array_equal(blue, expected)
    assert np.all(arr[~expected] == (255, 0, 0, 255))


def test_img_paste_grows_canvas_unless_cropped(run):
    base, image = rgb(4, 4, (255, 0, 0)), rgb(2, 2, (0, 0, 255))
    out = run("img_paste", base_image=base, image=image, x=3, y=-1)
    arr = run.arr(out)
    assert (out.width, out.height) == (5, 5)
    assert tuple(arr[0, 3]) == (0, 0, 255, 255)  # pasted at the top, canvas grew up
    assert tuple(arr[0, 0]) == (0, 0, 0, 0)  # new area not covered by anything
    assert tuple(arr[1, 0]) == (255, 0, 0, 255)  # base shifted down by one
    out = run("img_paste", base_image=base, image=image, x=3, y=-1, crop=True)
    arr = run.arr(out)
    assert arr.shape == (4, 4, 4)
    assert tuple(arr[0, 3]) == (0, 0, 255, 255) and tuple(arr[0, 2]) == (255, 0, 0, 255)


def test_img_paste_mask_black_pastes_white_keeps(run):
    mask = Image.new("L", (2, 2), 255)
    mask.putpixel((0, 0), 0)
    out = run(
        "img_paste",
        base_image=rgb(2, 2, (255, 0, 0)),
        image=rgb(2, 2, (0, 0, 255)),
        mask=mask,
    )
    arr = run.arr(out)
    assert tuple(arr[0, 0]) == (0, 0, 255, 255)
    assert tuple(arr[1, 1]) == (255, 0, 0, 255)
    with pytest.raises(ValueError, match=r"image and mask must have the same size.*2x2 and 3x3"):
        run("img_paste", base_image=rgb(2, 2), image=rgb(2, 2), mask=Image.new("L", (3, 3)))


def test_img_mul(run):
    out = run("img_mul", image1=rgb(2, 2, (200, 255, 0)), image2=rgb(2, 2, (128, 100, 50)))
    assert np.all(run.arr(out) == (100, 100, 0))
    # a greyscale second image is converted to the first one's mode
    out = run("img_mul", image1=rgb(2, 2, (255, 255, 255)), image2=Image.new("L", (2, 2), 51))
    assert np.all(run.arr(out) == (51, 51, 51))
    with pytest.raises(ValueError, match="image1 and image2 must have the same size"):
        run("img_mul", image1=rgb(2, 2), image2=rgb(3, 2))


def test_img_chan(run):
    img = Image.new("RGBA", (2, 2), (10, 20, 30, 40))
    assert np.all(run.arr(run("img_chan", image=img, channel="G")) == 20)
    assert np.all(run.arr(run("img_chan", image=img)) == 40)  # default channel A
    assert run.pil(run("img_chan", image=img, channel="R")).mode == "L"
    assert np.all(run.arr(run("img_chan", image=rgb(2, 2), channel="A")) == 255)
    assert field_error(run, "img_chan", image="x", channel="Q") == ("channel",)


def test_img_conv(run):
    out = run("img_conv", image=rgb(2, 2, (255, 255, 255)))
    img = run.pil(out)
    assert img.mode == "L" and np.all(np.asarray(img) == 255)
    assert run.pil(run("img_conv", image=rgb(2, 2), mode="RGBA")).mode == "RGBA"
    assert field_error(run, "img_conv", image="x", mode="XYZ") == ("mode",)


def test_img_blur_spreads_a_point_and_keeps_flat_colour(run):
    point = rgb(9, 9)
    point.putpixel((4, 4), (255, 255, 255))
    for blur_type in ("gaussian", "box"):
        arr = run.arr(run("img_blur", image=point, radius=2, blur_type=blur_type)).astype(int)
        assert arr[4, 4, 0] < 255 and arr[4, 5, 0] > 0 and arr[4, 6, 0] > 0
        assert arr[0, 0, 0] == 0
    flat = run.arr(run("img_blur", image=rgb(6, 6, (50, 100, 150)), radius=3))
    assert np.all(flat == (50, 100, 150, 255))
    assert np.array_equal(
        run.arr(run("img_blur", image=ramp(), radius=0))[..., :3], np.asarray(ramp())
    )


def test_img_blur_does_not_bleed_transparent_colour(run):
    # left half opaque red, right half fully transparent green
    arr = np.zeros((4, 8, 4), np.uint8)
    arr[:, :4] = (255, 0, 0, 255)
    arr[:, 4:] = (0, 255, 0, 0)
    out = run.arr(run("img_blur", image=Image.fromarray(arr, "RGBA"), radius=1.5)).astype(int)
    edge = out[:, 3:6]
    assert np.all(edge[..., 3] > 0) and np.all(edge[..., 3] < 255)  # alpha is blurred
    assert np.all(edge[..., 1] == 0)  # no green leaks in
    assert np.all(edge[..., 0] >= 250)  # colour stays red


def test_img_blur_field_errors(run):
    assert field_error(run, "img_blur", image="x", radius=-1) == ("radius",)
    assert field_error(run, "img_blur", image="x", blur_type="motion") == ("blur_type",)


def test_unsharp_mask_overshoots_edges_and_keeps_alpha(run):
    arr = np.zeros((4, 8, 4), np.uint8)
    arr[:, :4] = (100, 100, 100, 200)
    arr[:, 4:] = (150, 150, 150, 200)
    out = run.arr(run("unsharp_mask", image=Image.fromarray(arr, "RGBA"), radius=1, strength=100))
    assert out.shape == (4, 8, 4)
    assert out[0, 3, 0] < 100 and out[0, 4, 0] > 150  # dark side darker, light side lighter
    assert out[0, 0, 0] == 100 and out[0, 7, 0] == 150  # flat areas unchanged
    assert np.all(out[..., 3] == 200)
    flat = run.arr(run("unsharp_mask", image=rgb(4, 4, (9, 99, 199))))
    assert np.all(flat == (9, 99, 199))
    assert field_error(run, "unsharp_mask", image="x", radius=0) == ("radius",)
    assert field_error(run, "unsharp_mask", image="x", strength=-1) == ("strength",)


def test_img_resize(run):
    out = run("img_resize", image=ramp(), width=8, height=2, resample_mode="nearest")
    arr = run.arr(out)
    assert (out.width, out.height) == (8, 2) and arr.shape == (2, 8, 3)
    assert arr[0, :, 0].tolist() == [40, 40, 50, 50, 60, 60, 70, 70]  # row 1 of the source
    assert field_error(run, "img_resize", image="x", height=-2) == ("height",)
    assert field_error(run, "img_resize", image="x", resample_mode="cubic") == ("resample_mode",)


def test_img_scale(run):
    out = run("img_scale", image=ramp(4, 4), scale_factor=0.5, resample_mode="box")
    assert (out.width, out.height) == (2, 2)
    assert run.arr(out)[0, 0, 0] == 25  # mean of 0, 10, 40, 50
    out = run("img_scale", image=ramp(3, 3), scale_factor=1.5)
    assert (out.width, out.height) == (4, 4)  # int(4.5)
    with pytest.raises(ValueError, match="smaller than one pixel"):
        run("img_scale", image=ramp(4, 4), scale_factor=0.1)
    assert field_error(run, "img_scale", image="x", scale_factor=0) == ("scale_factor",)


def test_img_lerp_and_ilerp(run):
    grey = Image.fromarray(np.array([[0, 51, 255]], np.uint8), "L")
    out = run.arr(run("img_lerp", image=grey, min=100, max=200))
    assert out.tolist() == [[100, 120, 200]]
    grey = Image.fromarray(np.array([[50, 100, 150, 200, 250]], np.uint8), "L")
    out = run.arr(run("img_ilerp", image=grey, min=100, max=200))
    assert out.tolist() == [[0, 0, 127, 255, 255]]
    with pytest.raises(ValueError, match=r"max \(100\) must be greater than min \(100\)"):
        run("img_ilerp", image=grey, min=100, max=100)
    assert field_error(run, "img_lerp", image="x", max=256) == ("max",)


def test_img_hue_adjust(run):
    img = Image.new("RGBA", (2, 2), (255, 0, 0, 77))
    out = run.arr(run("img_hue_adjust", image=img, hue=120)).astype(int)
    assert out.shape == (2, 2, 4)
    r, g, b, a = out[0, 0]
    assert g > 240 and r < 20 and b < 20  # red rotated to green
    assert a == 77  # alpha kept
    same = run.arr(run("img_hue_adjust", image=rgb(2, 2, (0, 0, 255)), hue=360))
    assert tuple(same[0, 0]) == (0, 0, 255, 255)


def test_img_channel_offset(run):
    img = Image.new("RGBA", (2, 2), (250, 10, 20, 99))
    out = run.arr(run("img_channel_offset", image=img, channel="Red (RGBA)", offset=50))
    assert tuple(out[0, 0]) == (255, 10, 20, 99)  # clipped, alpha kept
    out = run.arr(run("img_channel_offset", image=img, channel="Alpha (RGBA)", offset=-100))
    assert out[0, 0, 3] == 0
    # hue wraps around instead of clipping: red (hue 0) minus 1/3 turn becomes blue-ish
    out = run.arr(
        run("img_channel_offset", image=rgb(1, 1, (255, 0, 0)), channel="Hue (HSV)", offset=-85)
    ).astype(int)
    assert out[0, 0, 2] > 240 and out[0, 0, 1] < 20
    assert field_error(run, "img_channel_offset", image="x") == ("channel",)
    assert field_error(run, "img_channel_offset", image="x", channel="Red (RGBA)", offset=300) == (
        "offset",
    )


def test_img_channel_multiply(run):
    img = Image.new("RGBA", (2, 2), (10, 200, 30, 50))
    out = run.arr(run("img_channel_multiply", image=img, channel="Green (RGBA)", scale=0.5))
    assert tuple(out[0, 0]) == (10, 100, 30, 50)
    out = run.arr(
        run("img_channel_multiply", image=img, channel="Green (RGBA)", scale=2, invert_channel=True)
    )
    assert tuple(out[0, 0]) == (10, 0, 30, 50)
    out = run.arr(run("img_channel_multiply", image=img, channel="Value (HSV)", scale=0))
    assert tuple(out[0, 0]) == (0, 0, 0, 50)
    assert field_error(run, "img_channel_multiply", image="x", channel="Hue (HSV)", scale=-1) == (
        "scale",
    )


def _half_mask(w=8, h=4) -> Image.Image:
    mask = np.full((h, w), 255, np.uint8)
    mask[:, : w // 2] = 0
    return Image.fromarray(mask, "L")


def test_canvas_paste_back(run):
    source = rgb(8, 4, (255, 0, 0))
    out = run.arr(
        run(
            "canvas_paste_back",
            source_image=source,
            target_image=rgb(8, 4, (0, 0, 255)),
            mask=_half_mask(),
        )
    )
    assert np.all(out[:, :4] == (0, 0, 255)) and np.all(out[:, 4:] == (255, 0, 0))
    assert source.getpixel((0, 0)) == (255, 0, 0)  # the input is not drawn into


def test_canvas_paste_back_blur_softens_seam(run):
    source, target = rgb(32, 8, (255, 0, 0)), rgb(32, 8, (0, 0, 255))
    out = run.arr(
        run(
            "canvas_paste_back",
            source_image=source,
            target_image=target,
            mask=_half_mask(32, 8),
            mask_blur=2,
        )
    ).astype(int)
    assert tuple(out[4, 0]) == (0, 0, 255) and tuple(out[4, 31]) == (255, 0, 0)
    seam = out[4, 12:24, 2]
    assert np.all(np.diff(seam) <= 0) and 0 < seam[6] < 255  # a gradient, blue fading out
    # erosion pushes the generated area past the mask edge
    assert out[4, 17, 2] > 0


def test_canvas_paste_back_size_mismatch(run):
    with pytest.raises(ValueError, match="source_image and mask must have the same size"):
        run(
            "canvas_paste_back",
            source_image=rgb(8, 4),
            target_image=rgb(8, 4),
            mask=_half_mask(4, 4),
        )


def test_save_image_copies_and_is_never_cached(run):
    out = run("save_image", image=rgb(2, 2, (5, 6, 7)))
    assert np.all(run.arr(out) == (5, 6, 7))
    assert get_node_class("save_image").deterministic is False


def test_color_correct_matches_reference_histogram(run):
    base = Image.fromarray(np.tile(np.arange(0, 64, dtype=np.uint8), (4, 1)), "L").convert("RGBA")
    base.putalpha(77)
    ref = Image.fromarray(np.tile(np.arange(128, 256, 2, dtype=np.uint8), (4, 1)), "L").convert(
        "RGB"
    )
    out = run.arr(run("color_correct", base_image=base, color_reference=ref)).astype(int)
    assert out[0, 0, 0] >= 128 and out[0, -1, 0] >= 250  # moved into the reference's range
    assert np.all(np.diff(out[0, :, 0]) >= 0)  # order kept
    assert np.all(out[..., 3] == 77)
    mask = np.full((4, 64), 255, np.uint8)
    mask[:, :32] = 0  # black: correct; white: keep
    out = run.arr(
        run("color_correct", base_image=base, color_reference=ref, mask=Image.fromarray(mask, "L"))
    )
    assert out[0, 0, 0] >= 128 and out[0, 40, 0] == 40
    luma = run.arr(
        run("color_correct", base_image=base, color_reference=ref, colorspace="YCbCr-Luma")
    )
    assert luma[0, 0, 0] >= 120
    with pytest.raises(ValueError, match="base_image and mask must have the same size"):
        run("color_correct", base_image=base, color_reference=ref, mask=Image.new("L", (2, 2)))


def test_img_noise_is_seeded_and_masked(run):
    img = rgb(8, 8, (128, 128, 128)).convert("RGBA")
    a = run.arr(run("img_noise", image=img, seed=1, amount=0.5))
    b = run.arr(run("img_noise", image=img, seed=1, amount=0.5))
    c = run.arr(run("img_noise", image=img, seed=2, amount=0.5))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a[..., :3].std() > 0 and np.all(a[..., 3] == 255)
    mask = np.full((8, 8), 255, np.uint8)
    mask[:, :4] = 0  # black: noise
    m = run.arr(run("img_noise", image=img, seed=1, amount=0.5, mask=Image.fromarray(mask, "L")))
    assert np.all(m[:, 4:, :3] == 128) and m[:, :4, :3].std() > 0
    sp = run.arr(
        run("img_noise", image=img, noise_type="salt_and_pepper", amount=1.0, noise_color=False)
    )
    assert np.all(sp[..., :3] == 255)  # all salt, fully blended
    with pytest.raises(ValueError, match="larger than the 8x8 image"):
        run("img_noise", image=img, size=9)
    assert field_error(run, "img_noise", image="x", amount=1.5) == ("amount",)
