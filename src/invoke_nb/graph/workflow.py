"""Workflow files: our own JSON format, and InvokeAI's (schema 1.x to 4.x) both ways.

A workflow is a graph plus what a person sees: node positions, labels, exposed fields and
metadata (name, author, tags...). Ours is a small wrapper around the graph JSON::

    {"format": "invoke-nb/workflow", "version": 1, "meta": {...},
     "graph": {...Graph.to_dict()...}, "layout": {node_id: {"x", "y"}},
     "labels": {node_id: label}, "exposed": [{"node_id", "field"}]}

InvokeAI's workflow files keep nodes as editor nodes (``type: "invocation"`` with ``data``
holding the node type, inputs with values, flags) and edges by handles; notes nodes and
collapsed edges are editor-only and are skipped on import.
"""

from __future__ import annotations

import json
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from invoke_nb.graph.errors import GraphError, UnsupportedNodeTypesError, WorkflowError
from invoke_nb.graph.legacy_ids import upgrade_workflow
from invoke_nb.graph.model import Graph, dump_value
from invoke_nb.nodes.base import Input, field_extra, get_node_class, input_mode

__all__ = ["FORMAT", "Workflow", "WorkflowWarning", "load_workflow"]

FORMAT = "invoke-nb/workflow"
INVOKEAI_SCHEMA_VERSION = "3.0.0"
_META_KEYS = ("name", "author", "description", "version", "contact", "tags", "notes")


class WorkflowWarning(UserWarning):
    """Something in a workflow file was left out on import (named in the message)."""


