"""The error FLUX.2 nodes raise for bad input: it names the node and the field."""

from __future__ import annotations

from typing import Any

__all__ = ["Flux2InputError", "input_error"]


class Flux2InputError(ValueError):
    """A FLUX.2 node got an input it cannot use (wrong model, size, conditioning)."""


def input_error(ctx: Any, field: str, problem: str) -> Flux2InputError:
    """An error naming the node id, its type and the field at fault."""
    return Flux2InputError(f"node {ctx.node_id!r} ({ctx.node_type}) field {field!r}: {problem}")
