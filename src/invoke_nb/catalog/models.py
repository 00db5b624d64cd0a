"""Model records in DuckDB: the Studio's :class:`~invoke_nb.models.records.ModelRecordStore`.

The full record is stored as JSON (so new record fields need no migration); the fields that
queries filter on (hash, name, base, type, path) are real columns beside it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from invoke_nb.catalog.connection import Database, first
from invoke_nb.catalog.records import to_db_time
from invoke_nb.models.records import ModelRecord, UnknownModelError

__all__ = ["DuckDBModelRecordStore"]


class DuckDBModelRecordStore:
    """ModelRecordStore over the catalog's ``models`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @staticmethod
    def _params(rec: ModelRecord) -> list[Any]:
        return [
            rec.key,
            rec.hash,
            rec.path,
            rec.name,
            rec.base,
            rec.type,
            rec.format,
            rec.model_dump_json(),
            to_db_time(rec.created_at),
            to_db_time(rec.updated_at),
        ]

    def add(self, record: ModelRecord) -> ModelRecord:
        """Store a new record; ValueError if its key exists."""
        with self._db.transaction() as conn:
            if first(conn.execute("SELECT 1 FROM models WHERE key = ?", [record.key])):
                raise ValueError(f"model key {record.key!r} already exists")
            conn.execute(
                "INSERT INTO models VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", self._params(record)
            )
        return record

    def get(self, key: str) -> ModelRecord:
        """The record with this key; UnknownModelError if none."""
        with self._db.connection() as conn:
            row = first(conn.execute("SELECT record FROM models WHERE key = ?", [key]))
        if row is None:
            raise UnknownModelError(f"no model with key {key!r}")
        return ModelRecord.model_validate(json.loads(row[0]))

    def update(self, key: str, changes: dict[str, Any]) -> ModelRecord:
        """Apply field changes (validated) and bump ``updated_at``."""
        if "key" in changes and changes["key"] != key:
            raise ValueError(f"cannot change the key of model {key!r}")
        with self._db.transaction():
            rec = self.get(key)
            data = {**rec.model_dump(), **changes, "updated_at": datetime.now(UTC)}
            new = ModelRecord.model_validate(data)
            with self._db.connection() as conn:
                conn.execute("DELETE FROM models WHERE key = ?", [key])
                conn.execute(
                    "INSERT INTO models VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", self._params(new)
                )
        return new

    def delete(self, key: str) -> None:
        """Remove a record; UnknownModelError if none."""
        with self._db.transaction() as conn:
            if not first(conn.execute("SELECT 1 FROM models WHERE key = ?", [key])):
                raise UnknownModelError(f"no model with key {key!r}")
            conn.execute("DELETE FROM models WHERE key = ?", [key])

    def list(
        self, *, base: str | None = None, type: str | None = None, name: str | None = None
    ) -> list[ModelRecord]:
        """Records matching every given filter, by name then creation time."""
        where, params = [], []
        for col, value in (("base", base), ("type", type), ("name", name)):
            if value is not None:
                where.append(f"{col} = ?")
                params.append(value)
        sql = "SELECT record FROM models" + (f" WHERE {' AND '.join(where)}" if where else "")
        with self._db.connection() as conn:
            rows = conn.execute(sql + " ORDER BY name, created_at", params).fetchall()
        return [ModelRecord.model_validate(json.loads(r[0])) for r in rows]

    def by_hash(self, hash: str) -> ModelRecord | None:
        """The (first) record with this content hash."""
        with self._db.connection() as conn:
            row = first(
                conn.execute(
                    "SELECT record FROM models WHERE hash = ? ORDER BY created_at LIMIT 1", [hash]
                )
            )
        return ModelRecord.model_validate(json.loads(row[0])) if row else None
