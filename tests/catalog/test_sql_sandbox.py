"""``catalog.sql`` / ``studio.sql``: plain queries of the catalog, nothing else.

Each refused statement is tried for its effect too (a file written, a file read, a row gone),
so the test shows the harm did not happen, not only that an exception was raised."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from PIL import Image

from invoke_nb.catalog import Catalog, CatalogReadOnlyError


@pytest.fixture
def filled(cat: Catalog) -> Catalog:
    cat.images.save(Image.new("RGB", (4, 4)), metadata={"seed": 7, "model": {"name": "m"}})
    return cat


def _refused(cat: Catalog, query: str) -> None:
    with pytest.raises((CatalogReadOnlyError, duckdb.PermissionException)):
        cat.sql(query)


def test_explain_analyze_cannot_write_or_change(filled: Catalog, tmp_path: Path) -> None:
    target = tmp_path / "written.txt"
    for q in (
        f"EXPLAIN ANALYZE COPY (SELECT 'owned') TO '{target}'",
        "EXPLAIN ANALYZE DELETE FROM images",
        "EXPLAIN ANALYZE DROP TABLE images",
        "EXPLAIN ANALYZE CREATE TABLE t AS SELECT 1",
        "EXPLAIN ANALYZE UPDATE images SET seed = 0",
    ):
        _refused(filled, q)
    assert not target.exists()
    assert filled.images.count() == 1
    assert filled.sql("SELECT seed FROM images").fetchall() == [(7,)]
    tables = {
        r[0] for r in filled.sql("SELECT table_name FROM information_schema.tables").fetchall()
    }
    assert "images" in tables and "t" not in tables


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM read_csv('{secret}')",
        "SELECT * FROM read_text('{secret}')",
        "SELECT * FROM read_blob('{secret}')",
        "SELECT * FROM '{secret}'",
        "SELECT * FROM glob('/*')",
        "SELECT * FROM glob('{dir}/*')",
        "ATTACH '{dir}/other.db' AS o",
        "COPY (SELECT 1) TO '{dir}/out.csv'",
        "COPY images TO '{dir}/out.csv'",
        "PRAGMA version",
        "SET enable_external_access = true",
        "RESET enable_external_access",
        "INSTALL fts",
        "LOAD fts",
        "CALL pragma_version()",
        "DELETE FROM images",
        "CREATE TABLE x AS SELECT 1",
        "EXPORT DATABASE '{dir}/dump'",
        "SELECT * FROM query('SELECT * FROM read_text(''{secret}'')')",
    ],
)
def test_refused_statements(filled: Catalog, tmp_path: Path, query: str) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("token\nhunter2\n")
    _refused(filled, query.format(secret=secret, dir=tmp_path))
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "dump").exists()
    assert not (tmp_path / "other.db").exists()
    assert filled.images.count() == 1


def test_relation_cannot_reach_files_either(filled: Catalog, tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("token\nhunter2\n")
    rel = filled.sql("SELECT seed FROM images")
    with pytest.raises(duckdb.PermissionException):
        rel.query("r", f"SELECT * FROM read_csv('{secret}')").fetchall()
    with pytest.raises(duckdb.PermissionException):
        rel.query("r", f"COPY (SELECT 1) TO '{tmp_path / 'x.csv'}'")
    assert not (tmp_path / "x.csv").exists()


def test_plain_queries_still_work(filled: Catalog) -> None:
    assert filled.sql("SELECT seed, model_name FROM images").fetchall() == [(7, "m")]
    assert filled.sql("FROM images SELECT count(*)").fetchall() == [(1,)]
    assert filled.sql("WITH s AS (SELECT seed FROM images) SELECT * FROM s").df()["seed"][0] == 7
    assert filled.sql("SELECT count(*) FROM images WHERE seed = ?", [7]).fetchall() == [(1,)]
    assert "images" in str(filled.sql("EXPLAIN SELECT * FROM images").fetchall())
    # the catalog keeps working with its own connection afterwards
    filled.images.save(Image.new("RGB", (4, 4)), metadata={"seed": 8})
    assert filled.sql("SELECT count(*) FROM images").fetchall() == [(2,)]


def test_two_catalogs_of_one_root_in_one_process(filled: Catalog) -> None:
    # the second Catalog's connection has the file open: the sandboxed query waits for its
    # idle release instead of failing on DuckDB's "different configuration" error
    other = Catalog(filled.root, busy_timeout=10.0, idle_release=0.2)
    try:
        assert other.images.count() == 1
        assert filled.sql("SELECT count(*) FROM images").fetchall() == [(1,)]
        assert other.sql("SELECT seed FROM images").fetchall() == [(7,)]
    finally:
        other.close()
