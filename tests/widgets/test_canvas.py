"""The canvas widget's kernel side, driven as the browser drives it (no browser): layers from
the catalog and from files, syncing positions, box and mask, mode detection, generating on
the tiny model into the staging area, accepting and discarding."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageDraw

from invoke_nb.studio import Studio
from invoke_nb.widgets import Canvas
from invoke_nb.widgets.canvas import CanvasLayer, composite_layers, generation_mode


class Recorder(Canvas):
    """A Canvas that keeps what it sends to the browser, buffers included."""

    def send(self, content: Any, buffers: Any = None) -> None:
        self.__dict__.setdefault("outbox", []).append((content, buffers))

    def events(self, name: str) -> list[tuple[dict[str, Any], list[bytes]]]:
        return [
            (c["data"], b or [])
            for c, b in list(self.__dict__.get("outbox", []))
            if c.get("kind") == "event" and c["name"] == name
        ]


def call(w: Canvas, method: str, buffers: list[bytes] = (), **params: Any) -> dict[str, Any]:  # type: ignore[assignment]
    answer = w.dispatch({"kind": "request", "id": 1, "method": method, "params": params}, buffers)
    assert answer is not None
    reply, bufs = answer
    reply["buffers"] = bufs
    return reply


def ok(w: Canvas, method: str, buffers: list[bytes] = (), **params: Any) -> Any:  # type: ignore[assignment]
    reply = call(w, method, buffers, **params)
    assert reply["ok"], reply.get("error")
    return reply["result"]


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def rgba(size: tuple[int, int], colour: tuple[int, ...]) -> Image.Image:
    return Image.new("RGBA", size, colour)


@pytest.fixture
def studio(tmp_path: Path) -> Iterator[Studio]:
    s = Studio(tmp_path / "studio")
    yield s
    s.close()


@pytest.fixture
def tiny(studio: Studio, tiny_sd1: Path) -> Studio:
    studio.models.install(str(tiny_sd1), name="tiny", in_place=True)
    return studio


# -- pure parts ---------------------------------------------------------------------------------
def test_generation_mode_follows_the_box_content() -> None:
    empty = rgba((16, 16), (0, 0, 0, 0))
    opaque = rgba((16, 16), (10, 20, 30, 255))
    half = empty.copy()
    half.paste(opaque.crop((0, 0, 8, 16)), (0, 0))
    faint = rgba((16, 16), (10, 20, 30, 128))
    no_mask = Image.new("L", (16, 16), 0)
    mask = no_mask.copy()
    mask.putpixel((3, 3), 255)
    assert generation_mode(empty, mask) == "txt2img"
    assert generation_mode(half, no_mask) == "outpaint"
    assert generation_mode(faint, no_mask) == "outpaint"
    assert generation_mode(opaque, no_mask) == "img2img"
    assert generation_mode(opaque, None) == "img2img"
    assert generation_mode(opaque, mask) == "inpaint"
    assert generation_mode(opaque.convert("RGB"), mask) == "inpaint"


def test_composite_places_scales_clips_and_blends_layers() -> None:
    red = CanvasLayer("a", "red", rgba((10, 10), (255, 0, 0, 255)), x=-5, y=2)
    blue = CanvasLayer(
        "b", "blue", rgba((4, 4), (0, 0, 255, 255)), x=10, y=10, scale_x=2, scale_y=2
    )
    ghost = CanvasLayer("c", "ghost", rgba((20, 20), (0, 255, 0, 255)), visible=False)
    half = CanvasLayer("d", "half", rgba((2, 2), (255, 255, 255, 255)), x=0, y=0, opacity=0.5)
    out = composite_layers([red, blue, ghost, half], (0, 0, 20, 20))
    assert out.size == (20, 20) and out.mode == "RGBA"
    assert out.getpixel((0, 5)) == (255, 0, 0, 255)  # red clipped at the left edge
    assert out.getpixel((5, 5)) == (0, 0, 0, 0)  # red ends at x=5
    assert out.getpixel((10, 10)) == out.getpixel((17, 17)) == (0, 0, 255, 255)  # 4px * 2
    assert out.getpixel((18, 18)) == (0, 0, 0, 0)
    r, g, b, a = out.getpixel((0, 0))
    assert a == 128 and r == g == b == 255  # half-opaque white over nothing
    # the box can sit anywhere
    moved = composite_layers([blue], (12, 12, 8, 8))
    assert moved.getpixel((0, 0)) == (0, 0, 255, 255) and moved.getpixel((6, 6)) == (0, 0, 0, 0)


# -- layers and sync ------------------------------------------------------------------------------
def test_a_canvas_opened_on_an_image_has_it_as_a_layer_and_the_box(studio: Studio) -> None:
    cv = Recorder(studio, Image.new("RGB", (100, 60), "green"))
    assert [la.name for la in cv.layers] == ["image"]
    assert cv.bbox == (0, 0, 96, 56)
    assert cv.mode() == "img2img"
    init = call(cv, "init")
    assert init["ok"] and init["result"]["bbox"] == {"x": 0, "y": 0, "width": 96, "height": 56}
    assert [la["width"] for la in init["result"]["layers"]] == [100]
    assert Image.open(io.BytesIO(init["buffers"][0])).size == (100, 60)
    assert init["result"]["mask"] is False
    assert studio.canvas().bbox == (0, 0, 512, 512)


def test_layers_from_the_catalog_and_from_files(studio: Studio) -> None:
    rec = studio.catalog.images.save(Image.new("RGB", (32, 32), "blue"))
    cv = Recorder(studio, width=64, height=64)
    lid = ok(cv, "add_image", image_name=rec.image_name, x=8, y=16)["id"]
    ((desc, (buf,)),) = cv.events("layer_added")
    assert desc["id"] == lid and (desc["x"], desc["y"]) == (8, 16)
    assert Image.open(io.BytesIO(buf)).getpixel((0, 0))[:3] == (0, 0, 255)
    fid = ok(cv, "add_file", [png(rgba((8, 8), (255, 255, 0, 255)))], name="dot.png")["id"]
    assert [la.id for la in cv.layers] == [lid, fid] and cv.layers[1].name == "dot.png"

    bad = call(cv, "add_file", [b"not an image"], name="notes.txt")
    assert not bad["ok"] and "notes.txt" in bad["error"]["message"]
    bad = call(cv, "add_image", image_name="missing.png")
    assert not bad["ok"] and "missing.png" in bad["error"]["message"]
    assert len(cv.layers) == 2  # nothing added by the refused requests


def test_sync_moves_layers_box_and_mask_or_refuses_all_of_it(studio: Studio) -> None:
    cv = Recorder(studio, rgba((32, 32), (255, 0, 0, 255)))
    (layer,) = cv.layers
    mask = rgba((64, 32), (0, 0, 0, 0))
    ImageDraw.Draw(mask).rectangle((40, 0, 63, 31), fill=(255, 255, 255, 255))
    res = ok(
        cv,
        "sync",
        [png(mask)],
        bbox={"x": 0, "y": 0, "width": 64, "height": 32},
        layers=[{"id": layer.id, "x": 0, "y": 0, "scale_x": 1.25, "scale_y": 1.0}],
        mask_empty=False,
    )
    assert res["mode"] == "outpaint"  # the layer covers 40 of 64 columns
    assert cv.bbox == (0, 0, 64, 32) and cv.layers[0].scale_x == 1.25
    assert cv.mask.size == (64, 32) and cv.mask.getpixel((50, 5)) == 255
    assert cv.mask.getpixel((10, 5)) == 0
    comp = cv.composite
    assert comp.getpixel((39, 5))[3] == 255 and comp.getpixel((41, 5))[3] == 0

    before = (cv.bbox, cv.layers, cv.mask.tobytes())
    for params, bufs, words in (
        ({"bbox": {"x": 0, "y": 0, "width": 60, "height": 32}}, [], "multiple of 8"),
        (
            {"bbox": {"x": 0, "y": 0, "width": 64, "height": 64}, "mask_empty": False},
            [png(mask)],
            "mask",
        ),
        (
            {"bbox": {"x": 0, "y": 0, "width": 64, "height": 32}, "mask_empty": False},
            [b"x"],
            "mask",
        ),
    ):
        reply = call(cv, "sync", bufs, layers=[{"id": layer.id, "x": 5, "y": 5}], **params)
        assert not reply["ok"] and words in reply["error"]["message"], reply
    reply = call(
        cv,
        "sync",
        bbox={"x": 0, "y": 0, "width": 64, "height": 32},
        layers=[{"id": "nope", "x": 0, "y": 0}],
    )
    assert not reply["ok"] and "nope" in reply["error"]["message"]
    assert (cv.bbox, cv.layers, cv.mask.tobytes()) == before

    # a layer left out of the sync (undone in the browser) leaves `layers`, and can come back
    ok(cv, "sync", bbox={"x": 0, "y": 0, "width": 64, "height": 32}, layers=[])
    assert cv.layers == [] and cv.mode() == "txt2img"
    ok(
        cv,
        "sync",
        bbox={"x": 0, "y": 0, "width": 64, "height": 32},
        layers=[{"id": layer.id, "x": 0, "y": 0}],
    )
    assert [la.id for la in cv.layers] == [layer.id]


# -- generation -----------------------------------------------------------------------------------
def wait_idle(cv: Canvas, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while cv.busy:
        assert time.monotonic() < deadline, "generation did not finish"
        time.sleep(0.02)


SETTINGS = {"prompt": "a cat", "steps": 2, "seed": 5, "model": "tiny"}


def test_inpaint_from_the_browser_stages_then_accept_makes_a_layer(tiny: Studio) -> None:
    base = Image.new("RGB", (64, 64), (30, 120, 200))
    cv = Recorder(tiny, base)
    (layer,) = cv.layers
    mask = rgba((64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(mask).ellipse((16, 16, 47, 47), fill=(255, 255, 255, 255))
    ok(
        cv,
        "sync",
        [png(mask)],
        bbox={"x": 0, "y": 0, "width": 64, "height": 64},
        layers=[{"id": layer.id, "x": 0, "y": 0}],
        mask_empty=False,
    )
    assert ok(cv, "generate", **SETTINGS) == {"mode": "inpaint"}
    assert cv.busy
    wait_idle(cv)
    assert cv.last_mode == "inpaint" and cv.status == "inpaint done"
    ((staging, bufs),) = cv.events("staging")
    assert len(staging["items"]) == 1 and len(cv.staged) == 1
    result = Image.open(io.BytesIO(bufs[0])).convert("RGB")
    assert result.size == (64, 64)
    assert result.getpixel((2, 2)) == (30, 120, 200), "unmasked pixels are kept exactly"
    assert result.getpixel((32, 32)) != (30, 120, 200), "masked pixels are repainted"

    lid = ok(cv, "accept", index=0)["id"]
    assert cv.staged == [] and cv.events("staging_cleared")
    assert [la.id for la in cv.layers] == [layer.id, lid]
    assert (cv.layers[1].x, cv.layers[1].y) == (0, 0)
    diff = ImageChops.difference(cv.composite.convert("RGB"), result)
    assert diff.getbbox() is None, "the accepted layer is what the box now shows"


def test_txt2img_and_outpaint_and_img2img_by_box_content(tiny: Studio) -> None:
    cv = Recorder(tiny, width=64, height=64)
    img = cv.generate(**SETTINGS)
    assert cv.last_mode == "txt2img" and img.pil.size == (64, 64)
    cv.accept()
    assert cv.mode() == "img2img"
    cv.generate(**{**SETTINGS, "strength": 0.5})
    assert cv.last_mode == "img2img"
    cv.discard()
    assert cv.staged == [] and cv.events("staging")[-1][0] == {"items": []}
    # move the box half off the picture: outpaint
    (layer,) = cv.layers
    ok(
        cv,
        "sync",
        bbox={"x": 32, "y": 0, "width": 64, "height": 64},
        layers=[{"id": layer.id, "x": 0, "y": 0}],
    )
    out = cv.generate(**SETTINGS)
    assert cv.last_mode == "outpaint" and out.pil.size == (64, 64)
    # the kept half is the layer's pixels, away from the blended seam (edge radius 16)
    kept = layer.image.convert("RGB").crop((32, 0, 40, 64))
    got = out.pil.convert("RGB").crop((0, 0, 8, 64))
    assert ImageChops.difference(got, kept).getbbox() is None
    # and the transparent half is generated, not left black
    assert out.pil.convert("RGB").crop((40, 0, 64, 64)).getextrema() != ((0, 0), (0, 0), (0, 0))


def test_generation_errors_reach_the_browser_and_leave_the_canvas_as_it_was(studio: Studio) -> None:
    cv = Recorder(studio, width=64, height=64)  # no model installed
    ok(cv, "generate", prompt="x", steps=2)
    wait_idle(cv)
    ((err, _),) = cv.events("generation_error")
    assert "no main model installed" in err["message"]
    assert cv.staged == [] and cv.layers == []
    bad = call(cv, "generate", prompt="x", steps=0)
    assert not bad["ok"] and "steps" in bad["error"]["message"]
    bad = call(cv, "accept", index=0)
    assert not bad["ok"] and "no staged image" in bad["error"]["message"]
