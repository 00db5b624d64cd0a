"""Workflows library, style presets and client state: small tables with plain CRUD."""

from __future__ import annotations

import json
import uuid
from typing import Any

from invoke_nb.catalog.connection import Database, first
from invoke_nb.catalog.errors import NotFoundError
from invoke_nb.catalog.pngchunks import dumps
from invoke_nb.catalog.records import StylePresetRecord, WorkflowRecord, utcnow

__all__ = ["ClientStateRepository", "StylePresetRepository", "WorkflowRepository"]

_WF_COLS = (
    "workflow_id", "name", "description", "category", "tags", "workflow", "thumbnail",
    "opened_at", "created_at", "updated_at",
)  # fmt: skip


class WorkflowRepository:
    """The workflow library (InvokeAI's workflow_library: name, category, tags, opened_at)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def _record(self, row: Any) -> WorkflowRecord:
        data = dict(zip(_WF_COLS, row, strict=True))
        data["workflow"] = json.loads(data["workflow"])
        return WorkflowRecord.model_validate(data)

    def create(
        self,
        workflow: dict[str, Any],
        *,
        name: str | None = None,
        description: str | None = None,
        category: str = "user",
        tags: str | list[str] | None = None,
        thumbnail: str | None = None,
    ) -> WorkflowRecord:
        """Add a workflow; name, description and tags default to the workflow's own."""
        if not isinstance(workflow, dict):
            raise TypeError(f"workflow must be a dict, got {type(workflow).__name__}")
        name = name or workflow.get("name") or "Untitled workflow"
        tags = tags if tags is not None else workflow.get("tags", "")
        if isinstance(tags, list):
            tags = ", ".join(tags)
        wid = str(uuid.uuid4())
        now = utcnow()
        with self._db.transaction() as conn:
            conn.execute(
                f"INSERT INTO workflows ({', '.join(_WF_COLS)}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
                [
                    wid,
                    name,
                    description if description is not None else workflow.get("description", ""),
                    category,
                    tags,
                    dumps({**workflow, "id": wid}),
                    thumbnail,
                    now,
                    now,
                ],
            )
        return self.get(wid)

    def get(self, workflow_id: str) -> WorkflowRecord:
        """One workflow; NotFoundError if none."""
        with self._db.connection() as conn:
            row = first(
                conn.execute(
                    f"SELECT {', '.join(_WF_COLS)} FROM workflows WHERE workflow_id = ?",
                    [workflow_id],
                )
            )
        if row is None:
            raise NotFoundError(f"no workflow with id {workflow_id!r}")
        return self._record(row)

    def list(
        self,
        *,
        category: str | None = None,
        query: str | None = None,
        tag: str | None = None,
        order_by: str = "opened_at",
    ) -> list[WorkflowRecord]:
        """Workflows filtered by category, name/description substring or tag.

        ``order_by``: opened_at (recent first), created_at, updated_at or name."""
        orders = {
            "opened_at": "opened_at DESC NULLS LAST, created_at DESC",
            "created_at": "created_at DESC",
            "updated_at": "updated_at DESC",
            "name": "name",
        }
        if order_by not in orders:
            raise ValueError(f"order_by must be one of {sorted(orders)}, not {order_by!r}")
        where, params = [], []
        if category is not None:
            where.append("category = ?")
            params.append(category)
        if query:
            where.append("(name ILIKE ? OR description ILIKE ?)")
            params += [f"%{query}%", f"%{query}%"]
        sql = f"SELECT {', '.join(_WF_COLS)} FROM workflows"
        sql += f" WHERE {' AND '.join(where)}" if where else ""
        with self._db.connection() as conn:
            rows = conn.execute(f"{sql} ORDER BY {orders[order_by]}", params).fetchall()
        records = [self._record(r) for r in rows]
        if tag:  # tags are a comma-separated string (InvokeAI's format); the table is small
            records = [r for r in records if tag in [t.strip() for t in r.tags.split(",")]]
        return records

    def update(self, workflow_id: str, **changes: Any) -> WorkflowRecord:
        """Change workflow, name, description, category, tags or thumbnail."""
        allowed = {"workflow", "name", "description", "category", "tags", "thumbnail"}
        bad = set(changes) - allowed
        if bad:
            raise ValueError(
                f"cannot change workflow field(s) {sorted(bad)}; allowed: {sorted(allowed)}"
            )
        if "workflow" in changes:
            changes["workflow"] = dumps({**changes["workflow"], "id": workflow_id})
        if isinstance(changes.get("tags"), list):
            changes["tags"] = ", ".join(changes["tags"])
        self.get(workflow_id)
        if changes:
            sets = ", ".join(f"{k} = ?" for k in changes)
            with self._db.transaction() as conn:
                conn.execute(
                    f"UPDATE workflows SET {sets}, updated_at = ? WHERE workflow_id = ?",
                    [*changes.values(), utcnow(), workflow_id],
                )
        return self.get(workflow_id)

    def mark_opened(self, workflow_id: str) -> WorkflowRecord:
        """Record that the workflow was opened now (for "recent" ordering)."""
        self.get(workflow_id)
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE workflows SET opened_at = ? WHERE workflow_id = ?", [utcnow(), workflow_id]
            )
        return self.get(workflow_id)

    def delete(self, workflow_id: str) -> None:
        """Remove a workflow; NotFoundError if none."""
        self.get(workflow_id)
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM workflows WHERE workflow_id = ?", [workflow_id])


