"""The gallery's in-memory keys (catalog/gallery_keys.py) answer every page, total, cursor walk
and one-word search exactly as a plain SQL query over the images table does, while another
catalog on the same file (another kernel) inserts, stars, moves, deletes and deletes boards;
they follow those writes by reading only what changed, and read everything again when the
change log was trimmed past them."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from invoke_nb.catalog import Catalog, ImageQuery, gallery_keys

CATEGORIES = ["general", "general", "general", "user", "mask"]
WORDS = ["castle", "lighthouse", "red", "redwood", "sky"]
T0 = datetime(2024, 3, 1)


def random_rows(rnd: random.Random, n: int, boards: list[str | None], late: bool) -> list[dict]:
    """Rows on a coarse time grid (ties), newer than all before unless ``late`` (old images
    arriving late land in the middle of the arrays)."""
    rows = []
    for _ in range(n):
        step = rnd.randrange(300) if late else 300 + rnd.randrange(30)
        created = T0 + timedelta(seconds=step * 60 + rnd.randrange(3) * 60)
        prompt = " ".join(rnd.sample(WORDS, 2))
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
                "model_base": rnd.choice([None, "sdxl", "flux"]),
                "metadata": {"positive_prompt": prompt},
                "positive_prompt": prompt,
            }
        )
    return rows


def expected(cat: Catalog, q: ImageQuery) -> tuple[list[str], int]:
    """The page and total by a plain ORDER BY ... LIMIT ... OFFSET over the images table."""
    where, params = ["deleted_at IS NULL"], []
    if q.board == "none":
        where.append("board_id IS NULL")
    elif q.board is not None:
        where.append("board_id = ?")
        params.append(q.board)
    if q.starred is not None:
        where.append("starred = ?")
        params.append(q.starred)
    if q.is_intermediate is not None:
        where.append("is_intermediate = ?")
        params.append(q.is_intermediate)
    if q.categories() is not None:
        where.append("list_contains(?, image_category)")
        params.append(q.categories())
    if q.model is not None:
        where.append("(model_name = ? OR model_key = ?)")
        params += [q.model, q.model]
    if q.base is not None:
        where.append("model_base = ?")
        params.append(q.base)
    if q.since is not None:
        where.append("created_at >= ?")
        params.append(q.since)
    if q.until is not None:
        where.append("created_at < ?")
        params.append(q.until)
    if q.search is not None:
        where.append("contains(lower(metadata), ?)")
        params.append(q.search.lower())
    d = "DESC" if q.order == "newest" else "ASC"
    order = ("starred DESC, " if q.starred_first else "") + f"created_at {d}, image_name {d}"
    sql = f"SELECT image_name FROM images WHERE {' AND '.join(where)}"
    with cat.db.connection() as db:
        names = db.execute(
            f"{sql} ORDER BY {order} LIMIT {q.limit} OFFSET {q.offset}", params
        ).fetchall()
        total = db.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()[0]
    return [n for (n,) in names], total


def random_query(rnd: random.Random, boards: list[str | None], n: int) -> ImageQuery:
    since = T0 + timedelta(minutes=rnd.randrange(330)) if rnd.random() < 0.2 else None
    return ImageQuery(
        board=rnd.choice([None, None, "none", *[b for b in boards if b]]),
        starred=rnd.choice([None, None, True, False]),
        starred_first=rnd.random() < 0.5,
        order=rnd.choice(["newest", "oldest"]),
        category=rnd.choice([None, "images", "assets", "user"]),
        is_intermediate=rnd.choice([False, False, None, True]),
        model=rnd.choice([None, None, "sdxl-base", "nothing"]),
        base=rnd.choice([None, None, "flux"]),
        since=since,
        until=since + timedelta(minutes=rnd.randrange(1, 100)) if since else None,
        search=rnd.choice([None, None, *WORDS, "redw", "nowhere"]),
        offset=rnd.choice([0, 0, 1, rnd.randrange(max(n, 1))]),
        limit=rnd.choice([1, 5, 7]),
        with_total=True,
    )


def check(reader: Catalog, rnd: random.Random, boards: list[str | None]) -> None:
    with reader.db.connection() as db:
        n = db.execute("SELECT count(*) FROM images").fetchone()[0]
    for _ in range(6):
        q = random_query(rnd, boards, n)
        page = reader.images.list(q)
        assert (page.names, page.total) == expected(reader, q), q
        # whole rows as the table holds them now (rows read lately are kept per process)
        now = [reader.images.get(name).model_dump() for name in page.names]
        assert [r.model_dump() for r in page.items] == now
        for r in page.items:  # a caller's changes to its records stay its own
            r.session_id = "changed by the caller"
            if r.metadata is not None:
                r.metadata["positive_prompt"] = "changed by the caller"
        assert reader.images.count(q) == page.total, q
        table, total = reader.images.page_arrow(q, ("image_name", "starred"))
        assert (table.column("image_name").to_pylist(), total) == (page.names, page.total)
    # boards: InvokeAI's counts (images and assets apart, no intermediates) and covers
    # (the explicit one, else the newest image that is not an intermediate)
    with reader.db.connection() as db:
        rows = db.execute(
            "SELECT b.board_id, count(i.image_name) FILTER (WHERE image_category = 'general'), "
            "count(i.image_name) FILTER (WHERE image_category IN ('control','mask','user','other')), "
            "coalesce(any_value(b.cover_image_name), "
            "max({'t': i.created_at, 'n': i.image_name}).n) FROM boards b LEFT JOIN images i "
            "ON i.board_id = b.board_id AND NOT i.is_intermediate AND i.deleted_at IS NULL "
            "GROUP BY b.board_id"
        ).fetchall()
    listed = {
        b.board_id: (b.image_count, b.asset_count, b.cover_image_name) for b in reader.boards.list()
    }
    assert listed == {r[0]: tuple(r[1:]) for r in rows}
    # a walk by cursor visits every match once, in order
    q = random_query(rnd, boards, n).model_copy(update={"offset": 0, "limit": 9})
    want, _ = expected(reader, q.model_copy(update={"limit": 10**6}))
    seen: list[str] = []
    cursor = None
    for _ in range(1000):
        page = reader.images.list(q.model_copy(update={"cursor": cursor}))
        seen += page.names
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == want, q


@pytest.mark.parametrize("seed", [1, 2])
def test_keys_follow_another_writer(tmp_path: Path, monkeypatch, seed: int) -> None:
    """The reader's keys follow a writer on the same file; small changes are read as
    changes (no reload); a log trimmed past the reader makes it read everything again."""
    monkeypatch.setattr(gallery_keys, "LOG_KEEP", 16)
    rnd = random.Random(seed)
    root = tmp_path / "studio"
    reader, writer = Catalog(root), Catalog(root)
    try:
        boards: list[str | None] = [
            None,
            *(writer.boards.create(f"b{i}").board_id for i in range(3)),
        ]
        writer.images.insert_records(random_rows(rnd, 60, boards, late=True))
        check(reader, rnd, boards)
        assert reader.images.gallery_keys.loads == 1
        for step in range(14):
            with writer.db.connection() as db:
                names = [r[0] for r in db.execute("SELECT image_name FROM images").fetchall()]
            some = rnd.sample(names, min(len(names), rnd.randint(1, 6)))
            op = ["insert", "late", "star", "move", "update", "delete", "board"][step % 7]
            if op in ("insert", "late"):
                writer.images.insert_records(
                    random_rows(rnd, rnd.randint(1, 12), boards, op == "late")
                )
            elif op == "star":
                writer.images.star(some, rnd.random() < 0.5)
            elif op == "move":
                writer.images.move_to_board(some, rnd.choice(boards))
            elif op == "update":
                writer.images.update(some[0], image_category="user", is_intermediate=True)
                writer.images.update(some[-1], session_id=f"session {step}")
            elif op == "delete":
                writer.images.delete(some)
            elif op == "board":
                gone = rnd.choice(boards[1:])
                writer.boards.delete(gone, delete_images=rnd.random() < 0.5)
                boards.remove(gone)
                boards.append(writer.boards.create(f"new {step}").board_id)
            check(reader, rnd, boards)
            if step < 6:  # the log has not been trimmed yet: changes were read as changes
                assert reader.images.gallery_keys.loads == 1
        # the writer changes more rows than the log keeps while the reader looks away: the
        # reader reads everything again
        with writer.db.connection() as db:
            names = [r[0] for r in db.execute("SELECT image_name FROM images").fetchall()]
        for i in range(8):
            writer.images.star(names[i * 5 : i * 5 + 5], i % 2 == 0)
        check(reader, rnd, boards)
        assert reader.images.gallery_keys.loads > 1
        # the writer's own keys (it listed nothing yet) and the SQL paths agree too
        writer.images.gallery_keys.enabled = False
        q = ImageQuery(category="images", starred_first=True, limit=50, with_total=True)
        assert writer.images.list(q).names == reader.images.list(q).names
    finally:
        reader.close()
        writer.close()


def test_keys_stay_out_of_writing_transactions(tmp_path: Path) -> None:
    """A page listed inside a transaction that then rolls back takes the SQL path: the keys
    never hold a change that was not committed."""
    cat = Catalog(tmp_path / "studio")
    try:
        rnd = random.Random(5)
        cat.images.insert_records(random_rows(rnd, 20, [None], late=False))
        q = ImageQuery(
            category=None, is_intermediate=None, limit=100, with_total=True, starred=True
        )
        before = cat.images.list(q)
        names = cat.images.list(ImageQuery(is_intermediate=None, limit=100)).names
        with pytest.raises(RuntimeError), cat.db.transaction():
            cat.images.star(names)
            assert cat.images.list(q).total == len(names)  # seen inside, by SQL
            raise RuntimeError("roll back")
        after = cat.images.list(q)
        assert (after.names, after.total) == (before.names, before.total)
        assert after.total == expected(cat, q)[1]
    finally:
        cat.close()


def test_a_late_row_goes_among_rows_of_its_time_by_name(tmp_path: Path) -> None:
    """An image older than the newest one lands among the rows of its creation time in name
    order, also when a deleted row (nameless to the keys) lies among them."""
    cat = Catalog(tmp_path / "studio")
    try:
        t = T0 + timedelta(minutes=5)

        def row(name: str, when: datetime) -> dict:
            return {"image_name": name, "width": 8, "height": 8, "created_at": when}

        cat.images.insert_records([row("c.png", t), row("d.png", t)])
        cat.images.insert_records([row("z.png", t + timedelta(minutes=1))])
        q = ImageQuery(order="oldest", limit=10, with_total=True)
        assert cat.images.list(q).names == ["c.png", "d.png", "z.png"]  # the keys are read
        cat.images.delete("d.png")
        cat.images.insert_records([row("b.png", t), row("e.png", t)])
        page = cat.images.list(q)
        assert page.names == ["b.png", "c.png", "e.png", "z.png"] == expected(cat, q)[0]
        assert cat.images.gallery_keys.loads == 1  # placed, not read again
    finally:
        cat.close()
