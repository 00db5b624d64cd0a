"""The user workflows of InvokeAI's workflow library (built-in ones ship with InvokeAI: skipped)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from invoke_nb.catalog.records import utcnow
from invoke_nb.interchange.invokeai.root import (
    InvokeAIImportReport,
    InvokeAIRoot,
    Schema,
    copy_aside,
    existing_ids,
    parse_time,
)

__all__ = ["import_workflows"]


def import_workflows(
    catalog: Any,
    conn: sqlite3.Connection,
    schema: Schema,
    src: InvokeAIRoot,
    report: InvokeAIImportReport,
) -> None:
    if not schema.has("workflow_library"):
        return
    opened = schema.col("workflow_library", "opened_at", "TEXT")
    rows = conn.execute(
        f"SELECT workflow_id, workflow, created_at, updated_at, {opened} FROM workflow_library"
    ).fetchall()
    have = existing_ids(catalog, "workflows", "workflow_id", [r[0] for r in rows])
    now = utcnow()
    new = []
    for wid, text, created, updated, opened_at in rows:
        if wid in have:
            report.existing["workflows"] += 1
            continue
        try:
            wf = json.loads(text)
        except (TypeError, ValueError) as e:
            report.skip("workflow", wid, f"unreadable workflow JSON: {e}")
            continue
        if not isinstance(wf, dict):
            report.skip("workflow", wid, "unreadable workflow JSON: not an object")
            continue
        meta = wf.get("meta") if isinstance(wf.get("meta"), dict) else {}
        category = str(meta.get("category") or "user")
        if category == "default":
            report.skip("workflow", wid, "built into InvokeAI: default workflows are not copied")
            continue
        tags = wf.get("tags") or ""
        thumb = copy_aside(
            src.workflow_thumbnails_dir / f"{wid}.webp", catalog.root / "workflow_thumbnails"
        )
        c = parse_time(created) or now
        new.append(
            [
                wid,
                str(wf.get("name") or "Untitled workflow"),
                str(wf.get("description") or ""),
                category,
                ", ".join(tags) if isinstance(tags, list) else str(tags),
                json.dumps({**wf, "id": wid}, separators=(",", ":")),
                thumb,
                parse_time(opened_at),
                c,
                parse_time(updated) or c,
            ]
        )
    if new:
        with catalog.db.transaction() as db:
            db.executemany(
                "INSERT INTO workflows (workflow_id, name, description, category, tags, "
                "workflow, thumbnail, opened_at, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                new,
            )
    report.added["workflows"] += len(new)
