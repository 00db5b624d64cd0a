"""The gallery tallies (pre-aggregated counts per time bucket) equal a fresh count after
random inserts, deletes, board moves, stars, category changes and board deletes; and gallery
pages and totals served from them equal a plain ``ORDER BY ... LIMIT ... OFFSET`` over the
images table. Buckets are made tiny so that splits, compaction and pages spanning several
buckets all happen on a few hundred rows."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from invoke_nb.catalog import Catalog, ImageQuery, tallies
from invoke_nb.catalog.images import ARROW_SCHEMA

CATEGORIES = ["general", "general", "general", "user", "control", "mask", "other"]
T0 = datetime(2024, 3, 1)


def random_rows(rnd: random.Random, n: int, boards: list[str | None]) -> list[dict]:
    rows = []
    for _ in range(n):
        # times on a coarse grid (ties happen) and out of order (old images arrive late)
        created = T0 + timedelta(seconds=rnd.randrange(400) * 30, microseconds=rnd.choice([0, 7]))
        rows.append(
            {
                "image_name": f"{uuid.UUID(int=rnd.getrandbits(128))}.png",
                "width": 8,
                "height": 8,
                "image_category": rnd.choice(CATEGORIES),
                "is_intermediate": rnd.random() < 0.1,
                "starred": rnd.random() < 0.2,
                "board_id": rnd.choice(boards),
                "created_at": created,
                "updated_at": created,
                "deleted_at": created if rnd.random() < 0.03 else None,
                "model_name": rnd.choice([None, "sdxl-base", "flux-dev"]),
            }
        )
    return rows


def rows_of(cat: Catalog, sql: str, params: list | None = None) -> list[tuple]:
    """A query's rows on the catalog's own connection (quicker than the sandbox of
    ``cat.sql``, which opens the file for each query)."""
    with cat.db.connection() as db:
        return db.execute(sql, params or []).fetchall()


def arrow_rows(rows: list[dict]) -> pa.Table:
    """Rows as an Arrow table of just their columns (as an import's batch holds them)."""
    schema = pa.schema([ARROW_SCHEMA.field(c) for c in rows[0]])
    return pa.Table.from_pylist(rows, schema=schema)


def fresh_counts(cat: Catalog) -> dict[tuple, int]:
    """Per (bucket, board, category, intermediate, starred): counted from the images."""
    rows = rows_of(
        cat,
        "SELECT b.lo, board_id, image_category, is_intermediate, starred, count(*) FROM "
        "(SELECT epoch_us(created_at) t, * FROM images WHERE deleted_at IS NULL) i "
        "ASOF JOIN gallery_buckets b ON i.t >= b.lo GROUP BY ALL",
    )
    return {tuple(r[:5]): r[5] for r in rows}


def tallied_counts(cat: Catalog) -> dict[tuple, int]:
    rows = rows_of(
        cat,
        "SELECT lo, board_id, image_category, is_intermediate, starred, sum(n) FROM "
        "gallery_tallies GROUP BY ALL HAVING sum(n) <> 0",
    )
    return {tuple(r[:5]): int(r[5]) for r in rows}


def expected_page(cat: Catalog, board: str | None, starred_first: bool, desc: bool, offset: int):
    where = ["deleted_at IS NULL", "NOT is_intermediate", "image_category = 'general'"]
    params: list = []
    if board == "none":
        where.append("board_id IS NULL")
    elif board is not None:
        where.append("board_id = ?")
        params.append(board)
    d = "DESC" if desc else "ASC"
    order = ("starred DESC, " if starred_first else "") + f"created_at {d}, image_name {d}"
    sql = f"SELECT image_name FROM images WHERE {' AND '.join(where)}"
    names = [r[0] for r in rows_of(cat, f"{sql} ORDER BY {order} LIMIT 7 OFFSET {offset}", params)]
    total = rows_of(cat, f"SELECT count(*) FROM ({sql})", params)[0][0]
    return names, total


def check(cat: Catalog, rnd: random.Random, boards: list[str | None]) -> None:
    assert tallied_counts(cat) == fresh_counts(cat)
    n = rows_of(cat, "SELECT count(*) FROM images")[0][0]
    for _ in range(4):
        board = rnd.choice([*boards, "none"])
        starred_first, desc = rnd.random() < 0.5, rnd.random() < 0.7
        offset = rnd.choice([0, 1, rnd.randrange(max(n, 1)), max(n - 5, 0)])
        names, total = expected_page(cat, board, starred_first, desc, offset)
        q = dict(
            board=board, category="images", starred_first=starred_first, offset=offset, limit=7
        )
        page = cat.images.list(order="newest" if desc else "oldest", with_total=True, **q)
        assert (page.names, page.total) == (names, total), (q, desc)
        table, total2 = cat.images.page_arrow(
            ImageQuery(**q, order="newest" if desc else "oldest", with_total=True)
        )
        assert (table.column("image_name").to_pylist(), total2) == (names, total)
        assert cat.images.count(board=board, category="images") == total


@pytest.mark.parametrize(
    ("seed", "spread", "split_every", "run_rows", "named_sort", "keys"),
    [(1, 50_000, 1, 32, 1024, False), (2, 16, 8, 2, 0, False), (3, 16, 4, 32, 0, True)],
)
def test_tallies_equal_fresh_counts(
    tmp_path: Path,
    monkeypatch,
    seed: int,
    spread: int,
    split_every: int,
    run_rows: int,
    named_sort: int,
    keys: bool,
) -> None:
    """``spread``: rows without names this far apart are fetched by name (small here, so
    both ways run); ``split_every``: how often inserts look for buckets to split;
    ``run_rows``: runs of adjacent page rows this long are read by rowid (or image id)
    range, the others by name (2 here: pages of 7 rows mix both in one statement);
    ``named_sort``: slices sorting at most this many rows take names (0: only streams
    spread over many buckets); ``keys``: pages come from the gallery's in-memory keys
    (catalog/gallery_keys.py), else from the tallies' SQL paths."""
    from invoke_nb.catalog import images

    monkeypatch.setattr(tallies, "BUCKET_ROWS", 8)
    monkeypatch.setattr(tallies, "SPLIT_EVERY", split_every)
    monkeypatch.setattr(images, "SPREAD", spread)
    monkeypatch.setattr(images, "RUN_ROWS", run_rows)
    monkeypatch.setattr(images, "NAMED_SORT", named_sort)
    rnd = random.Random(seed)
    cat = Catalog(tmp_path / "studio")
    cat.images.gallery_keys.enabled = keys
    try:
        boards: list[str | None] = [None, *(cat.boards.create(f"b{i}").board_id for i in range(3))]
        check(cat, rnd, boards)
        for _step in range(20):
            names = [r[0] for r in rows_of(cat, "SELECT image_name FROM images")]
            op = rnd.choice(
                ["insert", "insert", "bulk", "delete", "move", "star", "update", "board"]
            )
            some = rnd.sample(names, min(len(names), rnd.randint(1, 12))) if names else []
            if op == "insert":
                cat.images.insert_records(random_rows(rnd, rnd.randint(1, 12), boards))
            elif op == "bulk":
                rows = random_rows(rnd, rnd.randint(20, 80), boards)
                cat.images.insert_arrow(arrow_rows(rows))
            elif op == "delete" and some:
                cat.images.delete(some)
            elif op == "move" and some:
                cat.images.move_to_board(some, rnd.choice(boards))
            elif op == "star" and some:
                cat.images.star(some, rnd.random() < 0.5)
            elif op == "update" and some:
                cat.images.update(
                    some[0],
                    image_category=rnd.choice(CATEGORIES),
                    is_intermediate=rnd.random() < 0.3,
                )
            elif op == "board" and len(boards) > 2:
                gone = rnd.choice(boards[1:])
                cat.boards.delete(gone, delete_images=rnd.random() < 0.5)
                boards.remove(gone)
                boards.append(cat.boards.create(f"new {_step}").board_id)
            check(cat, rnd, boards)
        assert rows_of(cat, "SELECT count(*) FROM gallery_buckets")[0][0] > 3  # splits
    finally:
        cat.close()


def test_rows_an_import_left_uncounted(tmp_path: Path) -> None:
    """Rows inserted without counting them (an import between batches) leave the tallies
    behind: queries fall back to scanning and stay exact; catch_up counts them."""
    rnd = random.Random(9)
    cat = Catalog(tmp_path / "studio")
    try:
        boards: list[str | None] = [None, cat.boards.create("b").board_id]
        cat.images.insert_records(random_rows(rnd, 30, boards))
        with cat.db.transaction() as db:  # what an import's batch does: rows only
            db.register("_rows", arrow_rows(random_rows(rnd, 20, boards)))
            cols = ", ".join(random_rows(rnd, 1, boards)[0])
            db.execute(f"INSERT INTO images ({cols}) SELECT {cols} FROM _rows")
            db.unregister("_rows")
            assert not tallies.ready(db)
        for board in [*boards, "none"]:
            names, total = expected_page(cat, board, True, True, 3)
            page = cat.images.list(
                board=board,
                category="images",
                starred_first=True,
                offset=3,
                limit=7,
                with_total=True,
            )
            assert (page.names, page.total) == (names, total)
        listed = {b.board_id: b.image_count for b in cat.boards.list()}
        with cat.db.transaction() as db:
            assert tallies.catch_up(db) == 20
            assert tallies.ready(db)
        assert {b.board_id: b.image_count for b in cat.boards.list()} == listed
        check(cat, rnd, boards)
    finally:
        cat.close()


def test_migration_counts_an_existing_catalog(tmp_path: Path) -> None:
    """A catalog made before the tallies gets them counted by the migration."""
    from invoke_nb.catalog import migrations

    rnd = random.Random(4)
    root = tmp_path / "studio"
    root.mkdir()
    conn = duckdb.connect(str(root / "catalog.duckdb"))
    migrations.migrate(conn, target=6)  # the catalog as code before the tallies made it
    conn.execute("INSERT INTO boards (board_id, board_name, created_at, updated_at) "
                 "VALUES ('b', 'b', now(), now())")  # fmt: skip
    boards: list[str | None] = [None, "b"]
    conn.register("rows", pa.Table.from_pylist(random_rows(rnd, 50, boards)))
    conn.execute("INSERT INTO images BY NAME SELECT * FROM rows")
    conn.close()
    cat = Catalog(root)
    try:
        assert 7 in cat.applied_migrations
        check(cat, rnd, boards)
    finally:
        cat.close()


def test_cached_counts_follow_other_writers_and_rollbacks(tmp_path: Path, monkeypatch) -> None:
    """Bucket and board counts are kept per process while the tallies' version stays the
    same: a second catalog on the same file (as another kernel would be) that stars, moves,
    inserts and deletes changes the version, and the first catalog's next pages and board
    counts show it; a version seen inside a transaction that rolled back is never reused."""
    monkeypatch.setattr(tallies, "BUCKET_ROWS", 8)
    rnd = random.Random(11)
    root = tmp_path / "studio"
    reader, writer = Catalog(root), Catalog(root)
    try:
        boards: list[str | None] = [
            None,
            *(writer.boards.create(f"b{i}").board_id for i in range(2)),
        ]
        writer.images.insert_records(random_rows(rnd, 60, boards))

        def same_as_fresh() -> None:
            for board in [*boards, "none"]:
                names, total = expected_page(reader, board, True, True, 0)
                page = reader.images.list(
                    board=board, category="images", starred_first=True, limit=7, with_total=True
                )
                assert (page.names, page.total) == (names, total)
            counted = rows_of(
                reader,
                "SELECT board_id, count(*) FROM images WHERE board_id IS NOT NULL AND "
                "image_category = 'general' AND NOT is_intermediate AND deleted_at IS NULL "
                "GROUP BY 1",
            )
            listed = {b.board_id: b.image_count for b in reader.boards.list()}
            assert listed == {b: dict(counted).get(b, 0) for b in boards if b is not None}
            by_model = rows_of(
                reader,
                "SELECT model_name, count(*) FROM images WHERE NOT is_intermediate GROUP BY 1",
            )
            assert reader.images.count_by_model() == dict(by_model)

        same_as_fresh()
        version = reader.images.tally_cache.version
        names = [r[0] for r in rows_of(writer, "SELECT image_name FROM images")]
        writer.images.star(names[:10])
        writer.images.move_to_board(names[10:20], boards[1])
        writer.images.insert_records(random_rows(rnd, 5, boards))
        writer.images.delete(names[20:25])
        same_as_fresh()
        assert reader.images.tally_cache.version != version

        # a change seen inside a transaction that then rolls back
        with pytest.raises(RuntimeError), reader.db.transaction():
            reader.images.unstar(names[:10])
            reader.images.list(category="images", starred_first=True, limit=7, with_total=True)
            reader.boards.list()
            raise RuntimeError("roll back")
        same_as_fresh()
    finally:
        reader.close()
        writer.close()
