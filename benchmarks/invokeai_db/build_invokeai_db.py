"""Build an InvokeAI 6.14.2 library database with InvokeAI's own migrator and services.

Run with the Python of a venv that has ``invokeai==6.14.2`` (never invoke-nb's)::

    /work/ext/invokeai-6.14.2/bin/python benchmarks/invokeai_db/build_invokeai_db.py \
        /tmp/ia-1m --images 1000000

The database is made by ``init_db`` (InvokeAI's ``SqliteDatabase`` and ``SqliteMigrator``
with every registered migration). Boards are created with ``SqliteBoardRecordStorage.save``.
The first ``--service-images`` images go in one by one through ``SqliteImageRecordStorage.save``
and ``SqliteBoardImageRecordStorage.add_image_to_board`` (and ``update`` to star some),
with SQLite's trace callback recording the statements they issue; the rest are written with
those same recorded statements through ``executemany`` in batches (a single ``save`` runs at
~2,000 images/s, which would take ~9 minutes per million). Creation times are then spread
over three years, oldest first, as a library filled over time has them (InvokeAI stamps
``created_at`` with the time of insertion). Rows come from ``shapes.rows``: InvokeAI-shaped
metadata (~670 bytes), 50 boards, 20% of the images on a board, 2% starred, 1%
intermediates, 3% uploaded assets. No image files are written.
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import shapes


def _services(root: Path):  # type: ignore[no-untyped-def]
    from invokeai.app.services.board_image_records.board_image_records_sqlite import (
        SqliteBoardImageRecordStorage,
    )
    from invokeai.app.services.board_records.board_records_sqlite import SqliteBoardRecordStorage
    from invokeai.app.services.config.config_default import InvokeAIAppConfig
    from invokeai.app.services.image_files.image_files_disk import DiskImageFileStorage
    from invokeai.app.services.image_records.image_records_sqlite import SqliteImageRecordStorage
    from invokeai.app.services.shared.sqlite.sqlite_util import init_db

    config = InvokeAIAppConfig()
    config._root = root  # what ``--root`` sets on the command line
    logger = logging.getLogger("build_invokeai_db")
    image_files = DiskImageFileStorage(config.outputs_path / "images")
    db = init_db(config, logger, image_files)
    return (
        db,
        SqliteImageRecordStorage(db),
        SqliteBoardRecordStorage(db),
        SqliteBoardImageRecordStorage(db),
    )


class Recorder:
    """Stands in for the services' ``sqlite3.Connection`` and keeps the text of every statement
    their cursors execute (with its ``?`` placeholders, unlike SQLite's trace callback)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.statements: list[str] = []

    def cursor(self) -> _RecordingCursor:
        return _RecordingCursor(self._conn.cursor(), self.statements)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._conn, name)

    def find(self, start: str) -> str:
        """The last recorded statement that begins (after ``--sql``) with ``start``."""
        for sql in reversed(self.statements):
            body = sql.strip().removeprefix("--sql").strip()
            if body.upper().startswith(start.upper()):
                return sql
        raise LookupError(f"no recorded statement starts with {start!r}")


class _RecordingCursor:
    def __init__(self, cursor: sqlite3.Cursor, log: list[str]) -> None:
        self._cursor = cursor
        self._log = log

    def execute(self, sql: str, *args):  # type: ignore[no-untyped-def]
        self._log.append(sql)
        return self._cursor.execute(sql, *args)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._cursor, name)


