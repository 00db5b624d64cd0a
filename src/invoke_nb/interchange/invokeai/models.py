"""InvokeAI's model records, registered in place (``owned=False``: nothing copied, nothing of
InvokeAI's ever deleted), and which imported images name a model not installed here."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any

from invoke_nb.interchange.invokeai.root import (
    InvokeAIImportReport,
    InvokeAIRoot,
    Schema,
    aware,
    parse_time,
)

__all__ = ["import_models", "unresolved_models"]


_RECORD_FIELDS = {
    "description",
    "source",
    "source_type",
    "source_api_response",
    "file_size",
    "variant",
    "prediction_type",
    "default_settings",
    "trigger_phrases",
}


def import_models(
    catalog: Any,
    conn: sqlite3.Connection,
    schema: Schema,
    src: InvokeAIRoot,
    report: InvokeAIImportReport,
) -> None:
    from invoke_nb.models.records import ModelRecord

    if not schema.has("models"):
        if schema.has("model_config"):
            n = conn.execute("SELECT count(*) FROM model_config").fetchone()[0]
            for _ in range(n):
                report.skip("model", "model_config", "InvokeAI 3.x model table: install again")
        return
    store = catalog.models
    for key, text, created, updated in conn.execute(
        "SELECT id, config, created_at, updated_at FROM models"
    ).fetchall():
        try:
            cfg = json.loads(text)
            name, path, digest = cfg["name"], cfg["path"], cfg.get("hash") or ""
            base, mtype, fmt = cfg["base"], cfg["type"], cfg["format"]
        except (TypeError, ValueError, KeyError) as e:
            report.skip("model", str(key), f"unreadable model config: {e}")
            continue
        with contextlib.suppress(Exception):
            store.get(key)
            report.existing["models"] += 1
            continue
        if "unknown" in (base, mtype):
            report.skip("model", name, "unknown model: InvokeAI could not identify it")
            continue
        same = store.by_hash(digest) if digest else None
        if same is not None:
            report.existing["models"] += 1
            report.skip("model", name, f"already installed: same hash as {same.name!r}")
            continue
        full = Path(path).expanduser()
        if not full.is_absolute():
            full = src.models_dir / full
        if not full.exists():
            report.skip("model", name, f"missing file: {full}")
            continue
        known = {k: cfg[k] for k in _RECORD_FIELDS if cfg.get(k) is not None}
        extra = {
            k: v
            for k, v in cfg.items()
            if k not in _RECORD_FIELDS
            and k not in ("key", "hash", "path", "name", "base", "type", "format")
        }
        try:
            rec = ModelRecord(
                key=key,
                hash=digest,
                path=str(full),
                name=name,
                base=base,
                type=mtype,
                format=fmt,
                owned=False,
                extra={"invokeai": extra},
                created_at=aware(parse_time(created)),
                updated_at=aware(parse_time(updated)),
                **known,
            )
        except Exception as e:
            report.skip("model", name, f"unreadable model config: {e}")
            continue
        store.add(rec)
        report.added["models"] += 1


def unresolved_models(catalog: Any) -> dict[str, int]:
    """Imported images whose model is installed neither by key nor by name and base. The
    images are counted per model first (a few hundred rows at most), then those rows looked
    up: 0.02 s at a million images instead of 0.14 s for a lookup per image."""
    with catalog.db.connection() as db:
        rows = db.execute(
            "SELECT coalesce(i.model_name, '?') || ' (' || coalesce(i.model_base, '?') || ')', "
            "sum(i.n) AS n FROM (SELECT model_name, model_key, model_base, count(*) AS n "
            "FROM images WHERE source = 'invokeai' "
            "AND (model_name IS NOT NULL OR model_key IS NOT NULL) GROUP BY ALL) i "
            "WHERE NOT EXISTS (SELECT 1 FROM models m WHERE m.key = i.model_key "
            "OR (m.name = i.model_name AND (i.model_base IS NULL OR m.base = i.model_base))) "
            "GROUP BY 1 ORDER BY n DESC LIMIT 50"
        ).fetchall()
    return {name: int(n) for name, n in rows}
