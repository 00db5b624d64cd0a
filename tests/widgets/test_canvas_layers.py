"""The canvas's control layers, regional guidance layers and reference images, driven as the
browser drives them, on tiny real models: what they become for the studio
(``control=``/``regions=``/``ip_adapter=``) and the graph that comes out, compared with the
graph InvokeAI 6.11.1's canvas builds for the same layers
(tests/fixtures/invokeai/canvas-layers-sd1.json)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from invoke_nb.studio import Studio
from invoke_nb.testing.graph_shape import layer_shape

from .test_canvas import Recorder, call, ok, png, wait_idle

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "invokeai" / "canvas-layers-sd1.json"
BOX = {"x": 0, "y": 0, "width": 64, "height": 64}


@pytest.fixture(scope="session")
def canvas_control_models(tiny_models_dir: Path, tiny_sd1: Path) -> dict[str, Path]:
    """A tiny ControlNet, IP-Adapter and its CLIP vision encoder for the tiny SD1."""
    from invoke_nb.testing import tiny_control as tc

    d = tiny_models_dir / "canvas-control"
    d.mkdir(exist_ok=True)
    return {
        "tiny-cn": tc.make_controlnet(d / "cn", tiny_sd1, seed=31),
        "tiny-ip": tc.make_ip_adapter(d / "ip", tiny_sd1, "plain"),
        "ip_adapter_sd_image_encoder": tc.make_clip_vision(d / "ip_adapter_sd_image_encoder"),
    }


@pytest.fixture
def lstudio(
    tmp_path: Path, tiny_sd1: Path, canvas_control_models: dict[str, Path]
) -> Iterator[Studio]:
    s = Studio(tmp_path / "studio")
    s.models.install(str(tiny_sd1), name="tiny", in_place=True)
    for name, path in canvas_control_models.items():
        s.models.install(str(path), name=name, in_place=True)
    yield s
    s.close()


def edges_image() -> Image.Image:
    """A 48 px edge-map-like picture: white strokes on black, opaque."""
    arr = np.zeros((48, 48, 3), np.uint8)
    arr[4:44, 10:14] = 255
    arr[20:24, 2:46] = 255
    return Image.fromarray(arr)


def region_mask() -> Image.Image:
    m = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(m).rectangle((32, 8, 59, 55), fill=(255, 255, 255, 255))
    return m


def reference() -> Image.Image:
    rng = np.random.default_rng(4)
    return Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8))


def draw_layers(cv: Recorder) -> dict[str, str]:
    """What a user does in the browser: a control layer from a file, a region painted with
    its prompts and a reference image, and a global reference image."""
    lid = ok(cv, "add_file", [png(edges_image())], name="edges.png", x=24, y=24, kind="control")[
        "id"
    ]
    ids = {
        "layer": lid,
        "global": ok(cv, "add_reference", [png(reference())], name="style.png")["id"],
    }
    ok(cv, "sync", [png(region_mask())], **params(ids))  # the region painted: now the kernel has it
    reg = ok(cv, "add_reference", [png(reference().rotate(90))], name="ball.png", region="r1")
    ids["regional"] = reg["id"]
    ok(cv, "sync", [png(region_mask())], **params(ids))
    return ids


def params(ids: dict[str, str], **over: object) -> dict[str, object]:
    """The sync the browser sends for the layers of :func:`draw_layers`."""
    p: dict[str, object] = dict(
        bbox=BOX,
        layers=[
            {
                "id": ids["layer"], "x": 24, "y": 24, "kind": "control",
                "control": {"model": "tiny-cn", "weight": 0.8, "begin": 0.1, "end": 0.9, "mode": "more_control"},
            }
        ],
        regions=[{"id": "r1", "name": "ball", "prompt": "a red ball", "negative": "blurry", "mask_empty": False}],
        references=[
            {"id": ids["global"], "model": "tiny-ip", "weight": 0.5},
            {"id": ids.get("regional"), "model": "tiny-ip", "weight": 0.6, "region": "r1"},
        ][: len(ids) - 1],
    )  # fmt: skip
    p.update(over)
    return p


def sync(cv: Recorder, ids: dict[str, str], **over: object) -> dict[str, object]:
    return call(cv, "sync", [png(region_mask())], **params(ids, **over))


def test_layers_become_the_studio_arguments(lstudio: Studio) -> None:
    cv = Recorder(lstudio, width=64, height=64)
    add = call(cv, "add_reference", [png(reference())], region="nope")
    assert not add["ok"] and "no region 'nope'" in add["error"]["message"]
    ids = draw_layers(cv)
    (layer,) = cv.layers
    assert layer.kind == "control" and layer.control.mode == "more_control"
    assert cv.composite.getextrema()[3] == (0, 0), "a control layer is not part of the picture"
    assert cv.mode() == "txt2img"

    args = cv.layer_arguments()
    (control,) = args["control"]
    assert {k: v for k, v in control.items() if k != "image"} == {
        "model": "tiny-cn", "weight": 0.8, "begin": 0.1, "end": 0.9,
        "mode": "more_control", "resize_mode": "just_resize",
    }  # fmt: skip
    # the layer rasterized over the box on black: its pixels from (24, 24), black elsewhere
    img = np.asarray(control["image"])
    assert img.shape == (64, 64, 3)
    assert (img[24:, 24:] == np.asarray(edges_image())[:40, :40]).all()
    assert img[:24].max() == 0 and img[:, :24].max() == 0
    (glob,) = args["ip_adapter"]
    assert glob["model"] == "tiny-ip" and glob["weight"] == 0.5 and glob["method"] == "full"
    assert np.array_equal(np.asarray(glob["image"]), np.asarray(reference()))
    (region,) = args["regions"]
    assert region["prompt"] == "a red ball" and region["negative"] == "blurry"
    assert np.array_equal(np.asarray(region["mask"]) > 0, np.asarray(region_mask())[..., 3] > 0)
    (rip,) = region["ip_adapter"]
    assert rip["weight"] == 0.6
    assert np.array_equal(np.asarray(rip["image"]), np.asarray(reference().rotate(90)))

    # a bad sync changes nothing
    bad = sync(cv, ids, references=[{"id": ids["regional"], "model": "tiny-ip", "region": "r9"}])
    assert not bad["ok"] and "r9" not in {r.id for r in cv.regions}
    bad = call(cv, "sync", [], bbox=BOX, layers=[], regions=[{"id": "r1", "mask_empty": False}])
    assert not bad["ok"] and "1 mask PNG buffer" in bad["error"]["message"]
    assert len(cv.layers) == 1 and len(cv.references) == 2 and cv.regions[0].prompt == "a red ball"


def test_a_layer_missing_its_model_or_prompt_is_named(lstudio: Studio) -> None:
    cv = Recorder(lstudio, width=64, height=64)
    ids = draw_layers(cv)
    layers = [{"id": ids["layer"], "x": 0, "y": 0, "kind": "control", "control": {"model": None}}]
    assert sync(cv, ids, layers=layers)["ok"]
    with pytest.raises(ValueError, match=r"control layer 'edges\.png' has no control model"):
        cv.generate("x", steps=2, model="tiny")
    layers[0]["control"] = {"model": "tiny-cn"}
    regions = [{"id": "r1", "name": "ball", "mask_empty": False}]
    refs = [{"id": ids["global"], "model": "tiny-ip"}]  # the region's reference deleted
    assert sync(cv, ids, layers=layers, regions=regions, references=refs)["ok"]
    assert len(cv.references) == 1
    ok(cv, "generate", prompt="x", steps=2, model="tiny")
    wait_idle(cv)
    ((err, _),) = cv.events("generation_error")
    assert "region 'ball' has no prompt, negative prompt or reference image" in err["message"]
    assert cv.staged == []


def test_the_canvas_builds_invokeais_canvas_graph_and_an_image(lstudio: Studio) -> None:
    cv = Recorder(lstudio, width=64, height=64)
    draw_layers(cv)
    plain = lstudio.txt2img(
        "a cat", model="tiny", width=64, height=64, steps=2, seed=3, progress=False
    )
    img = cv.generate("a cat", model="tiny", steps=2, seed=3)
    assert cv.last_mode == "txt2img" and img.pil.size == (64, 64)
    diff = np.abs(np.asarray(img.pil).astype(int) - np.asarray(plain.pil).astype(int))
    assert diff.max() > 10, "the layers change the picture"
    want = layer_shape(json.loads(FIXTURE.read_text()))
    got = layer_shape(img.graph.to_dict())
    assert got == want


def test_layers_from_python_reach_the_browser_and_come_back_with_init(lstudio: Studio) -> None:
    cv = Recorder(lstudio, width=64, height=64)
    layer = cv.add_layer(edges_image(), kind="control", control=dict(model="tiny-cn", weight=0.5))
    mask = region_mask()
    region = cv.add_region(mask, prompt="a red ball")
    ref = cv.add_reference(reference(), model="tiny-ip", weight=0.4, region=region.id)
    with pytest.raises(ValueError, match="weight"):
        cv.add_reference(reference(), weight=-3)
    with pytest.raises(ValueError, match="region mask is"):
        cv.add_region(Image.new("L", (8, 8)))
    ((added, bufs),) = cv.events("region_added")
    assert added["prompt"] == "a red ball" and added["rect"] == BOX
    sent = Image.open(io.BytesIO(bufs[0]))
    assert np.array_equal(np.asarray(sent) > 0, np.asarray(mask)[..., 3] > 0)
    ((ref_added, _),) = cv.events("reference_added")
    assert ref_added["region"] == region.id and ref_added["weight"] == 0.4
    (r,) = cv.layer_arguments()["regions"]
    assert r["prompt"] == "a red ball" and r["ip_adapter"][0]["weight"] == 0.4

    # a widget shown again gets every layer back: layer, region mask, reference image
    reply = call(cv, "init")
    init = reply["result"]
    assert [la["kind"] for la in init["layers"]] == ["control"]
    assert init["layers"][0]["control"]["weight"] == 0.5
    assert [x["id"] for x in init["regions"]] == [region.id]
    assert [x["id"] for x in init["references"]] == [ref.id]
    assert len(reply["buffers"]) == 3  # layer, region mask, reference

    # the browser deletes the reference, then undoes that: the kernel still has its pixels
    rg = {"id": region.id, "name": region.name, "prompt": "a red ball", "mask_empty": False}
    la = {"id": layer.id, "x": 0, "y": 0, "kind": "control", "control": {"model": "tiny-cn"}}
    ok(cv, "sync", [png(mask)], bbox=BOX, layers=[la], regions=[rg], references=[])
    assert cv.references == []
    back = {"id": ref.id, "model": "tiny-ip", "weight": 0.4, "region": region.id}
    ok(cv, "sync", [png(mask)], bbox=BOX, layers=[la], regions=[rg], references=[back])
    assert [x.id for x in cv.references] == [ref.id]
