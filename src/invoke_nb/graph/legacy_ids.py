"""InvokeAI 3.x-5.x ``*_image_processor`` node ids read as their 6.x successors.

InvokeAI 5.10 replaced its ControlNet processors (``canny_image_processor``, ...) by new
nodes (``canny_edge_detection``, ...) with fewer, renamed fields; 6.x no longer registers the
old ids, yet old workflow files and PNG graphs (three of InvokeAI 6.11's own default
workflows among them) still use them. Here an old node becomes its successor when a file is
read: renamed fields carry their values, fields the successor lacks (mostly
``detect_resolution``/``image_resolution``: the new nodes keep the input's size) are dropped,
and a :class:`~invoke_nb.graph.workflow.WorkflowWarning` says what changed. Ids with no
successor (``tile_image_processor``, ``segment_anything_processor``) are left alone and
fail as unknown node types.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LEGACY_IDS", "Successor", "upgrade_graph", "upgrade_workflow"]

_SIZES = ("detect_resolution", "image_resolution", "resolution")


@dataclass(frozen=True)
class Successor:
    """The 6.x node an old processor id becomes: its id, renamed fields (old -> new) and the
    old fields it has no place for; ``note`` is added to the warning when results differ
    beyond the size."""

    type: str
    renamed: dict[str, str] = field(default_factory=dict)
    dropped: tuple[str, ...] = _SIZES
    note: str = ""


_DEPTH = "a Depth Anything model replaces it (InvokeAI 5.10 did the same)"

LEGACY_IDS: dict[str, Successor] = {
    "canny_image_processor": Successor("canny_edge_detection"),
    "hed_image_processor": Successor("hed_edge_detection", dropped=(*_SIZES, "safe")),
    "lineart_image_processor": Successor("lineart_edge_detection"),
    "lineart_anime_image_processor": Successor("lineart_anime_edge_detection"),
    "normalbae_image_processor": Successor("normal_map"),
    "mlsd_image_processor": Successor(
        "mlsd_detection", {"thr_v": "score_threshold", "thr_d": "distance_threshold"}
    ),
    "pidi_image_processor": Successor("pidi_edge_detection", {"safe": "quantize_edges"}),
    "content_shuffle_image_processor": Successor(
        "content_shuffle", {"f": "scale_factor"}, (*_SIZES, "h", "w")
    ),
    "color_map_image_processor": Successor("color_map", {"color_map_tile_size": "tile_size"}),
    "mediapipe_face_processor": Successor("mediapipe_face_detection"),
    "depth_anything_image_processor": Successor("depth_anything_depth_estimation"),
    "midas_depth_image_processor": Successor(
        "depth_anything_depth_estimation", dropped=(*_SIZES, "a_mult", "bg_th"), note=_DEPTH
    ),
    "zoe_depth_image_processor": Successor("depth_anything_depth_estimation", note=_DEPTH),
    "leres_image_processor": Successor(
        "depth_anything_depth_estimation",
        dropped=(*_SIZES, "thr_a", "thr_b", "boost"),
        note=_DEPTH,
    ),
    "dw_openpose_image_processor": Successor("dw_openpose_detection"),
    "openpose_image_processor": Successor(
        "dw_openpose_detection",
        dropped=(*_SIZES, "hand_and_face"),
        note="DWPose replaces OpenPose; set draw_face/draw_hands for hands and face",
    ),
}


def _warn(node_id: str, old: str, succ: Successor, dropped: list[str]) -> None:
    from invoke_nb.graph.workflow import WorkflowWarning

    parts = [f"node {node_id!r}: InvokeAI's old {old!r} is read as {succ.type!r}"]
    if succ.renamed:
        parts.append("fields renamed " + ", ".join(f"{a}->{b}" for a, b in succ.renamed.items()))
    if dropped:
        parts.append(f"dropped {', '.join(sorted(dropped))} (the map keeps the input's size)")
    if succ.note:
        parts.append(succ.note)
    warnings.warn("; ".join(parts), WorkflowWarning, stacklevel=4)


def _warn_edge(node_id: str, field: str | None) -> None:
    from invoke_nb.graph.workflow import WorkflowWarning

    warnings.warn(
        f"node {node_id!r}: the connection into its old field {field!r} is dropped "
        "(the successor has no such input)",
        WorkflowWarning,
        stacklevel=4,
    )


def _rename_fields(values: dict[str, Any], succ: Successor) -> tuple[dict[str, Any], list[str]]:
    out: dict[str, Any] = {}
    dropped = []
    for name, value in values.items():
        if name in succ.dropped:
            dropped.append(name)
        else:
            out[succ.renamed.get(name, name)] = value
    return out, dropped


def upgrade_workflow(data: dict[str, Any]) -> dict[str, Any]:
    """An InvokeAI editor workflow with old processor nodes replaced (a copy when anything
    changes; the input is never modified)."""
    nodes = data.get("nodes")
    if not isinstance(nodes, list) or not any(
        isinstance(n, dict)
        and isinstance(n.get("data"), dict)
        and n["data"].get("type") in LEGACY_IDS
        for n in nodes
    ):
        return data
    data = copy.deepcopy(data)
    changed: dict[str, Successor] = {}
    for n in data["nodes"]:
        d = n.get("data") if isinstance(n, dict) else None
        if not isinstance(d, dict) or d.get("type") not in LEGACY_IDS:
            continue
        old = d["type"]
        succ = LEGACY_IDS[old]
        nid = str(d.get("id", n.get("id")))
        inputs = d.get("inputs") if isinstance(d.get("inputs"), dict) else {}
        new_inputs, dropped = _rename_fields(inputs, succ)
        for name, entry in new_inputs.items():
            if isinstance(entry, dict) and "name" in entry:
                entry["name"] = name
        d["inputs"], d["type"] = new_inputs, succ.type
        dropped = [k for k in dropped if isinstance(inputs.get(k), dict)]
        changed[nid] = succ
        _warn(nid, old, succ, dropped)
    kept = []
    for e in data.get("edges") or []:
        if isinstance(e, dict) and e.get("target") in changed:
            succ = changed[e["target"]]
            handle = e.get("targetHandle")
            if handle in succ.dropped:  # a connection into a field the successor lacks
                _warn_edge(e["target"], handle)
                continue
            e["targetHandle"] = succ.renamed.get(handle, handle)
        kept.append(e)
    if "edges" in data:
        data["edges"] = kept
    return data


def upgrade_graph(data: dict[str, Any]) -> dict[str, Any]:
    """An InvokeAI session graph (the ``invokeai_graph`` PNG chunk: nodes with flat fields,
    edges by ``destination.field``) with old processor nodes replaced (a copy when anything
    changes)."""
    nodes = data.get("nodes")
    items = nodes.values() if isinstance(nodes, dict) else nodes if isinstance(nodes, list) else []
    if not any(isinstance(n, dict) and n.get("type") in LEGACY_IDS for n in items):
        return data
    data = copy.deepcopy(data)
    nodes = data["nodes"]
    keyed = nodes.items() if isinstance(nodes, dict) else enumerate(nodes)
    changed: dict[str, Successor] = {}
    for key, n in list(keyed):
        if not isinstance(n, dict) or n.get("type") not in LEGACY_IDS:
            continue
        old = n["type"]
        succ = LEGACY_IDS[old]
        nid = str(n.get("id", key))
        flat = {k: v for k, v in n.items() if k not in ("id", "type")}
        fields, dropped = _rename_fields(flat, succ)
        new = {"id": n.get("id", key), "type": succ.type, **fields}
        nodes[key] = new
        changed[nid] = succ
        _warn(nid, old, succ, dropped)
    kept = []
    for e in data.get("edges") or []:
        dest = e.get("destination") if isinstance(e, dict) else None
        if isinstance(dest, dict) and dest.get("node_id") in changed:
            succ = changed[dest["node_id"]]
            if dest.get("field") in succ.dropped:  # into a field the successor lacks
                _warn_edge(dest["node_id"], dest.get("field"))
                continue
            dest["field"] = succ.renamed.get(dest.get("field"), dest.get("field"))
        kept.append(e)
    if "edges" in data:
        data["edges"] = kept
    return data
