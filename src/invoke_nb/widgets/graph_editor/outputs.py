"""What the editor shows on a node: its run state from the queue's events, and a short,
JSON-ready summary of its output."""

from __future__ import annotations

from typing import Any

from invoke_nb.widgets.graph_editor.protocol import RunState

__all__ = ["output_summary"]

_EVENT_STATES: dict[str, RunState] = {
    "node_started": "running",
    "progress": "running",
    "node_complete": "done",
    "node_error": "error",
}


def _short(value: Any, limit: int = 200) -> Any:
    """A JSON-ready, size-limited view of an output value for display on a node."""
    if isinstance(value, str):
        return value if len(value) <= limit else value[: limit - 3] + "..."
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    if isinstance(value, list):
        return [_short(v, limit) for v in value[:10]] + (["..."] if len(value) > 10 else [])
    if isinstance(value, dict):
        return {k: _short(v, limit) for k, v in list(value.items())[:10]}
    return _short(repr(value), limit)


def output_summary(output: Any) -> dict[str, Any]:
    """Field -> display value of a node's output (a list of outputs when it iterated)."""
    if isinstance(output, list):
        dumped = [output_summary(o) for o in output[:10]]
        keys = dumped[0].keys() if dumped else ()
        return {k: [d.get(k) for d in dumped] for k in keys}
    try:
        data = output.model_dump(mode="json")
    except Exception:
        data = {k: repr(v) for k, v in vars(output).items()}
    return {k: _short(v) for k, v in data.items()}