@dataclass
class Workflow:
    """A graph with its layout, labels, exposed fields and metadata."""

    graph: Graph
    meta: dict[str, Any] = field(default_factory=dict)
    layout: dict[str, dict[str, float]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    exposed: list[dict[str, str]] = field(default_factory=list)
    source_format: str = FORMAT

    # -- our format ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Our workflow JSON."""
        return {
            "format": FORMAT,
            "version": 1,
            "meta": self.meta,
            "graph": self.graph.to_dict(),
            "layout": {k: v for k, v in self.layout.items() if k in self.graph.nodes},
            "labels": {k: v for k, v in self.labels.items() if k in self.graph.nodes},
            "exposed": [x for x in self.exposed if x.get("node_id") in self.graph.nodes],
        }

    def save(self, path: str | Path, *, invokeai: bool = False) -> Path:
        """Write the workflow as JSON (ours, or InvokeAI's with ``invokeai=True``)."""
        p = Path(path).expanduser()
        data = self.to_invokeai() if invokeai else self.to_dict()
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(p)
        return p

    # -- InvokeAI's format ----------------------------------------------------------------
    def to_invokeai(self) -> dict[str, Any]:
        """InvokeAI workflow JSON (schema 3.0.0) that InvokeAI's editor opens."""
        g = self.graph
        nodes = []
        for i, (nid, spec) in enumerate(g.nodes.items()):
            cls = spec.cls
            inputs = {}
            for name, info in cls.input_fields().items():
                if field_extra(info).get("extension") and (
                    name not in spec.values
                    or spec.values[name] == info.get_default(call_default_factory=True)
                ):
                    continue  # our own field, at its default: InvokeAI never sees it
                entry: dict[str, Any] = {"name": name, "label": ""}
                if name in spec.values:
                    entry["value"] = dump_value(cls, name, spec.values[name])
                elif input_mode(info) is not Input.CONNECTION and not info.is_required():
                    # a required input without a value stays without one, as InvokeAI's
                    # editor writes it (an edge or the user fills it in)
                    default = info.get_default(call_default_factory=True)
                    if default is not None:
                        entry["value"] = dump_value(cls, name, default)
                inputs[name] = entry
            pos = self.layout.get(nid, {"x": 320.0 * (i % 6), "y": 240.0 * (i // 6)})
            nodes.append(
                {
                    "id": nid,
                    "type": "invocation",
                    "data": {
                        "id": nid,
                        "type": spec.type,
                        "version": cls.version,
                        "nodePack": "invokeai",
                        "label": self.labels.get(nid, ""),
                        "notes": "",
                        "inputs": inputs,
                        "isOpen": True,
                        "isIntermediate": spec.is_intermediate,
                        "useCache": spec.use_cache,
                    },
                    "position": {"x": pos.get("x", 0.0), "y": pos.get("y", 0.0)},
                }
            )
        edges = [
            {
                "id": f"reactflow__edge-{e.source.node_id}{e.source.field}-{e.destination.node_id}{e.destination.field}",
                "type": "default",
                "source": e.source.node_id,
                "target": e.destination.node_id,
                "sourceHandle": e.source.field,
                "targetHandle": e.destination.field,
            }
            for e in g.edges
        ]
        meta = {k: self.meta.get(k, "") for k in _META_KEYS}
        meta["tags"] = self.meta.get("tags", "")
        return {
            "id": self.meta.get("id") or str(uuid.uuid4()),
            **meta,
            "exposedFields": [
                {"nodeId": x["node_id"], "fieldName": x["field"]} for x in self.exposed
            ],
            "meta": {
                "version": INVOKEAI_SCHEMA_VERSION,
                "category": self.meta.get("category", "user"),
            },
            "nodes": nodes,
            "edges": edges,
        }


def _parse_ours(data: dict[str, Any]) -> Workflow:
    version = data.get("version")
    if version != 1:
        raise WorkflowError(
            f"unsupported invoke-nb workflow version {version!r} (this release reads 1)"
        )
    g = Graph.from_dict(data.get("graph"))
    layout = data.get("layout") or {}
    labels = data.get("labels") or {}
    exposed = data.get("exposed") or []
    meta = data.get("meta") or {}
    if (
        not isinstance(layout, dict)
        or not isinstance(labels, dict)
        or not isinstance(exposed, list)
        or not isinstance(meta, dict)
    ):
        raise WorkflowError(
            "workflow 'layout'/'labels'/'meta' must be objects and 'exposed' a list"
        )
    return Workflow(
        graph=g,
        meta=meta,
        layout=_layout(layout),
        labels={str(k): str(v) for k, v in labels.items()},
        exposed=_exposed(exposed, "node_id", "field", g),
    )


def _layout(raw: dict[str, Any]) -> dict[str, dict[str, float]]:
    out = {}
    for k, v in raw.items():
        if isinstance(v, dict) and all(isinstance(v.get(a), (int, float)) for a in ("x", "y")):
            out[str(k)] = {"x": float(v["x"]), "y": float(v["y"])}
    return out


def _exposed(raw: list[Any], id_key: str, field_key: str, g: Graph) -> list[dict[str, str]]:
    out = []
    for x in raw:
        if (
            not isinstance(x, dict)
            or not isinstance(x.get(id_key), str)
            or not isinstance(x.get(field_key), str)
        ):
            raise WorkflowError(f"exposed field entries need string {id_key!r} and {field_key!r}")
        if x[id_key] in g.nodes:
            out.append({"node_id": x[id_key], "field": x[field_key]})
    return out


def _parse_invokeai(data: dict[str, Any]) -> Workflow:
    data = upgrade_workflow(data)  # InvokeAI 3.x-5.x processor ids -> their successors
    meta_block = data.get("meta")
    version = meta_block.get("version") if isinstance(meta_block, dict) else None
    if not isinstance(version, str) or version.split(".")[0] not in ("1", "2", "3", "4"):
        raise WorkflowError(
            f"unsupported InvokeAI workflow schema version {version!r} (reads 1.x to 4.x)"
        )
    raw_nodes = data.get("nodes")
    raw_edges = data.get("edges")
    if not isinstance(raw_nodes, list) or not isinstance(raw_edges, list):
        raise WorkflowError("InvokeAI workflow needs 'nodes' and 'edges' lists")
    invocations = []
    for i, n in enumerate(raw_nodes):
        if not isinstance(n, dict):
            raise WorkflowError(f"workflow node #{i} is not an object")
        if n.get("type") != "invocation":
            continue  # notes and other editor-only nodes
        d = n.get("data")
        if (
            not isinstance(d, dict)
            or not isinstance(d.get("type"), str)
            or not isinstance(d.get("id", n.get("id")), str)
        ):
            raise WorkflowError(f"workflow node #{i} has no 'data' with a string 'type' and 'id'")
        invocations.append(n)
    missing = set()
    for n in invocations:
        try:
            get_node_class(n["data"]["type"])
        except KeyError:
            missing.add(n["data"]["type"])
    if missing:
        raise UnsupportedNodeTypesError(missing, f"workflow {data.get('name') or ''!s}".strip())
    connected = {
        (e.get("target"), e.get("targetHandle"))
        for e in raw_edges
        if isinstance(e, dict) and e.get("type") != "collapsed"
    }
    g = Graph()
    layout: dict[str, dict[str, float]] = {}
    labels: dict[str, str] = {}
    for n in invocations:
        d = n["data"]
        nid = d.get("id", n.get("id"))
        cls = get_node_class(d["type"])
        fields = cls.input_fields()
        inputs = d.get("inputs") or {}
        if not isinstance(inputs, dict):
            raise WorkflowError(f"node {nid!r}: 'inputs' must be an object", node_id=nid)
        values: dict[str, Any] = {}
        for fname, entry in inputs.items():
            if not isinstance(entry, dict) or "value" not in entry:
                continue
            if fname not in fields:
                # a newer InvokeAI or a node pack may carry inputs ours lacks: keep the
                # graph, say what was left out (an edge into such a field still fails)
                warnings.warn(
                    f"workflow node {nid!r} ({d['type']}): input {fname!r} is not known here; "
                    f"its value {entry['value']!r} is ignored",
                    WorkflowWarning,
                    stacklevel=3,
                )
                continue
            if input_mode(fields[fname]) is Input.CONNECTION or (nid, fname) in connected:
                continue  # an edge feeds it; the editor's stale value does not matter
            value = entry["value"]
            if value is None and fields[fname].is_required():
                continue
            values[fname] = value
        flags = {}
        if isinstance(d.get("isIntermediate"), bool):
            flags["is_intermediate"] = d["isIntermediate"]
        if isinstance(d.get("useCache"), bool):
            flags["use_cache"] = d["useCache"]
        g.add(d["type"], id=nid, **values, **flags)
        pos = n.get("position")
        if isinstance(pos, dict):
            layout.update(_layout({nid: pos}))
        if isinstance(d.get("label"), str) and d["label"]:
            labels[nid] = d["label"]
    for i, e in enumerate(raw_edges):
        if not isinstance(e, dict):
            raise WorkflowError(f"workflow edge #{i} is not an object")
        if e.get("type") == "collapsed":
            continue
        args = (e.get("source"), e.get("sourceHandle"), e.get("target"), e.get("targetHandle"))
        if not all(isinstance(a, str) for a in args):
            raise WorkflowError(
                f"workflow edge #{i} needs string source, sourceHandle, target and targetHandle"
            )
        g.connect(*args)
    meta = {k: data[k] for k in _META_KEYS if k in data}
    if isinstance(data.get("id"), str):
        meta["id"] = data["id"]
    if isinstance(meta_block, dict) and isinstance(meta_block.get("category"), str):
        meta["category"] = meta_block["category"]
    exposed_raw = data.get("exposedFields") or []
    if not isinstance(exposed_raw, list):
        raise WorkflowError("'exposedFields' must be a list")
    exposed = _exposed(exposed_raw, "nodeId", "fieldName", g)
    return Workflow(
        graph=g, meta=meta, layout=layout, labels=labels, exposed=exposed, source_format="invokeai"
    )


MAX_DEPTH = 100  # real workflows nest about 10 levels; far deeper is a hostile file


def check_depth(data: Any, what: str = "workflow", limit: int = MAX_DEPTH) -> None:
    """Refuse JSON nested deeper than ``limit`` (walked without recursion), before code that
    recurses over it (validation, hashing, dumping) meets a RecursionError."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            raise WorkflowError(f"{what} is nested more than {limit} levels deep; refusing it")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def loads_json(text: str | bytes, what: str = "workflow") -> Any:
    """``json.loads`` with our errors: not JSON, or nested too deep (checked while parsing
    would overflow the parser's recursion, so both are caught)."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise WorkflowError(
            f"{what} is nested more than the JSON parser can follow; refusing it"
        ) from None
    except ValueError as e:
        raise WorkflowError(f"{what} is not valid JSON: {e}") from None
    check_depth(data, what)
    return data


def parse_workflow(data: Any) -> Workflow:
    """A :class:`Workflow` from parsed JSON: ours, InvokeAI's, or a bare graph."""
    if not isinstance(data, dict):
        raise WorkflowError(f"a workflow must be a JSON object, got {type(data).__name__}")
    check_depth(data)
    try:
        if data.get("format") == FORMAT:
            return _parse_ours(data)
        if "meta" in data and "nodes" in data:
            return _parse_invokeai(data)
        if "nodes" in data and isinstance(data.get("nodes"), dict):
            return Workflow(graph=Graph.from_dict(data), source_format="graph")
    except GraphError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise WorkflowError(f"malformed workflow: {type(e).__name__}: {e}") from None
    raise WorkflowError(
        "not a workflow: expected an invoke-nb workflow, an InvokeAI workflow or a graph"
    )


def read_workflow(source: str | Path | dict[str, Any]) -> Workflow:
    """Read a workflow from a path, a JSON string or a dict."""
    if isinstance(source, dict):
        return parse_workflow(source)
    text: str
    if isinstance(source, Path) or (
        isinstance(source, str) and not source.lstrip().startswith("{")
    ):
        path = Path(source).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise WorkflowError(f"workflow file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise WorkflowError(f"cannot read workflow file {path}: {e}") from None
    else:
        text = source
    return parse_workflow(loads_json(text))


def load_workflow(source: str | Path | dict[str, Any]) -> Graph:
    """The graph of a workflow file (ours or InvokeAI's). ``graph.workflow`` keeps layout,
    labels, exposed fields and metadata for the editor."""
    wf = read_workflow(source)
    wf.graph.workflow = wf
    return wf.graph
