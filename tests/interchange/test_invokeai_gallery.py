"""The gallery after an InvokeAI import answers as InvokeAI does on the same library: its
search (``metadata LIKE`` or ``created_at LIKE``) and its board counts (images and assets
apart), with InvokeAI's own SQL run on its database as the oracle."""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from invokeai_root import FakeInvokeAIRoot, make_invokeai_root

from invoke_nb.catalog import Catalog
from invoke_nb.interchange.invokeai import import_invokeai

WORDS = ["red", "castle", "redwood", "cat", "catalog", "blue", "lighthouse", "fog", "85mm"]
MODELS = [("Juggernaut XL v9", "sdxl"), ("DreamShaper 8", "sd-1")]
QUERIES = [
    "red", "castle", "cat", "CAT", "wood", "lighthouse", "red castle", "fog, red", "85mm",
    "juggernaut", "dreamshaper 8", "sdxl", "euler", "2024-05-02", "10:0", "positive_prompt",
    "seed", "no such word", ",", '"sd-1"',
]  # fmt: skip


@pytest.fixture
def library(tmp_path: Path) -> Iterator[tuple[FakeInvokeAIRoot, Catalog]]:
    """60 images in InvokeAI's schema: prompts from a small vocabulary, 3 boards, assets,
    intermediates and starred images; imported (records only) into a catalog."""
    rnd = random.Random(5)
    ia = make_invokeai_root(tmp_path / "invokeai")
    boards = [ia.add_board(f"board {i}") for i in range(3)]
    for i in range(60):
        model, base = rnd.choice(MODELS)
        prompt = ", ".join(rnd.choice(WORDS) for _ in range(rnd.randint(1, 5)))
        ia.add_image(
            metadata={
                "positive_prompt": prompt,
                "seed": rnd.randrange(10**6),
                "scheduler": rnd.choice(["euler", "ddim"]),
                "model": {"key": f"k{base}", "name": model, "base": base, "type": "main"},
            },
            starred=rnd.random() < 0.2,
            intermediate=rnd.random() < 0.1,
            category=rnd.choice(["general"] * 4 + ["user", "control"]),
            created_at=f"2024-05-0{1 + i // 20} 10:{i % 60:02d}:00.000",
            board_id=rnd.choice([None, *boards]),
            write_file=False,
        )
    cat = Catalog(tmp_path / "studio")
    import_invokeai(cat, ia.root, files="none", progress=False)
    yield ia, cat
    cat.close()
    ia.close()


def invokeai_search(db: sqlite3.Connection, term: str) -> tuple[list[str], int]:
    """The gallery page and total InvokeAI's image-records service gives for a search
    (general images, no intermediates, starred first, newest first)."""
    where = (
        "FROM images LEFT JOIN board_images ON board_images.image_name = images.image_name "
        "WHERE images.image_category IN ('general') AND images.is_intermediate = 0 "
        "AND (images.metadata LIKE ? OR images.created_at LIKE ?)"
    )
    params = [f"%{term.lower()}%"] * 2
    names = db.execute(
        f"SELECT images.image_name {where} "
        "ORDER BY images.starred DESC, images.created_at DESC LIMIT 100",
        params,
    ).fetchall()
    total = db.execute(f"SELECT count(*) {where}", params).fetchone()[0]
    return [n for (n,) in names], total


def test_search_equals_invokeai_search(library: tuple[FakeInvokeAIRoot, Catalog]) -> None:
    ia, cat = library
    found_some = 0
    for term in QUERIES:
        names, total = invokeai_search(ia.db, term)
        page = cat.images.list(search=term, category="general", starred_first=True, with_total=True)
        assert (page.names, page.total) == (names, total), term
        found_some += total > 0
    assert found_some >= 15  # the queries do find images (and equally)


def test_search_with_key_names_stored_negative(
    library: tuple[FakeInvokeAIRoot, Catalog], tmp_path: Path, monkeypatch
) -> None:
    """When the import is large enough to store the terms most rows hold as the rows that
    lack them (the JSON key names, ``main``, ...), searches for those terms and for parts of
    them still equal InvokeAI's."""
    from invoke_nb.catalog import search

    monkeypatch.setattr(search, "NEGATIVE_MIN_ROWS", 20)
    monkeypatch.setattr(search, "SMALL_INSERT", 4)
    ia, _ = library
    cat = Catalog(tmp_path / "negative")
    try:
        import_invokeai(cat, ia.root, files="none", progress=False, index=True)
        negative = {
            r[0] for r in cat.sql("SELECT term FROM search_terms WHERE negative").fetchall()
        }
        assert {"positive", "prompt", "seed", "model", "main"} <= negative
        extra = ["prompt", "model", "main", "ain", "type", "scheduler euler", "k"]
        for term in [*QUERIES, *extra]:
            names, total = invokeai_search(ia.db, term)
            page = cat.images.list(
                search=term, category="general", starred_first=True, with_total=True
            )
            assert (page.names, page.total) == (names, total), term
    finally:
        cat.close()


