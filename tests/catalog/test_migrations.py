"""Migrations: from every earlier version to the latest, data kept; newer files refused."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from catalog_data import pixel_image

from invoke_nb.catalog import LATEST_VERSION, Catalog, CatalogVersionError
from invoke_nb.catalog import migrations as mig

T0 = datetime(2025, 5, 1, 12, 0, 0)


def _seed(conn: duckdb.DuckDBPyConnection, version: int) -> None:
    """Rows as code at ``version`` would have written them."""
    if version >= 1:
        conn.execute(
            "INSERT INTO boards VALUES ('b1', 'Old board', NULL, FALSE, ?, ?, NULL)", [T0, T0]
        )
        conn.execute(
            "INSERT INTO images (image_name, width, height, created_at, updated_at, board_id, "
            "positive_prompt, seed, starred) VALUES ('old.png', 8, 8, ?, ?, 'b1', 'an old one', 9, TRUE)",
            [T0, T0],
        )
    if version >= 2:
        conn.execute(
            "INSERT INTO workflows (workflow_id, name, workflow, created_at, updated_at) "
            "VALUES ('w1', 'Old wf', '{\"nodes\": []}', ?, ?)",
            [T0, T0],
        )
        conn.execute("INSERT INTO client_state VALUES ('k', '[1, 2]', ?)", [T0])


# versions need not be contiguous (migrations are numbered by the branch that adds them)
VERSIONS = [m.version for m in mig.MIGRATIONS]


@pytest.mark.parametrize("start", [0, *VERSIONS[:-1]])
def test_upgrade_from_every_earlier_version(tmp_path: Path, start: int) -> None:
    root = tmp_path / "studio"
    root.mkdir()
    conn = duckdb.connect(str(root / "catalog.duckdb"))
    assert mig.migrate(conn, target=start) == [v for v in VERSIONS if v <= start]
    assert mig.current_version(conn) == start
    _seed(conn, start)
    conn.close()

    cat = Catalog(root)
    assert cat.applied_migrations == [v for v in VERSIONS if v > start]
    versions = cat.sql("SELECT version FROM schema_version ORDER BY version").fetchall()
    assert [v for (v,) in versions] == VERSIONS
    if start >= 1:
        old = cat.images.get("old.png")
        assert (old.positive_prompt, old.seed, old.starred, old.board_id) == (
            "an old one",
            9,
            True,
            "b1",
        )
        assert old.graph_hash is None and old.source is None  # columns added by migration 2
        assert cat.boards.get("b1").image_count == 1
    if start >= 2:
        assert cat.workflows.get("w1").workflow == {"nodes": []}
        assert cat.client_state.get("k") == [1, 2]
    # every table works after the upgrade
    rec = cat.images.save(pixel_image((1, 2, 3)), metadata={"seed": 1})
    assert cat.images.get(rec.image_name).seed == 1
    assert cat.queue.enqueue([{"x": 1}]) == [1]
    cat.close()
    again = Catalog(root)
    assert again.applied_migrations == []
    again.close()


def test_newer_file_is_refused_untouched(tmp_path: Path) -> None:
    root = tmp_path / "studio"
    Catalog(root).close()
    conn = duckdb.connect(str(root / "catalog.duckdb"))
    conn.execute(
        "INSERT INTO schema_version VALUES (?, 'from the future', ?)", [LATEST_VERSION + 1, T0]
    )
    conn.close()
    with pytest.raises(CatalogVersionError, match=f"schema version {LATEST_VERSION + 1}"):
        Catalog(root)
    conn = duckdb.connect(str(root / "catalog.duckdb"))
    assert mig.current_version(conn) == LATEST_VERSION + 1
    conn.close()


def test_failed_migration_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "studio"
    Catalog(root).close()

    def broken(conn: duckdb.DuckDBPyConnection) -> None:
        conn.execute("CREATE TABLE half_done (x INTEGER)")
        conn.execute("SELECT * FROM no_such_table")

    monkeypatch.setattr(
        mig, "MIGRATIONS", [*mig.MIGRATIONS, mig.Migration(LATEST_VERSION + 1, "broken", broken)]
    )
    monkeypatch.setattr(mig, "LATEST_VERSION", LATEST_VERSION + 1)
    with pytest.raises(duckdb.CatalogException, match="no_such_table"):
        Catalog(root)
    monkeypatch.undo()
    conn = duckdb.connect(str(root / "catalog.duckdb"))
    assert mig.current_version(conn) == LATEST_VERSION
    tables = {
        t for (t,) in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    assert "half_done" not in tables
    conn.close()
