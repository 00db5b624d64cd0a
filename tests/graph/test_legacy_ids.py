"""InvokeAI 3.x-5.x ``*_image_processor`` ids are read as their 6.x successors, with their
fields, from workflow files and PNG graphs, and say so with a WorkflowWarning."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from PIL import Image

import invoke_nb as inb
from invoke_nb.graph.legacy_ids import LEGACY_IDS, upgrade_graph, upgrade_workflow
from invoke_nb.graph.workflow import WorkflowWarning
from shared_paths import INVOKEAI_WORKFLOWS

ESRGAN_CANNY = INVOKEAI_WORKFLOWS / "ESRGAN Upscaling with Canny ControlNet.json"
CANNY_ID = "1d887701-df21-4966-ae6e-a7d82307d7bd"


def _canny_workflow() -> dict:
    """The canny node of InvokeAI's default workflow, alone, with its thresholds changed."""
    data = json.loads(ESRGAN_CANNY.read_text())
    node = next(n for n in data["nodes"] if n["id"] == CANNY_ID)
    node["data"]["inputs"]["low_threshold"]["value"] = 40
    return {**data, "nodes": [node], "edges": [], "exposedFields": []}


def test_default_workflow_canny_node_becomes_canny_edge_detection() -> None:
    data = json.loads(ESRGAN_CANNY.read_text())
    before = json.dumps(data)
    with pytest.warns(WorkflowWarning, match="canny_image_processor.*canny_edge_detection"):
        up = upgrade_workflow(data)
    assert json.dumps(data) == before  # the input is not modified
    node = next(n for n in up["nodes"] if n["id"] == CANNY_ID)["data"]
    assert node["type"] == "canny_edge_detection"
    assert {k: v.get("value") for k, v in node["inputs"].items()} == {
        "board": None,
        "metadata": None,
        "image": None,
        "low_threshold": 100,
        "high_threshold": 200,
    }
    # edges into and out of the node are kept
    assert any(e["target"] == CANNY_ID and e["targetHandle"] == "image" for e in up["edges"])
    assert any(e["source"] == CANNY_ID for e in up["edges"])


def test_a_legacy_workflow_loads_and_runs() -> None:
    with pytest.warns(WorkflowWarning, match="dropped detect_resolution, image_resolution"):
        g = inb.load_workflow(_canny_workflow())
    assert g.node(CANNY_ID).type == "canny_edge_detection"
    img = Image.new("RGB", (32, 32))
    img.paste((255, 255, 255), (8, 8, 24, 24))
    g.set(CANNY_ID, image=img)
    r = inb.run(g)
    edges = np.asarray(r.value(r.outputs[CANNY_ID].image))
    assert edges.shape == (32, 32, 3) and edges[..., 0].max() == 255 and edges[0, 0, 0] == 0


def test_png_graph_renames_fields_and_edges() -> None:
    graph = {
        "id": "g",
        "nodes": {
            "src": {"id": "src", "type": "integer", "value": 8},
            "cs": {
                "id": "cs",
                "type": "content_shuffle_image_processor",
                "f": 16,
                "h": 512,
                "w": 512,
                "detect_resolution": 512,
            },
            "cm": {"id": "cm", "type": "color_map_image_processor", "color_map_tile_size": 4},
        },
        "edges": [
            {
                "source": {"node_id": "src", "field": "value"},
                "destination": {"node_id": "cm", "field": "color_map_tile_size"},
            }
        ],
    }
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        g = inb.Graph.from_dict(graph)
    texts = [str(w.message) for w in seen if issubclass(w.category, WorkflowWarning)]
    assert len(texts) == 2 and any("f->scale_factor" in t for t in texts)
    assert g.node("cs").type == "content_shuffle" and g.node("cs").values == {"scale_factor": 16}
    assert g.node("cm").type == "color_map"
    assert [(e.destination.node_id, e.destination.field) for e in g.edges] == [("cm", "tile_size")]


def test_mlsd_pidi_and_depth_map_their_fields() -> None:
    graph = {
        "nodes": [
            {"id": "m", "type": "mlsd_image_processor", "thr_v": 0.2, "thr_d": 0.3},
            {"id": "p", "type": "pidi_image_processor", "safe": True, "scribble": True},
            {"id": "d", "type": "midas_depth_image_processor", "a_mult": 2.0},
            {"id": "x", "type": "integer", "value": 1},
        ],
        "edges": [],
    }
    with pytest.warns(WorkflowWarning, match="Depth Anything"):
        up = upgrade_graph(graph)
    nodes = {n["id"]: n for n in up["nodes"]}
    assert nodes["m"] == {
        "id": "m",
        "type": "mlsd_detection",
        "score_threshold": 0.2,
        "distance_threshold": 0.3,
    }
    assert nodes["p"] == {
        "id": "p",
        "type": "pidi_edge_detection",
        "quantize_edges": True,
        "scribble": True,
    }
    assert nodes["d"] == {"id": "d", "type": "depth_anything_depth_estimation"}
    assert nodes["x"] == graph["nodes"][3]  # others untouched
    assert upgrade_graph({"nodes": [graph["nodes"][3]], "edges": []})["nodes"][0]["type"] == (
        "integer"
    )


def test_every_successor_is_a_node_type_of_invokeai_6_11() -> None:
    from pathlib import Path

    fix = Path(__file__).parents[1] / "fixtures" / "invokeai" / "node-schemas-6.11.1.json"
    schemas = json.loads(fix.read_text())["nodes"]

    for old, succ in LEGACY_IDS.items():
        assert succ.type in schemas, old
        assert set(succ.renamed.values()) <= set(schemas[succ.type]["inputs"]), old
