"""Image tools with InvokeAI's ids: boxes, canvas paste-back, panels, enhance, thresholds,
dilate/erode (pixel checks against hand-computed values)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageEnhance

import invoke_nb as inb
from invoke_nb.nodes.utilities import BoundingBoxField


def _run(type_id: str, **values: object) -> object:
    g = inb.Graph()
    g.add(type_id, id="n", **values)
    r = inb.run(g)
    return r, r.outputs["n"]


def _pil(r: object, out: object) -> Image.Image:
    return r.value(out.image)  # type: ignore[attr-defined]


def _square_mask() -> Image.Image:
    m = Image.new("RGB", (16, 12), (0, 0, 0))
    m.paste((255, 255, 255), (3, 2, 9, 7))  # white at x 3..8, y 2..6
    return m


def test_mask_box_crop_and_paste_back() -> None:
    _, out = _run("get_image_mask_bounding_box", mask=_square_mask(), margin=1)
    assert out.bounding_box.box() == (2, 1, 9, 7)  # last white pixel + margin, clipped
    _, none = _run("get_image_mask_bounding_box", mask=Image.new("RGB", (4, 4)))
    assert none.bounding_box.box() == (0, 0, 0, 0)

    src = Image.fromarray(np.arange(16 * 12 * 3, dtype=np.uint8).reshape(12, 16, 3))
    box = BoundingBoxField(x_min=3, y_min=2, x_max=9, y_max=7)
    r, out = _run("crop_image_to_bounding_box", image=src, bounding_box=box)
    assert np.array_equal(np.asarray(_pil(r, out)), np.asarray(src)[2:7, 3:9])
    assert (out.width, out.height) == (6, 5)
    r, auto = _run("crop_image_to_bounding_box", image=_square_mask())
    assert (auto.width, auto.height) == (6, 5)  # getbbox of the non-black area

    patch = Image.new("RGBA", (6, 5), (10, 20, 30, 255))
    r, out = _run(
        "paste_image_into_bounding_box",
        source_image=patch,
        target_image=Image.new("RGB", (16, 12), (200, 200, 200)),
        bounding_box=box,
    )
    arr = np.asarray(_pil(r, out))
    assert tuple(arr[4, 5]) == (10, 20, 30, 255) and tuple(arr[0, 0]) == (200, 200, 200, 255)


def test_canvas_mask_and_crop() -> None:
    gen = Image.new("RGB", (16, 12), (255, 0, 0))
    source = Image.new("RGB", (16, 12), (0, 0, 255))
    # the canvas mask is white where the source is kept
    mask = Image.new("L", (16, 12), 0)
    mask.paste(255, (0, 0, 8, 12))
    r, out = _run("canvas_v2_mask_and_crop", generated_image=gen, source_image=source, mask=mask)
    arr = np.asarray(_pil(r, out))
    assert tuple(arr[5, 2]) == (0, 0, 255) and tuple(arr[5, 12]) == (255, 0, 0)
    r, out = _run("canvas_v2_mask_and_crop", generated_image=gen, mask=mask)
    rgba = np.asarray(_pil(r, out))
    assert rgba[5, 2, 3] == 0 and rgba[5, 12, 3] == 255


def test_panel_layout() -> None:
    _, out = _run(
        "image_panel_layout",
        width=100,
        height=61,
        num_cols=3,
        num_rows=2,
        panel_col_idx=2,
        panel_row_idx=1,
    )
    assert (out.x_left, out.y_top, out.width, out.height) == (66, 30, 33, 30)


def test_enhance_matches_pil_steps() -> None:
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    r, out = _run("invokeai_img_enhance", image=img, invert=True, contrast=1.5, brightness=0.8)
    want = ImageEnhance.Brightness(
        ImageEnhance.Contrast(Image.fromarray(255 - np.asarray(img))).enhance(1.5)
    ).enhance(0.8)
    assert np.array_equal(np.asarray(_pil(r, out)), np.asarray(want))


def test_value_thresholds() -> None:
    ramp = Image.fromarray(np.tile(np.arange(0, 256, 32, dtype=np.uint8), (8, 1)), mode="L")
    r, out = _run(
        "invokeai_img_val_thresholds", image=ramp, threshold_lower=0.25, threshold_upper=0.75
    )
    row = np.asarray(_pil(r, out))[0]
    # 0,32 -> 0 ; 64..160 kept (truncated round trip) ; 192,224 -> 255
    assert list(row) == [0, 0, 64, 96, 128, 160, 255, 255]
    r, out = _run(
        "invokeai_img_val_thresholds",
        image=ramp,
        threshold_lower=0.25,
        threshold_upper=0.75,
        renormalize_values=True,
        invert_output=True,
    )
    row = np.asarray(_pil(r, out))[0]
    assert row[0] == 255 and row[-1] == 0
    assert abs(int(row[4]) - int(255 * (1 - (128 / 255 - 0.25) / 0.5))) <= 1


def test_dilate_and_erode() -> None:
    img = Image.new("L", (15, 15), 0)
    img.putpixel((7, 7), 255)
    r, out = _run("invokeai_img_dilate_erode", image=img, radius_w=2, radius_h=1)
    arr = np.asarray(_pil(r, out))
    assert arr[7, 5] == 255 and arr[7, 9] == 255 and arr[7, 4] == 0  # 2 px across
    assert arr[6, 7] == 255 and arr[5, 7] == 0  # 1 px up
    r, out = _run(
        "invokeai_img_dilate_erode", image=_pil(r, out), radius_w=2, radius_h=1, mode="Erode"
    )
    assert int(np.asarray(_pil(r, out)).sum()) <= 255 * 3
    rgb = Image.merge("RGB", [img] * 3)
    r, out = _run(
        "invokeai_img_dilate_erode", image=rgb, lightness_only=True, radius_w=1, radius_h=1
    )
    arr = np.asarray(_pil(r, out))
    assert arr.shape == (15, 15, 3) and arr[7, 8].min() > 200 and arr[0, 0].max() < 5


def test_show_image_passes_through() -> None:
    img = Image.new("RGB", (5, 3), (1, 2, 3))
    r, out = _run("show_image", image=img)
    assert (out.width, out.height) == (5, 3)
    assert np.array_equal(np.asarray(_pil(r, out)), np.asarray(img))


def test_watermark_is_readable_by_the_decoder() -> None:
    imwatermark = pytest.importorskip("imwatermark")
    yy, xx = np.mgrid[0:256, 0:256]
    smooth = np.stack([60 + xx // 2, 60 + yy // 2, 60 + (xx + yy) // 4], -1).astype(np.uint8)
    img = Image.fromarray(smooth)
    r, out = _run("img_watermark", image=img, text="invoke")
    marked = _pil(r, out)
    assert marked.mode == "RGBA" and marked.size == (256, 256)
    bgr = np.asarray(marked.convert("RGB"))[..., ::-1].copy()
    decoded = imwatermark.WatermarkDecoder("bytes", 6 * 8).decode(bgr, "dwtDct")
    assert decoded == b"invoke"
    diff = np.abs(np.asarray(marked.convert("RGB"), dtype=int) - np.asarray(img, dtype=int))
    assert 0 < diff.mean() < 3  # invisible: small changes


def test_compositor_keys_out_the_backdrop() -> None:
    subject = Image.new("RGB", (8, 8), (0, 255, 0))
    subject.paste((200, 10, 10), (2, 2, 6, 6))
    bg = Image.new("RGB", (8, 8), (0, 0, 255))
    for key in ("#00ff00", "(0, 250, 0)", ""):
        r, out = _run(
            "invokeai_img_composite",
            image_subject=subject,
            image_background=bg,
            chroma_key=key,
            threshold=20,
        )
        arr = np.asarray(_pil(r, out))
        assert tuple(arr[0, 0]) == (0, 0, 255, 255), key  # backdrop removed: background shows
        assert tuple(arr[4, 4]) == (200, 10, 10, 255), key  # subject kept
    r, out = _run(
        "invokeai_img_composite",
        image_subject=subject,
        image_background=bg,
        chroma_key="#00ff00",
        x_offset=2,
        y_offset=1,
    )
    arr = np.asarray(_pil(r, out))
    assert tuple(arr[1 + 1, 2 + 2]) == (200, 10, 10, 255) and tuple(arr[6, 7]) == (0, 0, 255, 255)


def test_ealightness_is_the_lab_lightness() -> None:
    rng = np.random.default_rng(5)
    img = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    r, out = _run("invokeai_ealightness", image=img)
    got = np.asarray(_pil(r, out), dtype=int)
    want = np.asarray(img.convert("LAB").getchannel("L"), dtype=int)
    assert got.shape == (8, 8) and np.abs(got - want).max() <= 1
