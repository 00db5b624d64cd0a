"""Where a node runs its tensors and in which precision: asked of the host, never a model.

A model under partial loading keeps some weights on ``meta`` between calls, so the device of
its first parameter says nothing about where its inputs belong. Nodes therefore ask the
model provider's cache (``ctx.models.cache``: the Studio's model manager, ``LocalModels``
and Ray's worker models all have one) for the execution device, and fall back to the CPU
without one.
"""

from __future__ import annotations

from typing import Any

__all__ = ["execution_device", "precision_name"]


def _cache(ctx: Any) -> Any:
    return getattr(getattr(ctx, "models", None), "cache", None)


def execution_device(ctx: Any) -> str:
    """The device the host's model cache runs models on (``cpu`` without a cache)."""
    return str(getattr(_cache(ctx), "execution_device", None) or "cpu")


def precision_name(ctx: Any) -> str | None:
    """The dtype models run in (``float16``...), or ``None`` when the host does not say."""
    return getattr(_cache(ctx), "precision_name", None)