@pytest.mark.parametrize("chunk", [None, 16])
def test_search_before_the_index_catches_up(
    library: tuple[FakeInvokeAIRoot, Catalog], tmp_path: Path, monkeypatch, chunk
) -> None:
    """An import that leaves the term index for later (``index=False``) still searches
    exactly: rows above the watermark are checked as written, then indexed on catch-up (in
    Python for a few rows; set-based in runs of ``INDEX_CHUNK`` ids for many)."""
    from invoke_nb.catalog import search

    if chunk:
        monkeypatch.setattr(search, "SMALL_INSERT", 4)
        monkeypatch.setattr(search, "INDEX_CHUNK", chunk)
    ia, _ = library
    cat = Catalog(tmp_path / "deferred")
    try:
        import_invokeai(cat, ia.root, files="none", progress=False, index=False)
        assert cat.sql("SELECT count(*) FROM image_terms").fetchall() == [(0,)]
        for round_ in ("deferred", "caught up"):
            for term in QUERIES:
                names, total = invokeai_search(ia.db, term)
                page = cat.images.list(
                    search=term, category="general", starred_first=True, with_total=True
                )
                assert (page.names, page.total) == (names, total), (round_, term)
            with cat.db.transaction() as db:
                runs = 0
                while search.index_some(db):
                    runs += 1
                assert search.lag(db) == 0
            assert runs == {"deferred": -(-60 // (chunk or 60)), "caught up": 0}[round_]
        assert cat.sql("SELECT count(*) FROM image_terms").fetchall()[0][0] > 60
    finally:
        cat.close()


@pytest.mark.parametrize("runs", [False, True])
def test_background_index(
    library: tuple[FakeInvokeAIRoot, Catalog], tmp_path: Path, monkeypatch, runs: bool
) -> None:
    """The default import returns with its rows in and lets the catalog's background indexer
    split them; searches are exact before, while and after it runs, and a catalog opened on
    a file left unindexed starts the indexer itself. ``runs``: in runs of 16 ids split on the
    indexer's private DuckDB, key names turned negative (else: a few rows, split at once)."""
    from invoke_nb.catalog import indexer, search

    if runs:
        monkeypatch.setattr(search, "SMALL_INSERT", 4)
        monkeypatch.setattr(search, "NEGATIVE_MIN_ROWS", 10)
        monkeypatch.setattr(indexer, "RUN_IDS", 16)
    ia, _ = library
    root = tmp_path / "background"
    cat = Catalog(root)
    try:
        import_invokeai(cat, ia.root, files="none", progress=False, index=False)
        assert cat.indexer.lag() == 60 and not cat.indexer.running
    finally:
        cat.close()
    cat = Catalog(root)  # opening starts it
    try:
        for term in QUERIES:
            names, total = invokeai_search(ia.db, term)
            page = cat.images.list(search=term, category="general", starred_first=True,
                                   with_total=True)  # fmt: skip
            assert (page.names, page.total) == (names, total), term
        assert cat.indexer.wait(60) and cat.indexer.error is None
        assert cat.indexer.lag() == 0
        negative = rows_of_sql(cat, "SELECT term FROM search_terms WHERE negative")
        assert ({"positive", "prompt", "model"} <= negative) == runs
        for term in QUERIES:
            page = cat.images.list(search=term, category="general", starred_first=True)
            assert page.names == invokeai_search(ia.db, term)[0], term
    finally:
        cat.close()
    other = Catalog(tmp_path / "default")
    try:
        report = import_invokeai(other, ia.root, files="none", progress=False)
        assert report.index_seconds == 0.0  # not waited for
        assert other.indexer.wait(60) and other.indexer.lag() == 0
        page = other.images.list(search="castle", category="general", starred_first=True,
                                 with_total=True)  # fmt: skip
        assert (page.names, page.total) == invokeai_search(ia.db, "castle")
    finally:
        other.close()


def rows_of_sql(cat: Catalog, sql: str) -> set:
    return {r[0] for r in cat.sql(sql).fetchall()}


def invokeai_board_counts(db: sqlite3.Connection) -> dict[str, tuple[int, int]]:
    """Per board, InvokeAI's (image_count, asset_count): members that are not intermediates,
    in the general category / in the asset categories (control, mask, user, other)."""
    out = {}
    for (board_id,) in db.execute("SELECT board_id FROM boards").fetchall():
        counts = []
        for cats in (("general",), ("control", "mask", "user", "other")):
            marks = ", ".join("?" * len(cats))
            counts.append(
                db.execute(
                    "SELECT count(*) FROM board_images CROSS JOIN images "
                    "ON board_images.image_name = images.image_name "
                    f"WHERE images.is_intermediate = FALSE AND images.image_category IN ({marks}) "
                    "AND board_images.board_id = ?",
                    [*cats, board_id],
                ).fetchone()[0]
            )
        out[board_id] = (counts[0], counts[1])
    return out


def test_board_counts_equal_invokeai(library: tuple[FakeInvokeAIRoot, Catalog]) -> None:
    ia, cat = library
    expected = invokeai_board_counts(ia.db)
    ours = {b.board_id: (b.image_count, b.asset_count) for b in cat.boards.list()}
    assert ours == expected
    assert any(assets for _, assets in expected.values())
    assert json.dumps(sorted(ours.items()))  # plain ints, serialisable for the widget


def invokeai_uncategorized(db: sqlite3.Connection) -> tuple[int, int]:
    """InvokeAI's "Uncategorized" counts: images on no board, images and assets apart."""
    counts = []
    for cats in (("general",), ("control", "mask", "user", "other")):
        marks = ", ".join("?" * len(cats))
        counts.append(
            db.execute(
                "SELECT count(*) FROM images LEFT JOIN board_images USING (image_name) "
                f"WHERE board_images.board_id IS NULL AND images.is_intermediate = FALSE "
                f"AND images.image_category IN ({marks})",
                list(cats),
            ).fetchone()[0]
        )
    return counts[0], counts[1]


def test_board_counts_follow_changes_as_invokeai(library: tuple[FakeInvokeAIRoot, Catalog]) -> None:
    """The same moves, category changes, intermediate flags and deletes on both sides (ours
    through the repositories, which keep the gallery tallies; InvokeAI's as its services
    write its tables): board counts, images and assets apart, stay equal to InvokeAI's."""
    from invoke_nb.catalog import tallies

    ia, cat = library
    with cat.db.connection() as db:
        assert tallies.ready(db)  # the import counted its rows: counts come from the tallies
    rnd = random.Random(11)
    boards = [b for (b,) in ia.db.execute("SELECT board_id FROM boards").fetchall()]
    for _ in range(25):
        names = [n for (n,) in ia.db.execute("SELECT image_name FROM images").fetchall()]
        some = rnd.sample(names, rnd.randint(1, 4))
        marks = ", ".join("?" * len(some))
        op = rnd.choice(["move", "move", "category", "intermediate", "delete"])
        if op == "move":
            board = rnd.choice([None, *boards])
            cat.images.move_to_board(some, board)
            ia.db.execute(f"DELETE FROM board_images WHERE image_name IN ({marks})", some)
            if board is not None:
                ia.db.executemany(
                    "INSERT INTO board_images (board_id, image_name) VALUES (?, ?)",
                    [(board, n) for n in some],
                )
        elif op == "category":
            category = rnd.choice(["general", "user", "control", "mask"])
            cat.images.update(some[0], image_category=category)
            ia.db.execute(
                "UPDATE images SET image_category = ? WHERE image_name = ?", [category, some[0]]
            )
        elif op == "intermediate":
            flag = rnd.random() < 0.5
            cat.images.update(some[0], is_intermediate=flag)
            ia.db.execute(
                "UPDATE images SET is_intermediate = ? WHERE image_name = ?", [flag, some[0]]
            )
        else:
            cat.images.delete(some)
            ia.db.execute(f"DELETE FROM board_images WHERE image_name IN ({marks})", some)
            ia.db.execute(f"DELETE FROM images WHERE image_name IN ({marks})", some)
        ia.db.commit()
        ours = {b.board_id: (b.image_count, b.asset_count) for b in cat.boards.list()}
        assert ours == invokeai_board_counts(ia.db), op
        uncategorized = (
            cat.images.count(board="none", category="images"),
            cat.images.count(board="none", category="assets"),
        )
        assert uncategorized == invokeai_uncategorized(ia.db), op