def build(root: Path, n: int, service_images: int, batch: int) -> dict:
    from invokeai.app.services.image_records.image_records_common import (
        ImageCategory,
        ImageRecordChanges,
        ResourceOrigin,
    )

    (root / "databases").mkdir(parents=True, exist_ok=True)
    (root / "invokeai.yaml").write_text("schema_version: 4.0.3\nhost: 127.0.0.1\n")
    db, images, boards, board_images = _services(root)
    conn: sqlite3.Connection = db._conn
    board_ids = [boards.save(f"board {i:02d}", "system").board_id for i in range(50)]

    recorder = Recorder(conn)
    db._conn = recorder  # the services reach the connection through db._conn
    t0 = time.perf_counter()
    rows = shapes.rows(n, n_boards=len(board_ids))
    for k, row in enumerate(rows, 1):  # through the services, one call each
        images.save(
            image_name=row.image_name,
            image_origin=ResourceOrigin.INTERNAL if row.metadata else ResourceOrigin.EXTERNAL,
            image_category=ImageCategory(row.category),
            width=row.width,
            height=row.height,
            has_workflow=bool(row.metadata),
            is_intermediate=row.is_intermediate,
            starred=False,
            session_id=None,
            node_id=None,
            metadata=shapes.dumps(row.metadata) if row.metadata else None,
            user_id="system",
        )
        if row.starred:
            images.update(row.image_name, ImageRecordChanges(starred=True))
        if row.board is not None:
            board_images.add_image_to_board(board_ids[row.board], row.image_name)
        if k >= service_images:
            break
    db._conn = conn
    t_service = time.perf_counter() - t0
    insert_image = recorder.find("INSERT OR IGNORE INTO images")
    insert_member = recorder.find("INSERT INTO board_images")

    t1 = time.perf_counter()
    pending_images: list[tuple] = []
    pending_members: list[tuple] = []

    def flush() -> None:
        with db.transaction() as cur:
            cur.executemany(insert_image, pending_images)
            cur.executemany(insert_member, pending_members)
        pending_images.clear()
        pending_members.clear()

    for row in rows:  # the same statements, in batches
        internal = bool(row.metadata)
        pending_images.append(
            (
                row.image_name,
                ResourceOrigin.INTERNAL.value if internal else ResourceOrigin.EXTERNAL.value,
                row.category,
                row.width,
                row.height,
                None,  # node_id
                None,  # session_id
                shapes.dumps(row.metadata) if internal else None,
                row.is_intermediate,
                row.starred,
                internal,  # has_workflow
                "system",
                "",
            )
        )
        if row.board is not None:
            b = board_ids[row.board]
            pending_members.append((b, row.image_name, b))
        if len(pending_images) >= batch:
            flush()
    if pending_images:
        flush()
    t_bulk = time.perf_counter() - t1

    # a library filled over three years: InvokeAI stamps created_at at insertion time
    t2 = time.perf_counter()
    span = 3 * 365 * 24 * 3600
    with db.transaction() as cur:
        cur.execute(
            "UPDATE images SET created_at = strftime('%Y-%m-%d %H:%M:%f', '2023-01-01', "
            "'+' || ((rowid - 1) * ? / ?) || ' seconds'), updated_at = "
            "strftime('%Y-%m-%d %H:%M:%f', '2023-01-01', '+' || ((rowid - 1) * ? / ?) || ' seconds')",
            (span, float(max(n, 1)), span, float(max(n, 1))),
        )
        cur.execute(
            "UPDATE board_images SET created_at = (SELECT created_at FROM images i "
            "WHERE i.image_name = board_images.image_name), updated_at = created_at"
        )
    conn.execute("ANALYZE")
    t_times = time.perf_counter() - t2
    counts = {
        table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in ("images", "boards", "board_images")
    }
    counts["starred"] = conn.execute("SELECT count(*) FROM images WHERE starred").fetchone()[0]
    counts["avg_metadata_bytes"] = round(
        conn.execute(
            "SELECT avg(length(metadata)) FROM images WHERE metadata IS NOT NULL"
        ).fetchone()[0]
    )
    conn.close()
    return {
        **counts,
        "service_seconds": round(t_service, 1),
        "bulk_seconds": round(t_bulk, 1),
        "times_seconds": round(t_times, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path, help="the InvokeAI root to create (must not exist)")
    ap.add_argument("--images", type=int, default=1_000_000)
    ap.add_argument("--service-images", type=int, default=2000, help="saved one by one")
    ap.add_argument("--batch", type=int, default=50_000)
    args = ap.parse_args(argv)
    if args.root.exists() and any(args.root.iterdir()):
        ap.error(f"{args.root} exists and is not empty")
    t = time.perf_counter()
    facts = build(args.root, args.images, args.service_images, args.batch)
    facts["total_seconds"] = round(time.perf_counter() - t, 1)
    print(facts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
