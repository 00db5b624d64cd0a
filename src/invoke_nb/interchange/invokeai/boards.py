"""InvokeAI boards: names, covers, archived flags and times, by InvokeAI's own ids."""

from __future__ import annotations

import sqlite3
from typing import Any

from invoke_nb.catalog.records import utcnow
from invoke_nb.interchange.invokeai.root import (
    InvokeAIImportReport,
    Schema,
    existing_ids,
    parse_time,
)

__all__ = ["import_boards"]


def import_boards(
    catalog: Any, conn: sqlite3.Connection, schema: Schema, report: InvokeAIImportReport
) -> None:
    if not schema.has("boards"):
        return
    archived = schema.col("boards", "archived", "INTEGER", "0")
    rows = conn.execute(
        "SELECT board_id, board_name, cover_image_name, created_at, updated_at, deleted_at, "
        f"{archived} FROM boards"
    ).fetchall()
    have = existing_ids(catalog, "boards", "board_id", [r[0] for r in rows])
    now = utcnow()
    new = []
    for bid, name, cover, created, updated, deleted, arch in rows:
        if bid in have:
            report.existing["boards"] += 1
            continue
        if not bid or not isinstance(name, str):
            report.skip("board", str(bid), "malformed row: no board id or name")
            continue
        c = parse_time(created) or now
        new.append([bid, name, cover, bool(arch), c, parse_time(updated) or c, parse_time(deleted)])
    if new:
        # one statement: DuckDB runs executemany as one statement per row (~5 ms each)
        values = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(new))
        with catalog.db.transaction() as db:
            db.execute(
                "INSERT INTO boards (board_id, board_name, cover_image_name, archived, "
                f"created_at, updated_at, deleted_at) VALUES {values}",
                [x for row in new for x in row],
            )
    report.added["boards"] += len(new)
