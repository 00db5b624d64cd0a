"""The graph editor wired to a Studio (``studio.editor(g)``), driven as the browser drives it:
queueing with a batch count, node states and output images from the studio's events, model
pickers, catalog images, the workflow library."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import invoke_nb as inb
from invoke_nb.graph import standard
from invoke_nb.studio import Studio
from invoke_nb.widgets.graph_editor import GraphEditor, model_choices

from .test_graph_editor import err, ok, request


class Recorder(GraphEditor):
    """A GraphEditor that keeps what it sends to the browser, buffers included."""

    def send(self, content: Any, buffers: Any = None) -> None:
        self.__dict__.setdefault("outbox", []).append((content, buffers))

    def events(self, name: str) -> list[tuple[dict[str, Any], list[bytes]]]:
        return [
            (c["data"], b or [])
            for c, b in list(self.__dict__.get("outbox", []))
            if c.get("kind") == "event" and c["name"] == name
        ]


def near(a: Any, b: Any, tol: int = 8) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def wait_for(cond: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@pytest.fixture
def studio(tmp_path: Path, tiny_sd1: Path) -> Iterator[Studio]:
    s = Studio(tmp_path / "studio")
    s.models.install(str(tiny_sd1), name="tiny", in_place=True)
    yield s
    s.close()


def tiny_graph(studio: Studio, seed: int = 3) -> inb.Graph:
    rec = studio.models.get("tiny")
    return standard.txt2img(rec, "a red cube", width=64, height=64, steps=2, seed=seed)


def editor_for(studio: Studio, graph: inb.Graph | None = None) -> Recorder:
    return Recorder(graph, studio=studio)


def test_invoke_queues_runs_and_shows_states_and_the_output_image(studio: Studio) -> None:
    ed = editor_for(studio, tiny_graph(studio))
    assert ed.features == ["studio"]
    studio.queue.pause()
    res = ok(ed, "invoke", runs=2)
    assert res["summary"] == "queued 2 runs" and len(res["items"]) == 2
    # invoke returned with nothing run: it queues, it does not wait for the runs
    assert {studio.catalog.queue.get(i).status for i in res["items"]} == {"pending"}
    studio.queue.resume()
    assert set(ed.items) == set(res["items"])
    wait_for(lambda: ed.pending == 0 and all(s == "done" for s in ed.items.values()))
    done = [d for d, _ in ed.events("node_state") if d["state"] in ("done", "cached")]
    assert {"model_loader", "denoise_latents", "l2i"} <= {d["node_id"] for d in done}
    assert [d for d, _ in ed.events("node_state") if d["state"] == "running"]
    images = ed.events("node_image")
    assert images and {d["node_id"] for d, _ in images} == {"l2i"}
    data, (buf,) = images[-1]
    thumb = Image.open(io.BytesIO(buf))
    assert thumb.size == (64, 64) and (data["width"], data["height"]) == (64, 64)
    # the thumbnail is the catalogued image the run saved
    saved = studio.catalog.images.get_pil(data["image_name"]).convert("RGB")
    assert thumb.convert("RGB").tobytes() == saved.tobytes()
    assert len(studio.catalog.queue.list(status=["completed"])) == 2


def test_a_failing_node_is_shown_on_the_node(studio: Studio) -> None:
    g = tiny_graph(studio)
    g.set(
        "model_loader",
        model={"key": "nope", "hash": "x", "name": "gone", "base": "sd-1", "type": "main"},
    )
    ed = editor_for(studio, g)
    ok(ed, "invoke", runs=1)
    wait_for(lambda: ed.pending == 0)
    errors = [d for d, _ in ed.events("node_state") if d["state"] == "error"]
    assert errors and errors[0]["node_id"] == "model_loader"
    assert ed.events("run_error")
    assert list(ed.items.values()) == ["failed"]


def test_invalid_graph_and_bad_batch_count_are_refused(studio: Studio) -> None:
    g = inb.Graph()
    g.add("l2i", id="out")  # latents and vae missing
    ed = editor_for(studio, g)
    e = err(ed, "invoke", runs=1)
    assert "out" in e["message"] and e["node_id"] == "out"
    assert not studio.catalog.queue.list()
    e = err(ed, "invoke", runs=0)
    assert "runs" in e["message"]


def test_events_of_other_queue_items_are_ignored(studio: Studio) -> None:
    ed = editor_for(studio, tiny_graph(studio))
    studio.run(tiny_graph(studio, seed=9), progress=False)
    assert not ed.events("node_state") and not ed.events("node_image")


def test_model_picker_filters_by_node_type(studio: Studio, tiny_vae: Path) -> None:
    studio.models.install(str(tiny_vae), name="tiny-vae", in_place=True)
    ed = editor_for(studio)
    main = ok(ed, "models", node_type="main_model_loader", field="model")
    assert [m["name"] for m in main["models"]] == ["tiny"]
    assert main["models"][0]["type"] == "main" and main["models"][0]["base"] == "sd-1"
    assert ok(ed, "models", node_type="sdxl_model_loader", field="model")["models"] == []
    vae = ok(ed, "models", node_type="vae_loader", field="vae_model")["models"]
    assert [m["name"] for m in vae] == ["tiny-vae"]
    # a model field of an unknown node type offers every model
    assert len(ok(ed, "models", node_type="custom", field="model")["models"]) == 2
    # the picked value is a ModelIdentifierField the graph accepts
    ok(ed, "add_node", type="main_model_loader")
    nid = next(iter(ed.graph.nodes))
    ok(ed, "set_value", node_id=nid, field="model", value=main["models"][0])
    assert ed.graph.nodes[nid].values["model"].key == main["models"][0]["key"]


def test_model_choices_is_a_pure_filter() -> None:
    class R:
        def __init__(self, name: str, base: str, type: str) -> None:
            self.key, self.hash, self.name, self.base, self.type = name, "h", name, base, type

    recs = [
        R("b", "sdxl", "main"),
        R("a", "sd-1", "main"),
        R("l", "sdxl", "lora"),
        R("v", "sd-1", "vae"),
        R("k", "sd-1", "lora"),
    ]
    assert [m["name"] for m in model_choices(recs, "main_model_loader", "model")] == ["a"]
    assert [m["name"] for m in model_choices(recs, "sdxl_model_loader", "model")] == ["b"]
    assert [m["name"] for m in model_choices(recs, "sdxl_lora_loader", "lora")] == ["l"]
    # the fields' own ui_model_* hints decide, as InvokeAI's: its SD1.5 LoRA loader takes sd-1
    assert [m["name"] for m in model_choices(recs, "lora_loader", "lora")] == ["k"]
    assert [m["name"] for m in model_choices(recs, "lora_selector", "lora")] == ["k", "l"]
    assert [m["name"] for m in model_choices(recs, "vae_loader", "vae_model")] == ["v"]
    assert len(model_choices(recs, "anything", "model")) == 5


def test_recent_images_and_image_fields(studio: Studio) -> None:
    names = []
    for colour in ("red", "blue"):
        rec = studio.catalog.images.save(Image.new("RGB", (40, 30), colour))
        names.append(rec.image_name)
    ed = editor_for(studio)
    answer = ed.dispatch(
        {"kind": "request", "id": 1, "method": "recent_images", "params": {"limit": 5}}
    )
    assert answer is not None
    reply, buffers = answer
    assert [r["image_name"] for r in reply["result"]["images"]] == names[::-1]
    first = Image.open(io.BytesIO(buffers[0])).convert("RGB")
    assert first.size == (40, 30)
    assert near(first.getpixel((5, 5)), (0, 0, 255))  # catalog thumbnails are lossy WebP
    # an image field takes a catalog image by name
    ok(ed, "add_node", type="i2l")
    nid = next(iter(ed.graph.nodes))
    ok(ed, "set_value", node_id=nid, field="image", value={"image_name": names[0]})
    assert ed.graph.nodes[nid].values["image"].image_name == names[0]
    reply, buffers = ed.dispatch(
        {
            "kind": "request",
            "id": 2,
            "method": "image_thumbnail",
            "params": {"image_name": names[0]},
        }
    )
    assert reply["ok"] and near(
        Image.open(io.BytesIO(buffers[0])).getpixel((1, 1))[:3], (255, 0, 0)
    )
    bad = request(ed, "image_thumbnail", image_name="missing.png")
    assert not bad["ok"] and "missing.png" in bad["error"]["message"]


def test_workflow_library_save_list_open_update_delete(studio: Studio) -> None:
    ed = editor_for(studio, tiny_graph(studio))
    ok(ed, "move", positions={"noise": {"x": 10, "y": 20}})
    wid = ok(ed, "library_save", name="tiny txt2img")["workflow_id"]
    assert ed.workflow_id == wid
    listed = ok(ed, "library_list")["workflows"]
    assert [(w["workflow_id"], w["name"], w["nodes"]) for w in listed] == [
        (wid, "tiny txt2img", len(ed.graph.nodes))
    ]
    ok(ed, "library_save", name="tiny txt2img v2", workflow_id=wid)
    assert studio.catalog.workflows.get(wid).name == "tiny txt2img v2"
    assert len(studio.catalog.workflows.list()) == 1

    other = editor_for(studio)
    opened = ok(other, "library_open", workflow_id=wid)
    assert opened["nodes"] == len(ed.graph.nodes)
    assert set(other.graph.nodes) == set(ed.graph.nodes)
    assert other.positions["noise"] == {"x": 10, "y": 20}
    assert other.workflow_id == wid
    assert studio.catalog.workflows.get(wid).opened_at is not None

    e = err(other, "library_open", workflow_id="nope")
    assert "nope" in e["message"]
    assert set(other.graph.nodes) == set(ed.graph.nodes)  # nothing lost
    ok(other, "library_delete", workflow_id=wid)
    assert other.workflow_id is None and studio.catalog.workflows.list() == []


def test_without_a_studio_the_studio_requests_say_so() -> None:
    ed = Recorder(inb.Graph())
    assert ed.features == []
    for method, params in (
        ("models", {"node_type": "main_model_loader", "field": "model"}),
        ("library_list", {}),
        ("recent_images", {}),
    ):
        e = err(ed, method, **params)
        assert "studio.editor" in e["message"], e


def test_in_kernel_runs_show_output_images_too() -> None:
    g = inb.Graph()
    g.add("blank_image", id="b", width=16, height=8, color={"r": 0, "g": 255, "b": 0, "a": 255})
    ed = Recorder(g)
    ok(ed, "invoke")
    ((data, (buf,)),) = ed.events("node_image")
    assert data["node_id"] == "b"
    img = Image.open(io.BytesIO(buf)).convert("RGB")
    assert img.size == (16, 8) and img.getpixel((3, 3)) == (0, 255, 0)


def test_studio_editor_method(studio: Studio) -> None:
    g = tiny_graph(studio)
    ed = studio.editor(g)
    assert isinstance(ed, GraphEditor) and ed.graph is g and ed.studio is studio
    ed.close()
