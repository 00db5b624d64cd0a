"""The queue view: the studio's queue items grouped by batch, live, with cancel and retry.

The list comes from the catalog's queue table on request (``items``); the queue's events
(status changes, progress) are pushed as they happen so the browser only re-asks for the list
when an item changes status, and moves progress bars without asking.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from invoke_nb.widgets.messages import MessageWidget, Params, handler

if TYPE_CHECKING:
    from invoke_nb.catalog.records import QueueItem
    from invoke_nb.widgets.api import StudioAPI

__all__ = ["QueueView", "item_label"]

_PROMPT_FIELDS = ("prompt", "positive_prompt")


def _is_prompt(node_id: str, field: str) -> bool:
    """A positive prompt: a ``prompt`` field, or the value of a node named like one."""
    named = "prompt" in node_id and "negative" not in node_id
    return field in _PROMPT_FIELDS or (named and field == "value")


def item_label(item: QueueItem) -> str:
    """A short description of a queue item: its prompt when the graph has one."""
    for fv in item.field_values or []:
        if isinstance(fv, dict) and _is_prompt(str(fv.get("node_path")), str(fv.get("field_name"))):
            return str(fv.get("value"))[:120]
    nodes = item.graph.get("nodes", {})
    for nid, node in nodes.items() if isinstance(nodes, dict) else ():
        for field, value in node.items() if isinstance(node, dict) else ():
            if isinstance(value, str) and value and _is_prompt(str(nid), field):
                return value[:120]
    return f"graph of {len(nodes)} nodes"


class ItemsParams(Params):
    limit: int = Field(500, ge=1, le=10_000)


class IdsParams(Params):
    item_ids: list[int] = []
    batch_id: str | None = None


class QueueView(MessageWidget):
    """Queue items with status, progress, cancel and retry (``studio.queue_view()``)."""

    _bundle = "queue_view"

    def __init__(self, studio: StudioAPI, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.studio = studio
        self._subs = [
            studio.events.on("queue_item_status_changed", self._on_status, main_thread=True),
            studio.events.on("batch_enqueued", self._on_status, main_thread=True),
            studio.events.on("progress", self._on_progress, main_thread=True),
            studio.events.on("node_started", self._on_node, main_thread=True),
        ]

    def close(self) -> None:
        for off in self._subs:
            off()
        self._subs = []
        super().close()

    # -- events ---------------------------------------------------------------------------
    def _on_status(self, kind: str, payload: dict[str, Any]) -> None:
        self.send_event(
            "changed",
            {
                "kind": kind,
                "item_id": payload.get("item_id"),
                "status": payload.get("status"),
                "batch_id": payload.get("batch_id"),
            },
        )

    def _on_progress(self, _kind: str, payload: dict[str, Any]) -> None:
        step, total, fraction = payload.get("step"), payload.get("total"), payload.get("fraction")
        if fraction is None and step is not None and total:
            fraction = step / total
        self.send_event(
            "progress",
            {
                "item_id": payload.get("item_id"),
                "fraction": fraction,
                "step": step,
                "total": total,
                "message": payload.get("message") or "",
            },
        )

    def _on_node(self, _kind: str, payload: dict[str, Any]) -> None:
        self.send_event(
            "progress",
            {
                "item_id": payload.get("item_id"),
                "fraction": None,
                "message": str(payload.get("node_type") or payload.get("node_id") or ""),
            },
        )

    # -- browser requests -----------------------------------------------------------------
    @handler("items", ItemsParams)
    def _items(self, p: ItemsParams, _b: list[bytes]) -> dict[str, Any]:
        items = self.studio.queue_items()
        # newest batches first, items inside a batch in execution order; keep the last `limit`
        items = items[-p.limit :] if len(items) > p.limit else items
        rows = [
            {
                "item_id": it.item_id,
                "batch_id": it.batch_id,
                "status": it.status,
                "priority": it.priority,
                "label": item_label(it),
                "nodes": len(it.graph.get("nodes", {})),
                "error_type": it.error_type,
                "error_message": it.error_message,
                "created_at": it.created_at.isoformat(),
                "started_at": it.started_at.isoformat() if it.started_at else None,
                "completed_at": it.completed_at.isoformat() if it.completed_at else None,
                "retried_from": it.retried_from_item_id,
            }
            for it in items
        ]
        return {
            "items": rows,
            "counts": self.studio.queue_counts(),
            "paused": self.studio.queue_paused(),
        }

    @handler("cancel", IdsParams)
    def _cancel(self, p: IdsParams, _b: list[bytes]) -> dict[str, Any]:
        if not p.item_ids and p.batch_id is None:
            raise ValueError("cancel needs item_ids or a batch_id")
        if p.item_ids:
            self._check_ids(p.item_ids)
            done = self.studio.cancel(p.item_ids)
        else:
            done = self.studio.cancel(batch_id=p.batch_id)
        return {"canceled": done}

    @handler("retry", IdsParams)
    def _retry(self, p: IdsParams, _b: list[bytes]) -> dict[str, Any]:
        if not p.item_ids:
            raise ValueError("retry needs item_ids")
        self._check_ids(p.item_ids)
        return {"item_ids": self.studio.retry(p.item_ids)}

    @handler("prune")
    def _prune(self, _p: Params, _b: list[bytes]) -> dict[str, Any]:
        """Remove finished items (completed, failed, canceled) from the list."""
        n = self.studio.prune_queue()
        self.send_event("changed", {"kind": "pruned"})
        return {"removed": n}

    def _check_ids(self, ids: list[int]) -> None:
        for i in ids:
            self.studio.queue_item(i)  # NotFoundError names the missing item
