"""The node library run through real graphs (``inb.Graph`` + ``inb.run``)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import invoke_nb as inb


def test_arithmetic_chain_and_incremental_rerun():
    g = inb.Graph()
    a = g.add("integer", value=6)
    b = g.add("float_to_int", value=7.6, method="Floor")
    s = g.add("add")
    m = g.add("integer_math", operation="MUL", b=10)
    g.connect(a, "value", s, "a")
    g.connect(b, "value", s, "b")
    g.connect(s, "value", m, "a")
    runner = inb.Runner()
    r = runner.run(g)
    assert r.outputs[m].value == 130
    r = runner.run(g)
    assert r.executed == set() and r.cached == {a, b, s, m}
    g.set(a, value=1)
    r = runner.run(g)
    assert r.outputs[m].value == 80
    assert r.executed == {a, s, m}


def test_division_by_zero_names_the_node():
    g = inb.Graph()
    zero = g.add("integer", value=0)
    d = g.add("integer_math", id="divide", operation="DIV", a=1)
    g.connect(zero, "value", d, "b")
    with pytest.raises(
        inb.NodeError, match=r"(?s)'divide' \(integer_math\).*\nb\n.*Cannot divide by zero"
    ):
        inb.Runner().run(g)


def test_random_node_always_runs():
    g = inb.Graph()
    r_id = g.add("rand_int", low=0, high=1000)
    runner = inb.Runner()
    runner.run(g)
    assert r_id in runner.run(g).executed


def test_image_pipeline_pixels_and_cache():
    pil = Image.new("RGBA", (16, 16), (255, 0, 0, 255))
    pil.paste((0, 0, 0, 0), (8, 0, 16, 16))  # right half transparent
    g = inb.Graph()
    src = g.add("image", image=pil)
    resized = g.add("img_resize", width=8, height=4, resample_mode="nearest")
    mask = g.add("tomask", invert=True)
    filled = g.add("infill_rgba", color={"r": 0, "g": 0, "b": 255, "a": 255})
    g.connect(src, "image", resized, "image")
    g.connect(resized, "image", mask, "image")
    g.connect(resized, "image", filled, "image")
    runner = inb.Runner()
    r = runner.run(g)
    assert (r.outputs[src].width, r.outputs[src].height) == (16, 16)
    assert (r.outputs[resized].width, r.outputs[resized].height) == (8, 4)
    m = np.asarray(r.image(mask))
    assert m.shape == (4, 8) and np.all(m[:, :4] == 0) and np.all(m[:, 4:] == 255)
    f = np.asarray(r.image(filled))
    assert np.all(f[:, :4] == (255, 0, 0, 255)) and np.all(f[:, 4:] == (0, 0, 255, 255))
    assert runner.run(g).executed == set()


def test_range_iterate_collect_with_library_nodes():
    g = inb.Graph()
    rng = g.add("range", start=1, stop=4)
    it = g.add("iterate")
    sq = g.add("integer_math", operation="EXP", b=2)
    col = g.add("collect")
    g.connect(rng, "collection", it, "collection")
    g.connect(it, "item", sq, "a")
    g.connect(sq, "value", col, "item")
    r = inb.run(g)
    assert r.outputs[col].collection == [1, 4, 9]


def test_bad_literal_is_rejected_when_added():
    g = inb.Graph()
    with pytest.raises(inb.GraphError, match="scale_factor"):
        g.add("img_scale", scale_factor=0)
