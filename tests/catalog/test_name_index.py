"""The images table's indexes dropped for a bulk insert and built again after it."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from invoke_nb.catalog import Catalog, name_index
from invoke_nb.catalog.migrations import NAME_INDEX

EXTRA = name_index.ImageIndex("images_test_model", "model_name", unique=False)
INDEXES = (*name_index.BULK_INDEXES, EXTRA)


def insert(conn: duckdb.DuckDBPyConnection, names: list[str]) -> None:
    conn.executemany(
        "INSERT INTO images (image_name, width, height, created_at, updated_at, model_name) "
        "VALUES (?, ?, 1, now(), now(), 'm')",
        [(n, i) for i, n in enumerate(names)],
    )


def indexes(conn: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT index_name FROM duckdb_indexes()").fetchall()}


def test_drop_then_build_a_list(cat: Catalog) -> None:
    with cat.db.transaction() as conn:
        name_index.build(conn, INDEXES)
        assert {NAME_INDEX, EXTRA.name} <= indexes(conn)
    with cat.db.transaction() as conn:  # dropped as an import does: committed before it
        name_index.drop(conn, INDEXES)
        assert not {NAME_INDEX, EXTRA.name} & indexes(conn)
    with cat.db.transaction() as conn:
        # without the unique index, a name can arrive twice; building it keeps the first row
        insert(conn, ["a.png", "b.png", "a.png", "c.png", "b.png"])
    counted = []
    dupes = name_index.build_all(cat.db.transaction, INDEXES, also=counted.append)
    assert sorted(dupes) == ["a.png", "b.png"] and len(counted) == 1
    with cat.db.transaction() as conn:
        assert {NAME_INDEX, EXTRA.name} <= indexes(conn)
        rows = conn.execute("SELECT image_name, width FROM images ORDER BY rowid").fetchall()
        assert rows == [("a.png", 0), ("b.png", 1), ("c.png", 3)]
    with pytest.raises(duckdb.ConstraintException), cat.db.transaction() as conn:
        insert(conn, ["c.png"])


def test_build_skips_an_index_that_exists(cat: Catalog) -> None:
    with cat.db.transaction() as conn:
        assert NAME_INDEX in indexes(conn)
        name_index.build(conn)  # nothing to build
        assert name_index.keep_first(conn) == []  # nor to look at: the index exists
        assert NAME_INDEX in indexes(conn)


def test_a_catalog_opened_after_a_cut_short_import_builds_them(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "studio")
    with cat.db.transaction() as conn:
        name_index.drop(conn)
    with cat.db.transaction() as conn:
        insert(conn, ["a.png", "a.png"])
    cat.close()
    cat = Catalog(tmp_path / "studio")
    try:
        with cat.db.connection() as conn:
            assert {i.name for i in name_index.BULK_INDEXES} <= indexes(conn)
            assert conn.execute("SELECT count(*) FROM images").fetchone()[0] == 1
    finally:
        cat.close()
