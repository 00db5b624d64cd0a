"""The notebook one-liners on the tiny SD1 model: images land in the catalog with metadata."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import invoke_nb as inb
from invoke_nb.studio import Studio, StudioImage

SMALL = {"width": 64, "height": 64, "steps": 3}


def test_txt2img_catalogues_image_with_metadata(tiny_studio: Studio) -> None:
    img = tiny_studio.txt2img(
        "a red fox", model="tiny", seed=7, negative="blurry", progress=False, **SMALL
    )
    assert isinstance(img, StudioImage)
    assert img.pil.size == (64, 64) and img.path.exists()
    rec = img.record
    assert rec.positive_prompt == "a red fox" and rec.negative_prompt == "blurry"
    assert rec.seed == 7 and rec.steps == 3 and rec.model_name == "tiny"
    meta = img.metadata
    assert meta["model"]["name"] == "tiny" and meta["model"]["hash"].startswith("blake3:")
    assert meta["generation_mode"] == "txt2img"
    png = Image.open(io.BytesIO(img._repr_png_()))
    assert png.size == (64, 64)
    assert img.graph is not None and "denoise_latents" in {s.type for s in img.graph.nodes.values()}
    rows = tiny_studio.sql(
        "select positive_prompt, seed from images where not is_intermediate"
    ).fetchall()
    assert rows == [("a red fox", 7)]


def test_same_seed_same_pixels_new_seed_differs(tiny_studio: Studio) -> None:
    a = tiny_studio.txt2img("a house", seed=1, progress=False, **SMALL)
    tiny_studio.executor.runner.cache.clear()
    b = tiny_studio.txt2img("a house", seed=1, progress=False, **SMALL)
    c = tiny_studio.txt2img("a house", seed=2, progress=False, **SMALL)
    assert np.array_equal(np.asarray(a.pil), np.asarray(b.pil))
    assert not np.array_equal(np.asarray(a.pil), np.asarray(c.pil))


def test_img2img_strength_zero_keeps_input_through_vae(tiny_studio: Studio) -> None:
    src = tiny_studio.txt2img("a tree", seed=3, progress=False, **SMALL)
    out = tiny_studio.img2img(src, "a tree", strength=0.0, seed=4, steps=3, progress=False)
    assert out.pil.size == src.pil.size
    assert out.record.metadata["generation_mode"] == "img2img"
    # strength 0 denoises nothing: the output is the input's latents decoded
    g = inb.Graph()
    g.add("main_model_loader", id="m", model=tiny_studio._model("tiny"))
    g.add("image", id="i", image=src)
    g.add("i2l", id="enc", fp32=True)
    g.add("l2i", id="dec", fp32=True, is_intermediate=True)
    g.connect("i", "image", "enc", "image")
    g.connect("m", "vae", "enc", "vae")
    g.connect("m", "vae", "dec", "vae")
    g.connect("enc", "latents", "dec", "latents")
    round_trip = tiny_studio.run(g, progress=False).run.image("dec")
    diff = np.abs(np.asarray(out.pil, int) - np.asarray(round_trip, int))
    assert diff.max() <= 1
    changed = tiny_studio.img2img(src, "a tree", strength=1.0, seed=4, steps=3, progress=False)
    assert np.abs(np.asarray(changed.pil, int) - np.asarray(round_trip, int)).max() > 10


def test_inpaint_keeps_unmasked_pixels_exactly(tiny_studio: Studio) -> None:
    src = tiny_studio.txt2img("a wall", seed=5, progress=False, **SMALL)
    mask = Image.new("L", (64, 64), 255)
    mask.paste(0, (24, 24, 40, 40))  # black = repaint
    out = tiny_studio.inpaint(src, mask, "a window", seed=6, steps=3, edge_radius=8, progress=False)
    a, b = np.asarray(src.pil.convert("RGB")), np.asarray(out.pil.convert("RGB"))
    outside = np.ones((64, 64), bool)
    outside[8:56, 8:56] = False  # the mask grown by the expanded mask area (2 x edge_radius)
    assert np.array_equal(a[outside], b[outside])
    assert not np.array_equal(a[26:38, 26:38], b[26:38, 26:38])


def test_outpaint_fills_transparent_area(tiny_studio: Studio) -> None:
    base = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    base.paste(Image.new("RGBA", (32, 64), (200, 30, 30, 255)), (0, 0))
    out = tiny_studio.outpaint(base, "more", seed=1, steps=3, progress=False)
    px = np.asarray(out.pil.convert("RGB"))
    assert px.shape == (64, 64, 3)
    assert np.array_equal(px[:, :8], np.asarray(base.convert("RGB"))[:, :8])


def test_board_and_style(tiny_studio: Studio) -> None:
    tiny_studio.presets.create("noir", "{prompt}, film noir", "colour")
    img = tiny_studio.txt2img(
        "a street", style="noir", board="Night", seed=1, progress=False, **SMALL
    )
    rec = img.record
    assert rec.positive_prompt == "a street, film noir" and rec.negative_prompt == "colour"
    board = next(b for b in tiny_studio.catalog.boards.list() if b.board_name == "Night")
    assert rec.board_id == board.board_id and board.image_count == 1
    with pytest.raises(ValueError, match="no style preset 'nope'"):
        tiny_studio.txt2img("x", style="nope", progress=False, **SMALL)


def test_unknown_model_named_in_error(tiny_studio: Studio) -> None:
    with pytest.raises(Exception, match="ghost"):
        tiny_studio.txt2img("x", model="ghost", progress=False, **SMALL)
    assert tiny_studio.sql("select count(*) from images").fetchall() == [(0,)]


def test_recall_and_rerun_with_new_seed(tiny_studio: Studio) -> None:
    img = tiny_studio.txt2img("a boat", seed=11, progress=False, **SMALL)
    g = tiny_studio.recall(img)
    assert isinstance(g, inb.Graph)
    again = tiny_studio.rerun(img, progress=False)
    assert np.array_equal(np.asarray(again.pil), np.asarray(img.pil))
    other = tiny_studio.rerun(img.path, seed=12, progress=False)
    assert other.record.seed == 12
    assert not np.array_equal(np.asarray(other.pil), np.asarray(img.pil))


def test_stats_table(tiny_studio: Studio) -> None:
    tiny_studio.txt2img("a bird", seed=1, progress=False, **SMALL)
    tiny_studio.txt2img("a bird", seed=2, progress=False, **SMALL)
    st = tiny_studio.stats()
    assert st.runs == 2
    assert st.by_type["denoise_latents"]["count"] == 2
    assert st.by_type["compel"]["cached"] >= 2  # second run: prompts from the output cache
    assert "denoise_latents" in str(st) and "<table>" in st._repr_html_()
    assert st.cache["hits"] > 0


def test_image_passes_back_into_graphs(tiny_studio: Studio) -> None:
    img = tiny_studio.txt2img("a cup", seed=1, progress=False, **SMALL)
    g = inb.Graph()
    g.add("image", id="i", image=img)
    g.add("img_scale", id="s", scale_factor=0.5)
    g.connect("i", "image", "s", "image")
    r = tiny_studio.run(g, progress=False)
    assert r.image.pil.size == (32, 32)
