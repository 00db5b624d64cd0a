"""JSON round trips, our workflow format, and InvokeAI workflow import/export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

import invoke_nb as inb
from invoke_nb.graph import errors as E
from invoke_nb.graph.legacy_ids import LEGACY_IDS
from invoke_nb.graph.workflow import Workflow, read_workflow
from shared_paths import INVOKEAI_WORKFLOWS

FIXTURES = INVOKEAI_WORKFLOWS
WORKFLOWS = sorted(FIXTURES.glob("*.json"))


def _sample() -> inb.Graph:
    g = inb.Graph()
    a = g.add("integer", id="a", value=4)
    b = g.add("float", id="b", value=0.5)
    m = g.add("float_math", id="m", operation="MUL")
    g.connect(a, "value", m, "a")
    g.connect(b, "value", m, "b")
    s = g.add("string_join", id="j", string_left="x=", is_intermediate=True, use_cache=False)
    g.connect(m, "value", s, "string_right")
    return g


def test_json_round_trip_preserves_everything() -> None:
    g = _sample()
    text = g.to_json()
    g2 = inb.Graph.from_json(text)
    assert g2.to_dict() == g.to_dict()
    assert g2.nodes["j"].is_intermediate and not g2.nodes["j"].use_cache
    assert inb.run(g2).outputs["j"].value == "x=2.0"
    assert json.loads(text)["nodes"]["m"]["operation"] == "MUL"
    assert g2.content_hash() == g.content_hash()


def test_image_literal_round_trips_by_content_name() -> None:
    img = Image.new("RGB", (8, 8), (10, 20, 30))
    g = inb.Graph()
    n = g.add("image", image=img)
    g2 = inb.Graph.from_json(g.to_json())
    assert g2.nodes[n].values["image"].image_name.startswith("mem-")
    out = inb.run(g2).image(n)
    assert out.getpixel((3, 3)) == (10, 20, 30)


@pytest.mark.parametrize(
    "bad, exc",
    [
        ("not json", E.WorkflowError),
        ("[]", E.WorkflowError),
        ('{"nodes": {"a": {"id": "a", "type": "nope"}}, "edges": []}', E.UnsupportedNodeTypesError),
        ('{"nodes": {"a": 3}, "edges": []}', E.WorkflowError),
        ('{"nodes": {"a": {"id": "a", "type": "add"}}, "edges": [{"source": 1}]}', E.WorkflowError),
        ('{"nodes": {"a": {"id": "a", "type": "add", "a": "x"}}, "edges": []}', E.FieldValueError),
    ],
)
def test_bad_graph_json(bad: str, exc: type) -> None:
    with pytest.raises(exc):
        inb.Graph.from_json(bad)


def test_our_workflow_format_round_trip(tmp_path: Path) -> None:
    g = _sample()
    wf = Workflow(
        graph=g,
        meta={"name": "sample", "author": "me", "tags": "math"},
        layout={"a": {"x": 1.0, "y": 2.0}},
        labels={"m": "Multiply"},
        exposed=[{"node_id": "a", "field": "value"}],
    )
    p = wf.save(tmp_path / "wf.json")
    g2 = inb.load_workflow(p)
    assert g2.to_dict()["nodes"] == g.to_dict()["nodes"]
    assert g2.workflow.layout == {"a": {"x": 1.0, "y": 2.0}}
    assert g2.workflow.labels == {"m": "Multiply"}
    assert g2.workflow.exposed == [{"node_id": "a", "field": "value"}]
    assert g2.workflow.meta["name"] == "sample"


def test_export_to_invokeai_and_back(tmp_path: Path) -> None:
    g = _sample()
    wf = Workflow(graph=g, meta={"name": "x"}, layout={"a": {"x": 5.0, "y": 6.0}})
    data = wf.to_invokeai()
    assert data["meta"]["version"] == "3.0.0"
    node_m = next(n for n in data["nodes"] if n["id"] == "m")
    assert node_m["type"] == "invocation" and node_m["data"]["type"] == "float_math"
    assert node_m["data"]["inputs"]["operation"]["value"] == "MUL"
    assert {e["sourceHandle"] for e in data["edges"]} == {"value"}
    back = read_workflow(data)
    assert back.source_format == "invokeai"
    for nid, spec in g.nodes.items():
        got = back.graph.nodes[nid]
        assert (got.type, got.is_intermediate, got.use_cache) == (
            spec.type,
            spec.is_intermediate,
            spec.use_cache,
        )
        assert spec.values.items() <= got.values.items()
        for k in got.values.keys() - spec.values.keys():  # unset fields travel as defaults
            assert got.values[k] == spec.cls.model_fields[k].get_default(call_default_factory=True)
    assert back.graph.edges == g.edges
    assert back.layout["a"] == {"x": 5.0, "y": 6.0}
    assert inb.run(back.graph).outputs["j"].value == "x=2.0"


def test_missing_file_and_bad_versions(tmp_path: Path) -> None:
    with pytest.raises(E.WorkflowError, match="not found"):
        inb.load_workflow(tmp_path / "nope.json")
    with pytest.raises(E.WorkflowError, match="version"):
        inb.load_workflow({"format": "invoke-nb/workflow", "version": 99})
    with pytest.raises(E.WorkflowError, match="schema version"):
        inb.load_workflow({"meta": {"version": "9.0.0"}, "nodes": [], "edges": []})


def _invokeai_min(version: str = "3.0.0") -> dict:
    return {
        "name": "mini",
        "meta": {"version": version, "category": "user"},
        "exposedFields": [{"nodeId": "i1", "fieldName": "value"}],
        "nodes": [
            {
                "id": "i1",
                "type": "invocation",
                "data": {
                    "id": "i1",
                    "type": "integer",
                    "inputs": {"value": {"name": "value", "value": 20}},
                },
                "position": {"x": 0, "y": 0},
            },
            {
                "id": "i2",
                "type": "invocation",
                "data": {
                    "id": "i2",
                    "type": "add",
                    "inputs": {"a": {"name": "a"}, "b": {"name": "b", "value": 22}},
                    "isIntermediate": True,
                },
            },
            {"id": "note", "type": "notes", "data": {"id": "note", "notes": "hello"}},
        ],
        "edges": [
            {
                "id": "e1",
                "type": "default",
                "source": "i1",
                "target": "i2",
                "sourceHandle": "value",
                "targetHandle": "a",
            },
            {"id": "e2", "type": "collapsed", "source": "i1", "target": "i2"},
        ],
    }


@pytest.mark.parametrize("version", ["1.0.0", "2.0.0", "3.0.0", "4.0.0"])
def test_invokeai_import_versions(version: str) -> None:
    g = inb.load_workflow(_invokeai_min(version))
    assert set(g.nodes) == {"i1", "i2"}
    assert g.nodes["i2"].is_intermediate
    assert inb.run(g).outputs["i2"].value == 42
    assert g.workflow.exposed == [{"node_id": "i1", "field": "value"}]


def test_invokeai_unsupported_types_listed() -> None:
    data = _invokeai_min()
    data["nodes"][0]["data"]["type"] = "fancy_thing"
    data["nodes"][1]["data"]["type"] = "other_thing"
    with pytest.raises(E.UnsupportedNodeTypesError) as ei:
        inb.load_workflow(data)
    assert ei.value.missing == ["fancy_thing", "other_thing"]
    assert "fancy_thing, other_thing" in str(ei.value)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_real_invokeai_workflows(path: Path) -> None:
    """Every shipped InvokeAI workflow imports with every node and edge, or names the
    node types that are still missing here."""
    data = json.loads(path.read_text())
    types = {n["data"]["type"] for n in data["nodes"] if n["type"] == "invocation"}
    # InvokeAI 3.x-5.x processor ids are read as their successors
    types = {LEGACY_IDS[t].type if t in LEGACY_IDS else t for t in types}
    known = set(inb.nodes.node_types())
    missing = sorted(types - known)
    if missing:
        with pytest.raises(E.UnsupportedNodeTypesError) as ei:
            inb.load_workflow(path)
        assert ei.value.missing == missing
        return
    g = inb.load_workflow(path)
    invocations = [n for n in data["nodes"] if n["type"] == "invocation"]
    assert len(g.nodes) == len(invocations)
    real_edges = [e for e in data["edges"] if e.get("type") != "collapsed"]
    # a connection into an old processor's size field has nowhere to go in its successor
    old_ids = {n["id"]: n["data"]["type"] for n in data["nodes"] if n["type"] == "invocation"}
    into_dropped = [
        e
        for e in real_edges
        if old_ids.get(e["target"]) in LEGACY_IDS
        and e.get("targetHandle") in LEGACY_IDS[old_ids[e["target"]]].dropped
    ]
    assert len(g.edges) == len(real_edges) - len(into_dropped)
    assert g.workflow.meta["name"] == data["name"]


def test_fixtures_present() -> None:
    assert len(WORKFLOWS) == 14, f"expected the 14 InvokeAI workflows in {FIXTURES}"


def test_export_leaves_out_our_fields_at_default() -> None:
    g = inb.Graph()
    d = g.add("denoise_latents", id="d", steps=5)
    data = Workflow(graph=g).to_invokeai()
    inputs = data["nodes"][0]["data"]["inputs"]
    assert "seeding" not in inputs and inputs["steps"]["value"] == 5
    g.set(d, seeding="diffusers")
    assert (
        Workflow(graph=g).to_invokeai()["nodes"][0]["data"]["inputs"]["seeding"]["value"]
        == "diffusers"
    )


def test_invokeai_unknown_input_is_dropped_with_a_warning() -> None:
    from invoke_nb.graph.workflow import WorkflowWarning

    data = _invokeai_min()
    data["nodes"][1]["data"]["inputs"]["future_knob"] = {"name": "future_knob", "value": 3}
    with pytest.warns(WorkflowWarning, match="'future_knob'"):
        g = inb.load_workflow(data)
    assert inb.run(g).outputs["i2"].value == 42
    data["edges"][0]["targetHandle"] = "future_knob"
    with pytest.raises(E.UnknownFieldError, match="future_knob"):
        inb.load_workflow(data)
