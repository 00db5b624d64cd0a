"""Model records: what the model manager knows about an installed model.

Field names follow InvokeAI's model config records (key, hash, path, name, base, type,
format, variant, source, source_type, file_size, default_settings, trigger_phrases) so that
metadata written by InvokeAI (``{key, hash, name, base, type}``) finds models here.

This module is torch-free: the catalog stores records without importing torch. The manager
talks to storage only through :class:`ModelRecordStore`, so storage can change freely.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel, Field

__all__ = ["MemoryModelRecordStore", "ModelRecord", "ModelRecordStore", "UnknownModelError"]


class UnknownModelError(KeyError):
    """No model record matches the key, name or hash asked for."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown model"


def _now() -> datetime:
    return datetime.now(UTC)


class ModelRecord(BaseModel):
    """One installed model (InvokeAI's record fields plus a few of ours)."""

    key: str = Field(description="Unique id (uuid4 hex)")
    hash: str = Field(description="Content hash, e.g. 'blake3:<hex>'")
    path: str = Field(description="File or folder; relative paths are under the models dir")
    name: str
    base: str = Field(description="sd-1, sd-2, sdxl, sdxl-refiner, sd-3, flux, any, unknown")
    type: str = Field(description="main, vae, lora, embedding, controlnet, t2i_adapter, ...")
    format: str = Field(description="diffusers, checkpoint, lycoris, embedding_file, ...")
    variant: str | None = Field(default=None, description="normal, inpaint, depth")
    prediction_type: str | None = Field(default=None, description="epsilon, v_prediction, sample")
    description: str | None = None
    source: str = Field(default="", description="Where it was installed from")
    source_type: str = Field(default="path", description="path, url, hf_repo_id")
    source_api_response: str | None = None
    file_size: int = 0
    config_path: str | None = Field(default=None, description="Local diffusers config folder")
    owned: bool = Field(default=True, description="Files live in our models dir (delete on remove)")
    default_settings: dict[str, Any] | None = None
    trigger_phrases: list[str] | None = None
    unknown_reason: str | None = Field(default=None, description="Why the probe gave up")
    extra: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=_now)
    updated_at: datetime = Field(default_factory=_now)


class ModelRecordStore(Protocol):
    """Storage of model records (in memory for tests, DuckDB in a Studio)."""

    def add(self, record: ModelRecord) -> ModelRecord: ...

    def get(self, key: str) -> ModelRecord: ...

    def update(self, key: str, changes: dict[str, Any]) -> ModelRecord: ...

    def delete(self, key: str) -> None: ...

    def list(
        self,
        *,
        base: str | None = None,
        type: str | None = None,
        name: str | None = None,
    ) -> list[ModelRecord]: ...

    def by_hash(self, hash: str) -> ModelRecord | None: ...


class MemoryModelRecordStore:
    """A dict-backed :class:`ModelRecordStore`."""

    def __init__(self) -> None:
        self._rows: dict[str, ModelRecord] = {}
        self._lock = threading.Lock()

    def add(self, record: ModelRecord) -> ModelRecord:
        with self._lock:
            if record.key in self._rows:
                raise ValueError(f"model key {record.key!r} already exists")
            self._rows[record.key] = record
        return record

    def get(self, key: str) -> ModelRecord:
        try:
            return self._rows[key]
        except KeyError:
            raise UnknownModelError(f"no model with key {key!r}") from None

    def update(self, key: str, changes: dict[str, Any]) -> ModelRecord:
        with self._lock:
            rec = self.get(key)
            new = rec.model_copy(update={**changes, "updated_at": _now()})
            self._rows[key] = ModelRecord.model_validate(new.model_dump())
            return self._rows[key]

    def delete(self, key: str) -> None:
        with self._lock:
            if self._rows.pop(key, None) is None:
                raise UnknownModelError(f"no model with key {key!r}")

    def list(
        self, *, base: str | None = None, type: str | None = None, name: str | None = None
    ) -> list[ModelRecord]:
        rows = list(self._rows.values())
        if base is not None:
            rows = [r for r in rows if r.base == base]
        if type is not None:
            rows = [r for r in rows if r.type == type]
        if name is not None:
            rows = [r for r in rows if r.name == name]
        return sorted(rows, key=lambda r: (r.name, r.created_at))

    def by_hash(self, hash: str) -> ModelRecord | None:
        return next((r for r in self._rows.values() if r.hash == hash), None)
