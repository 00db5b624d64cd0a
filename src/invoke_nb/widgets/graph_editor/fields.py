"""Model fields: which installed models a node's model field offers (the field's own
``ui_model_*`` hints decide, as in InvokeAI's UI; extension/.../graph_editor/fields.ts)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["field_model_filter", "model_choices"]


def model_choices(records: Sequence[Any], node_type: str, field: str) -> list[dict[str, Any]]:
    """The model records a node's model field may take, as ModelIdentifierField dicts: the
    field's own ``ui_model_*`` hints decide (no hints: any model)."""
    want = field_model_filter(node_type, field)
    out = []
    for r in records:
        if any(getattr(r, key, None) not in allowed for key, allowed in want.items()):
            continue
        out.append({"key": r.key, "hash": r.hash, "name": r.name, "base": r.base, "type": r.type})
    return sorted(out, key=lambda m: (m["name"].lower(), m["base"]))


def field_model_filter(node_type: str, field: str) -> dict[str, list[str]]:
    """The ``ui_model_*`` hints of one field of a registered node type (empty: any model)."""
    from invoke_nb.nodes.base import get_node_class, model_filter

    try:
        info = get_node_class(node_type).input_fields().get(field)
    except KeyError:
        return {}
    return (model_filter(info) if info is not None else None) or {}
