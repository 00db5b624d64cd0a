"""Pydantic records returned by the catalog repositories.

Field names follow InvokeAI's records (image_name, image_origin, image_category, board_name,
cover_image_name, ...) so code and users moving from InvokeAI find what they expect.
Times are timezone-aware UTC; the database stores them as naive UTC ``TIMESTAMP``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

__all__ = [
    "BoardRecord",
    "ImageRecord",
    "ImportResult",
    "QueueItem",
    "QueueStatus",
    "StylePresetRecord",
    "WorkflowRecord",
    "to_db_time",
    "utcnow",
]

QueueStatus = Literal["pending", "in_progress", "completed", "failed", "canceled"]


def utcnow() -> datetime:
    """Now, as naive UTC (what the TIMESTAMP columns hold)."""
    return datetime.now(UTC).replace(tzinfo=None)


def to_db_time(value: datetime) -> datetime:
    """An aware or naive datetime as naive UTC for storage (naive input is taken as UTC)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _as_utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class _Record(BaseModel):
    @field_validator("*", mode="after")
    @classmethod
    def _aware(cls, value: Any) -> Any:
        return _as_utc(value)


class ImageRecord(_Record):
    """One image in the catalog (InvokeAI's image record plus extracted generation facts)."""

    image_name: str
    image_origin: str = "internal"
    image_category: str = "general"
    width: int
    height: int
    session_id: str | None = None
    node_id: str | None = None
    is_intermediate: bool = False
    starred: bool = False
    has_workflow: bool = False
    board_id: str | None = None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None
    metadata: dict[str, Any] | None = None
    model_name: str | None = None
    model_key: str | None = None
    model_base: str | None = None
    positive_prompt: str | None = None
    negative_prompt: str | None = None
    seed: int | None = None
    steps: int | None = None
    cfg_scale: float | None = None
    scheduler: str | None = None
    graph_hash: str | None = None
    content_hash: str | None = None
    source: str | None = Field(
        default=None, description="Where it came from: invokeai, comfyui, a1111, ..."
    )

    # the times only (it overrides the base class's check of every field): a gallery page
    # builds a hundred records, and 27 Python calls per record were a fifth of the time
    @field_validator("created_at", "updated_at", "deleted_at", mode="after")
    @classmethod
    def _aware(cls, value: Any) -> Any:
        return _as_utc(value)


class BoardRecord(_Record):
    """A board, with its image count and cover (explicit cover, else its newest image)."""

    board_id: str
    board_name: str
    cover_image_name: str | None = None
    archived: bool = False
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None
    image_count: int = 0
    """Images on the board that are not intermediates, in the general category (InvokeAI's)."""
    asset_count: int = 0
    """Uploaded and control/mask images on the board (InvokeAI's asset categories)."""


class WorkflowRecord(_Record):
    """A workflow in the library (InvokeAI's workflow_library fields)."""

    workflow_id: str
    name: str
    description: str = ""
    category: str = "user"
    tags: str = ""
    workflow: dict[str, Any]
    thumbnail: str | None = None
    opened_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class StylePresetRecord(_Record):
    """A style preset: prompt templates where ``{prompt}`` stands for the user's prompt."""

    id: str
    name: str
    positive_prompt: str = ""
    negative_prompt: str = ""
    type: str = "user"
    image: str | None = None
    created_at: datetime
    updated_at: datetime


class QueueItem(_Record):
    """One session queue item (a graph to run, with its batch and status)."""

    item_id: int
    batch_id: str
    queue_id: str = "default"
    session_id: str
    status: QueueStatus = "pending"
    priority: int = 0
    graph: dict[str, Any]
    field_values: list[dict[str, Any]] | None = None
    destination: str | None = None
    origin: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    error_traceback: str | None = None
    worker_pid: int | None = None
    retried_from_item_id: int | None = None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    owner: str | None = None  # "host:pid:start:uuid" of the Studio that queued it; None: shared


class ImportResult(BaseModel):
    """What happened to one file of an import: imported, duplicate or error (with reason)."""

    path: str
    status: Literal["imported", "duplicate", "error"]
    image_name: str | None = None
    source: str | None = None
    reason: str | None = None
