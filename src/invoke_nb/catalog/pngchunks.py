"""The catalog's own PNG text chunks: InvokeAI's three keys, written and read back.

Every image the catalog saves carries the chunks InvokeAI writes, so each tool recalls the
other's images: ``invokeai_metadata`` (the flat core-metadata dict: positive_prompt,
negative_prompt, seed, steps, cfg_scale, scheduler, width, height, model {key, hash, name,
base, type}, ...), ``invokeai_graph`` (the executed graph: ``{"id", "nodes": {id: node},
"edges": [{"source": {"node_id", "field"}, "destination": {...}}]}``) and
``invokeai_workflow`` (the editor workflow JSON), as compact JSON. Reading other tools' chunks
(ComfyUI, A1111, InvokeAI 2.x) is :mod:`invoke_nb.interchange.pngmeta`'s job.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from PIL import Image, PngImagePlugin

__all__ = [
    "as_float",
    "as_int",
    "as_str",
    "build_pnginfo",
    "columns_from_metadata",
    "dumps",
    "graph_hash",
    "json_chunk",
    "read_text_chunks",
]


def dumps(value: Any) -> str:
    """Compact JSON, the way InvokeAI's pydantic models serialise."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def graph_hash(graph: dict[str, Any] | None) -> str | None:
    """A stable hash of a graph's nodes and edges (its id is ignored), to group re-runs."""
    if not graph:
        return None
    body = {"nodes": graph.get("nodes"), "edges": graph.get("edges")}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]


def build_pnginfo(
    metadata: dict[str, Any] | None,
    graph: dict[str, Any] | None,
    workflow: dict[str, Any] | None,
) -> PngImagePlugin.PngInfo:
    """Text chunks for a PNG, keys and JSON shapes as InvokeAI writes them."""
    info = PngImagePlugin.PngInfo()
    for key, value in (
        ("invokeai_metadata", metadata),
        ("invokeai_workflow", workflow),
        ("invokeai_graph", graph),
    ):
        if value is not None:
            info.add_text(key, dumps(value))
    return info


def read_text_chunks(image: Image.Image) -> dict[str, str]:
    """All tEXt/zTXt/iTXt chunks of an opened PNG as a plain dict."""
    text = getattr(image, "text", None)
    if text is None:
        return {k: v for k, v in image.info.items() if isinstance(v, str)}
    return {str(k): str(v) for k, v in text.items()}


def json_chunk(text: dict[str, str], key: str) -> dict[str, Any] | None:
    """One of InvokeAI's JSON chunks as an object; None when absent or not a JSON object."""
    raw = text.get(key)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# -- columns --------------------------------------------------------------------------------
def as_int(value: Any) -> int | None:
    """An int from a metadata value (None when empty or not a number)."""
    try:
        return int(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


def as_float(value: Any) -> float | None:
    """A float from a metadata value (None when empty or not a number)."""
    try:
        return float(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


def as_str(value: Any) -> str | None:
    """The value if it is a string, else None."""
    return value if isinstance(value, str) else None


def columns_from_metadata(meta: dict[str, Any] | None) -> dict[str, Any]:
    """The catalog's real columns from InvokeAI-shaped metadata (missing facts are None)."""
    meta = meta or {}
    model = meta.get("model")
    if isinstance(model, str):
        model = {"name": model}
    model = model if isinstance(model, dict) else {}
    return {
        "model_name": as_str(model.get("name")),
        "model_key": as_str(model.get("key")),
        "model_base": as_str(model.get("base")),
        "positive_prompt": as_str(meta.get("positive_prompt")),
        "negative_prompt": as_str(meta.get("negative_prompt")),
        "seed": as_int(meta.get("seed")),
        "steps": as_int(meta.get("steps")),
        "cfg_scale": as_float(meta.get("cfg_scale")),
        "scheduler": as_str(meta.get("scheduler")),
    }
