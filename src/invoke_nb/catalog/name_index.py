"""The images table's ART indexes, and building them once after a bulk import.

Growing DuckDB's ART index row by row costs ~2.8 s per million image names; building it over
rows already in the table costs ~0.5 s. An import into an empty catalog therefore drops the
indexes of :data:`BULK_INDEXES` first (:func:`drop`) and builds them after the last batch
(:func:`build`). Names stay unique without their index meanwhile: InvokeAI's own table has
them as its primary key, and nothing else inserts but this process's saves of new, random
names. A process killed mid-import leaves the catalog without them; :func:`ensure`, called
whenever a catalog opens, builds them again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, NamedTuple

import duckdb

from invoke_nb.catalog import gallery_keys
from invoke_nb.catalog.connection import first
from invoke_nb.catalog.migrations import ID_INDEX, NAME_INDEX

__all__ = [
    "BULK_INDEXES", "ImageIndex", "build", "build_all", "drop", "ensure", "exists", "keep_first",
]  # fmt: skip


class ImageIndex(NamedTuple):
    """An index on one column of ``images`` that a bulk import builds after its rows."""

    name: str
    column: str
    unique: bool = False


BULK_INDEXES: tuple[ImageIndex, ...] = (
    ImageIndex(NAME_INDEX, "image_name", unique=True),
    ImageIndex(ID_INDEX, "image_id", unique=False),
)  # fmt: skip
"""Every index on ``images`` (the migrations create them; add one here with its migration)."""


def exists(conn: Any, name: str = NAME_INDEX) -> bool:
    """Whether the images table has the index ``name``."""
    row = first(conn.execute("SELECT count(*) FROM duckdb_indexes() WHERE index_name = ?", [name]))
    return bool(row[0])


def drop(conn: Any, indexes: tuple[ImageIndex, ...] = BULK_INDEXES) -> None:
    """Drop ``indexes`` (those that exist) before a bulk insert."""
    for index in indexes:
        conn.execute(f"DROP INDEX IF EXISTS {index.name}")


def build(conn: Any, indexes: tuple[ImageIndex, ...] = BULK_INDEXES) -> None:
    """Create ``indexes`` (those missing); a unique one over a column that holds a value
    twice raises ``duckdb.ConstraintException`` (see :func:`build_all`)."""
    for index in indexes:
        if not exists(conn, index.name):
            unique = "UNIQUE " if index.unique else ""
            conn.execute(f"CREATE {unique}INDEX {index.name} ON images ({index.column})")


def keep_first(conn: Any, indexes: tuple[ImageIndex, ...] = BULK_INDEXES) -> list[Any]:
    """Delete the later rows of each value that a unique index's column holds twice, as the
    index would have refused them; returns those values."""
    dupes: list[Any] = []
    for index in indexes:
        if index.unique and not exists(conn, index.name):
            dupes += _keep_first(conn, index.column)
    return dupes


def build_all(
    transaction: Callable[[], AbstractContextManager[Any]],
    indexes: tuple[ImageIndex, ...] = BULK_INDEXES,
    also: Callable[[Any], None] | None = None,
) -> list[Any]:
    """Build the missing ``indexes`` in a transaction from ``transaction()`` (a context
    manager yielding a connection inside BEGIN ... COMMIT, rolled back on an exception),
    with ``also(conn)`` in the same transaction; returns the values found twice.

    The common case, no value twice, costs no search for them: only when a unique index
    refuses its column are its later rows deleted (:func:`keep_first`), in a transaction of
    their own (DuckDB's CREATE INDEX still sees rows deleted in its own transaction), and
    everything tried again."""
    try:
        with transaction() as conn:
            build(conn, indexes)
            if also is not None:
                also(conn)
        return []
    except duckdb.ConstraintException:
        pass
    with transaction() as conn:
        dupes = keep_first(conn, indexes)
    with transaction() as conn:
        build(conn, indexes)
        if also is not None:
            also(conn)
    return dupes


def _keep_first(conn: Any, column: str) -> list[Any]:
    dupes = [
        r[0]
        for r in conn.execute(
            f"SELECT {column} FROM images GROUP BY {column} HAVING count(*) > 1"
        ).fetchall()
    ]
    if dupes:
        conn.execute(
            "DELETE FROM images WHERE rowid IN (SELECT rowid FROM (SELECT rowid, row_number() "
            f"OVER (PARTITION BY {column} ORDER BY rowid) AS k FROM images "
            f"WHERE list_contains(?, {column})) WHERE k > 1)",
            [dupes],
        )
        gallery_keys.log_all(conn)  # rows went: every process's gallery keys read again
    return dupes


def ensure(conn: Any) -> list[Any]:
    """Build the indexes a bulk import was cut short before it could (see module doc);
    returns the names it found twice (their later rows deleted)."""
    if all(exists(conn, index.name) for index in BULK_INDEXES):
        return []
    return build_all(lambda: _transaction(conn))


@contextlib.contextmanager
def _transaction(conn: Any) -> Iterator[Any]:
    conn.execute("BEGIN TRANSACTION")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
