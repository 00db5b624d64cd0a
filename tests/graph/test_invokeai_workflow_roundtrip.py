"""InvokeAI's default workflows survive export in InvokeAI's format and import back.

The export must be a file InvokeAI accepts: its backend workflow model (``name``,
``author``, ... strings, ``exposedFields``, ``meta`` with a semver version and a user/default
category, lists of node and edge objects), and every node's inputs named and typed as
InvokeAI 6.11.1's own node schema says (checked against the committed schema dump). The real
model is checked by ``benchmarks/invokeai_workflow_roundtrip.py`` in InvokeAI's venv.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import pytest

from invoke_nb.graph import errors as E
from invoke_nb.graph.workflow import Workflow, read_workflow
from shared_paths import INVOKEAI_WORKFLOWS

SCHEMAS = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "invokeai" / "node-schemas-6.11.1.json").read_text()
)["nodes"]
WORKFLOWS = sorted(INVOKEAI_WORKFLOWS.glob("*.json"))
_SEMVER = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
# InvokeAI defines these two in its graph module, not among the invocations the dump reads
_GRAPH_NODES = {"iterate", "collect"}
_STR_KEYS = ("name", "author", "description", "version", "contact", "tags", "notes")


def _import(path: Path) -> Workflow:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return read_workflow(path)
        except E.UnsupportedNodeTypesError as e:
            pytest.skip(f"needs node types not registered yet: {', '.join(e.missing)}")


def check_invokeai_workflow(data: dict[str, Any]) -> None:
    """What InvokeAI 6.11.1's ``WorkflowWithoutID`` requires, plus its node schemas."""
    for key in _STR_KEYS:
        assert isinstance(data.get(key), str), f"{key!r} must be a string"
    assert isinstance(data["exposedFields"], list)
    for x in data["exposedFields"]:
        assert isinstance(x["nodeId"], str) and isinstance(x["fieldName"], str)
    assert _SEMVER.match(data["meta"]["version"]) and data["meta"]["category"] in (
        "user",
        "default",
    )
    assert all(isinstance(n, dict) for n in data["nodes"])
    assert all(isinstance(e, dict) for e in data["edges"])
    json.dumps(data, allow_nan=False)  # JSON values only
    for n in data["nodes"]:
        d = n["data"]
        if d["type"] in _GRAPH_NODES:
            continue
        schema = SCHEMAS[d["type"]]
        # InvokeAI's editor updates a node to its template when the major versions agree
        same_major = d["version"].split(".")[0] == schema["version"].split(".")[0]
        assert same_major, f"{d['type']}: version {d['version']} vs {schema['version']}"
        for name, entry in d["inputs"].items():
            assert name in schema["inputs"], f"{d['type']}: InvokeAI has no input {name!r}"
            assert entry["name"] == name
    for e in data["edges"]:
        src = next(n for n in data["nodes"] if n["id"] == e["source"])["data"]["type"]
        dst = next(n for n in data["nodes"] if n["id"] == e["target"])["data"]["type"]
        if {src, dst} & _GRAPH_NODES:
            continue
        assert e["sourceHandle"] in SCHEMAS[src]["outputs"], (src, e["sourceHandle"])
        assert e["targetHandle"] in SCHEMAS[dst]["inputs"], (dst, e["targetHandle"])


def _effective(wf: Workflow) -> dict[str, Any]:
    """Node types, flags and every input value (defaults filled in), and the edges."""
    nodes = {}
    for nid, spec in wf.graph.nodes.items():
        values = {}
        for name, info in spec.cls.input_fields().items():
            if name in spec.values:
                values[name] = spec.values[name]
            elif not info.is_required():
                values[name] = info.get_default(call_default_factory=True)
        nodes[nid] = (spec.type, spec.is_intermediate, spec.use_cache, values)
    edges = sorted(json.dumps(e.to_json(), sort_keys=True) for e in wf.graph.edges)
    return {"nodes": nodes, "edges": edges}


def test_all_fourteen_default_workflows_are_here() -> None:
    assert len(WORKFLOWS) == 14, f"expected InvokeAI 6.11's 14 default workflows in {WORKFLOWS}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_default_workflow_round_trips_in_invokeai_format(path: Path, tmp_path: Path) -> None:
    wf = _import(path)
    out = wf.save(tmp_path / "export.json", invokeai=True)
    data = json.loads(out.read_text())
    check_invokeai_workflow(data)
    # required inputs fed by edges travel without a value, as InvokeAI writes them
    original = json.loads(path.read_text())
    assert len(data["nodes"]) == sum(n["type"] == "invocation" for n in original["nodes"])
    back = read_workflow(out)
    assert _effective(back) == _effective(wf)
    assert back.layout == wf.layout and back.labels == wf.labels
    assert back.exposed == wf.exposed
    assert back.meta["name"] == original["name"]


def test_required_input_without_value_is_exported_without_one() -> None:
    import invoke_nb as inb

    g = inb.Graph()
    g.add("img_resize", id="r", width=64)  # ``image`` is required and has no value
    data = Workflow(graph=g).to_invokeai()
    inputs = data["nodes"][0]["data"]["inputs"]
    assert inputs["image"] == {"name": "image", "label": ""}
    assert inputs["width"]["value"] == 64
    json.dumps(data)