_SP_COLS = (
    "id",
    "name",
    "positive_prompt",
    "negative_prompt",
    "type",
    "image",
    "created_at",
    "updated_at",
)


class StylePresetRepository:
    """Style presets: name plus positive/negative templates with a ``{prompt}`` placeholder."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def create(
        self,
        name: str,
        *,
        positive_prompt: str = "",
        negative_prompt: str = "",
        type: str = "user",
        image: str | None = None,
    ) -> StylePresetRecord:
        """Add a preset."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"style preset name must be a non-empty string, got {name!r}")
        pid = str(uuid.uuid4())
        now = utcnow()
        with self._db.transaction() as conn:
            conn.execute(
                f"INSERT INTO style_presets ({', '.join(_SP_COLS)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [pid, name, positive_prompt, negative_prompt, type, image, now, now],
            )
        return self.get(pid)

    def get(self, preset_id: str) -> StylePresetRecord:
        """One preset; NotFoundError if none."""
        with self._db.connection() as conn:
            row = first(
                conn.execute(
                    f"SELECT {', '.join(_SP_COLS)} FROM style_presets WHERE id = ?", [preset_id]
                )
            )
        if row is None:
            raise NotFoundError(f"no style preset with id {preset_id!r}")
        return StylePresetRecord.model_validate(dict(zip(_SP_COLS, row, strict=True)))

    def list(self, *, type: str | None = None, name: str | None = None) -> list[StylePresetRecord]:
        """Presets by name."""
        where, params = [], []
        for col, value in (("type", type), ("name", name)):
            if value is not None:
                where.append(f"{col} = ?")
                params.append(value)
        sql = f"SELECT {', '.join(_SP_COLS)} FROM style_presets"
        sql += f" WHERE {' AND '.join(where)}" if where else ""
        with self._db.connection() as conn:
            rows = conn.execute(sql + " ORDER BY lower(name), created_at", params).fetchall()
        return [StylePresetRecord.model_validate(dict(zip(_SP_COLS, r, strict=True))) for r in rows]

    def update(self, preset_id: str, **changes: Any) -> StylePresetRecord:
        """Change name, positive_prompt, negative_prompt, type or image."""
        allowed = {"name", "positive_prompt", "negative_prompt", "type", "image"}
        bad = set(changes) - allowed
        if bad:
            raise ValueError(
                f"cannot change style preset field(s) {sorted(bad)}; allowed: {sorted(allowed)}"
            )
        self.get(preset_id)
        if changes:
            sets = ", ".join(f"{k} = ?" for k in changes)
            with self._db.transaction() as conn:
                conn.execute(
                    f"UPDATE style_presets SET {sets}, updated_at = ? WHERE id = ?",
                    [*changes.values(), utcnow(), preset_id],
                )
        return self.get(preset_id)

    def delete(self, preset_id: str) -> None:
        """Remove a preset; NotFoundError if none."""
        self.get(preset_id)
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM style_presets WHERE id = ?", [preset_id])


class ClientStateRepository:
    """A small JSON key/value store for UI state (panel layout, last board, ...)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key`` (``default`` if none)."""
        with self._db.connection() as conn:
            row = first(conn.execute("SELECT value FROM client_state WHERE key = ?", [key]))
        return json.loads(row[0]) if row else default

    def set(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable value (TypeError names the key if it is not)."""
        try:
            text = dumps(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"client state {key!r}: value is not JSON-serialisable ({exc})"
            ) from None
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO client_state VALUES (?, ?, ?)", [key, text, utcnow()]
            )

    def delete(self, key: str) -> bool:
        """Remove a key; True if it existed."""
        with self._db.transaction() as conn:
            found = first(conn.execute("SELECT 1 FROM client_state WHERE key = ?", [key]))
            conn.execute("DELETE FROM client_state WHERE key = ?", [key])
        return found is not None

    def items(self) -> dict[str, Any]:
        """Every key and value."""
        with self._db.connection() as conn:
            rows = conn.execute("SELECT key, value FROM client_state ORDER BY key").fetchall()
        return {k: json.loads(v) for k, v in rows}
