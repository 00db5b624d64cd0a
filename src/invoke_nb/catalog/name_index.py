"""The unique index on image names, and building it once after a bulk import.

Growing DuckDB's ART index row by row costs ~2.8 s per million image names; building it over
rows already in the table costs ~0.7 s. An import into an empty catalog therefore drops the
index first (:func:`deferred`) and builds it after the last batch. Names stay unique without
it: InvokeAI's own table has them as its primary key, and nothing else inserts meanwhile but
this process's saves of new, random names. A process killed mid-import leaves the catalog
without the index; :func:`ensure`, called whenever a catalog opens, builds it again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from invoke_nb.catalog import gallery_keys
from invoke_nb.catalog.connection import first
from invoke_nb.catalog.migrations import NAME_INDEX

__all__ = ["build", "deferred", "ensure", "exists"]


def exists(conn: Any) -> bool:
    """Whether the images table has its name index."""
    row = first(
        conn.execute("SELECT count(*) FROM duckdb_indexes() WHERE index_name = ?", [NAME_INDEX])
    )
    return bool(row[0])


def build(conn: Any) -> list[str]:
    """Create the index; a name held by several rows keeps its first row (the others are
    deleted, their names returned), as a unique index must."""
    dupes = [
        r[0]
        for r in conn.execute(
            "SELECT image_name FROM images GROUP BY image_name HAVING count(*) > 1"
        ).fetchall()
    ]
    if dupes:
        conn.execute(
            "DELETE FROM images WHERE rowid IN (SELECT rowid FROM (SELECT rowid, row_number() "
            "OVER (PARTITION BY image_name ORDER BY rowid) AS k FROM images "
            "WHERE list_contains(?, image_name)) WHERE k > 1)",
            [dupes],
        )
        gallery_keys.log_all(conn)  # rows went: every process's gallery keys read again
    conn.execute(f"CREATE UNIQUE INDEX {NAME_INDEX} ON images (image_name)")
    return dupes


def ensure(conn: Any) -> list[str]:
    """Build the index if a bulk import was cut short before it could (see module doc)."""
    if exists(conn):
        return []
    conn.execute("BEGIN TRANSACTION")
    try:
        dupes = build(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return dupes


@contextlib.contextmanager
def deferred(db: Any) -> Iterator[list[str]]:
    """Without the name index inside the block, built at its end (also on errors); yields a
    list that then holds the names found twice (their later rows were deleted)."""
    with db.transaction() as conn:
        conn.execute(f"DROP INDEX IF EXISTS {NAME_INDEX}")
    dupes: list[str] = []
    try:
        yield dupes
    finally:
        with db.transaction() as conn:
            dupes += build(conn)
