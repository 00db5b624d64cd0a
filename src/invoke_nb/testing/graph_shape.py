"""The shape of a graph's guidance layers, to compare ours with InvokeAI's without ids.

Two graphs built for the same canvas by different programs differ in node ids (InvokeAI
draws random ones), seeds and image names; what must agree is which nodes the layers add,
their settings, and how they are wired to each other and to the base graph. A node's role
is its type (a ``collect`` is named by the input it feeds, a prompt node fed a mask is
"regional"); an edge is (source role, field, destination role, field). ``clip_skip`` is
looked through (InvokeAI always has one; we add it only when layers are skipped).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

__all__ = ["LAYER_TYPES", "layer_shape"]

LAYER_TYPES = {
    "controlnet",
    "t2i_adapter",
    "ip_adapter",
    "alpha_mask_to_tensor",
    "invert_tensor_mask",
}
PROMPT_TYPES = {"compel", "sdxl_compel_prompt"}
KEY_FIELDS = {
    "controlnet": (
        "control_weight", "begin_step_percent", "end_step_percent", "control_mode", "resize_mode",
    ),
    "t2i_adapter": ("weight", "begin_step_percent", "end_step_percent", "resize_mode"),
    "ip_adapter": (
        "weight", "method", "clip_vision_model", "begin_step_percent", "end_step_percent",
    ),
    "alpha_mask_to_tensor": ("invert",),
}  # fmt: skip
MODEL_FIELDS = {
    "controlnet": "control_model",
    "t2i_adapter": "t2i_adapter_model",
    "ip_adapter": "ip_adapter_model",
}
DEFAULTS = {"invert": False, "method": "full", "clip_vision_model": "ViT-H"}


def _plain(value: Any) -> Any:
    """Numbers as floats (JSON writers differ on ``0`` and ``0.0``)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def layer_shape(graph: dict[str, Any]) -> dict[str, Any]:
    """``{"nodes": [...], "edges": [...]}``, sorted, for the layer part of an InvokeAI-shaped
    graph dict (``Graph.to_dict()`` or an ``invokeai_graph``)."""
    nodes: dict[str, dict[str, Any]] = graph["nodes"]
    edges = [
        (e["source"]["node_id"], e["source"]["field"], e["destination"]["node_id"], e["destination"]["field"])
        for e in graph["edges"]
    ]  # fmt: skip
    into = {(d, df): (s, sf) for s, sf, d, df in edges}

    def through(node: str, field: str) -> tuple[str, str]:
        while nodes[node]["type"] == "clip_skip" and (node, "clip") in into:
            node, field = into[(node, "clip")]
        return node, field

    masked = {d for _, _, d, df in edges if df == "mask"}
    layer = {n for n, v in nodes.items() if v["type"] in LAYER_TYPES}
    layer |= {n for n in masked if nodes[n]["type"] in PROMPT_TYPES}
    layer |= {d for s, _, d, _ in edges if s in layer and nodes[d]["type"] == "collect"}
    feeds = {s: df for s, _, _, df in edges if nodes[s]["type"] == "collect"}

    def role(n: str) -> str:
        t = nodes[n]["type"]
        if t == "collect":
            return f"collect>{feeds.get(n, '?')}"
        if t in PROMPT_TYPES and n in masked:
            return f"{t}[regional]"
        return t

    def describe(n: str) -> str:
        v = nodes[n]
        t = v["type"]
        parts = [role(n)]
        for f in KEY_FIELDS.get(t, ()):
            parts.append(f"{f}={_plain(v.get(f, DEFAULTS.get(f)))!r}")
        if t in MODEL_FIELDS:
            m = v.get(MODEL_FIELDS[t]) or {}
            parts.append(f"model={m.get('name')}/{m.get('base')}/{m.get('type')}")
        if t in PROMPT_TYPES:
            parts.append(f"prompt={v.get('prompt')!r}")
        if t in LAYER_TYPES:
            parts.append(f"image={'image' in v}")
        return " ".join(parts)

    shaped: Counter[str] = Counter()
    for s, sf, d, df in edges:
        if s in layer or d in layer:
            s, sf = through(s, sf)
            shaped[f"{role(s)}.{sf} -> {role(d)}.{df}"] += 1
    return {
        "nodes": sorted(describe(n) for n in layer),
        "edges": sorted(f"{k} x{c}" for k, c in shaped.items()),
    }
