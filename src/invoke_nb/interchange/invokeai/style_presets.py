"""InvokeAI's user style presets and their images (built-in ones are skipped)."""

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

__all__ = ["import_style_presets"]


def import_style_presets(
    catalog: Any,
    conn: sqlite3.Connection,
    schema: Schema,
    src: InvokeAIRoot,
    report: InvokeAIImportReport,
) -> None:
    if not schema.has("style_presets"):
        return
    rows = conn.execute(
        "SELECT id, name, preset_data, type, created_at, updated_at FROM style_presets"
    ).fetchall()
    have = existing_ids(catalog, "style_presets", "id", [r[0] for r in rows])
    now = utcnow()
    new = []
    for pid, name, data, ptype, created, updated in rows:
        if pid in have:
            report.existing["style_presets"] += 1
            continue
        if ptype == "default":
            report.skip(
                "style_preset", str(name), "built into InvokeAI: default presets ship with it"
            )
            continue
        try:
            d = json.loads(data) if data else {}
        except ValueError as e:
            report.skip("style_preset", str(name), f"unreadable preset_data JSON: {e}")
            continue
        image = copy_aside(
            src.style_preset_images_dir / f"{pid}.webp", catalog.root / "style_presets"
        )
        c = parse_time(created) or now
        new.append(
            [
                pid,
                str(name),
                str(d.get("positive_prompt") or ""),
                str(d.get("negative_prompt") or ""),
                str(ptype or "user"),
                image,
                c,
                parse_time(updated) or c,
            ]
        )
    if new:
        with catalog.db.transaction() as db:
            db.executemany(
                "INSERT INTO style_presets (id, name, positive_prompt, negative_prompt, type, "
                "image, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                new,
            )
    report.added["style_presets"] += len(new)
