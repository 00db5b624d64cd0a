"""The search term index answers exactly what a scan of the searched text answers, through
inserts (both insert paths), deletes and the migration that builds it for older catalogs."""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invoke_nb.catalog import Catalog, search
from invoke_nb.catalog.migrations import migrate

VOCAB = ["red", "castle", "redwood", "Cat", "catalog", "blue", "sky-line", "a1", "x_y", "été"]
START = datetime(2024, 5, 1, 10, 0, 0)

prompts = st.lists(
    st.tuples(st.sampled_from(VOCAB), st.sampled_from([" ", ", ", "-", "  "])),
    min_size=1,
    max_size=6,
).map(lambda parts: "".join(w + sep for w, sep in parts).strip())
inserts = st.tuples(st.just("insert"), st.lists(prompts, min_size=1, max_size=12))
deletes = st.tuples(st.just("delete"), st.lists(st.integers(0, 50), min_size=1, max_size=4))
queries = st.one_of(
    st.sampled_from(VOCAB),
    st.sampled_from(VOCAB).map(str.upper),
    st.sampled_from(VOCAB).flatmap(
        lambda w: st.integers(0, len(w) - 1).map(lambda i: w[i : i + 3])
    ),
    st.tuples(st.sampled_from(VOCAB), st.sampled_from(VOCAB)).map(" ".join),
    st.sampled_from(["2024-05", "10:00", "positive_prompt", "-", "seed", '"castle']),
)


def scan(cat: Catalog, query: str) -> set[str]:
    """InvokeAI's rule, read off every row: the query in the metadata text or creation time
    (or the prompt column, for records without metadata)."""
    q = query.lower()
    rows = cat.sql(
        "SELECT image_name, lower(coalesce(CAST(metadata AS VARCHAR), '')), "
        "strftime(created_at, '%Y-%m-%d %H:%M:%S.%g'), lower(coalesce(positive_prompt, '')) "
        "FROM images"
    ).fetchall()
    return {name for name, *texts in rows if any(q in text for text in texts)}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=st.lists(st.one_of(inserts, deletes), min_size=1, max_size=5),
    qs=st.lists(queries, min_size=1, max_size=4),
    mode=st.sampled_from(["small", "bulk", "bulk, all positive"]),
    keys=st.booleans(),
)
def test_term_index_finds_what_a_scan_finds(
    ops: list, qs: list[str], mode: str, keys: bool
) -> None:
    """``bulk``: inserts of more than two rows take the set-based path, in runs of three ids,
    and (unless "all positive") turn the terms most of their rows hold (key names, frequent
    words) negative. ``keys``: one-word searches are answered from the gallery's in-memory
    keys and the words' postings (catalog/gallery_keys.py), else by SQL."""
    sizes = ("SMALL_INSERT", "INDEX_CHUNK", "NEGATIVE_MIN_ROWS")
    saved = {k: getattr(search, k) for k in sizes}
    if mode != "small":
        search.SMALL_INSERT, search.INDEX_CHUNK = 2, 3
        search.NEGATIVE_MIN_ROWS = 3 if mode == "bulk" else 10**9
    try:
        _insert_delete_search(ops, qs, keys)
    finally:
        for k, v in saved.items():
            setattr(search, k, v)


def _insert_delete_search(ops: list, qs: list[str], keys: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cat = Catalog(Path(tmp) / "studio")
        cat.images.gallery_keys.enabled = keys
        names: list[str] = []
        n = 0
        for kind, arg in ops:
            if kind == "insert":
                rows = []
                for p in arg:
                    n += 1
                    rows.append(
                        {
                            "image_name": f"img-{n}.png",
                            "width": 64,
                            "height": 64,
                            # pairs share a time: pages must break ties by name
                            "created_at": START + timedelta(minutes=n // 2),
                            "metadata": {"positive_prompt": p, "seed": 1000 + n},
                            "positive_prompt": None if n % 3 else f"column only {p}",
                        }
                    )
                cat.images.insert_records(rows)  # <= 8 rows: one by one; more: Arrow
                names += [r["image_name"] for r in rows]
                cat.images.star([r["image_name"] for i, r in enumerate(rows) if i % 3 == 1])
            elif names:
                gone = list(dict.fromkeys(names[i % len(names)] for i in arg))
                cat.images.delete(gone)
                names = [x for x in names if x not in gone]
        for q in qs:
            expected = scan(cat, q)
            page = cat.images.list(search=q, limit=1000, with_total=True)
            assert set(page.names) == expected, q
            assert page.total == len(expected) == cat.images.count(search=q), q
            _check_pages(cat, q, expected)
            default = search.MAX_TERMS
            search.MAX_TERMS = 1  # words in several terms are left to the check as written
            try:
                assert set(cat.images.list(search=q, limit=1000).names) == expected, q
            finally:
                search.MAX_TERMS = default
        cat.close()


def test_migration_indexes_existing_images(tmp_path: Path) -> None:
    root = tmp_path / "studio"
    root.mkdir()
    conn = duckdb.connect(str(root / "catalog.duckdb"))
    migrate(conn, target=3)
    conn.execute(
        "INSERT INTO images (image_name, width, height, created_at, updated_at, metadata, "
        "positive_prompt) VALUES ('old.png', 8, 8, TIMESTAMP '2023-02-03 04:05:06', "
        "TIMESTAMP '2023-02-03 04:05:06', '{\"positive_prompt\": \"an Old lighthouse\"}', "
        "'an Old lighthouse')"
    )
    conn.close()
    cat = Catalog(root)
    assert 4 in cat.applied_migrations  # (and every later one)
    assert cat.images.list(search="lighthouse").names == ["old.png"]
    assert cat.images.list(search="2023-02-03").names == ["old.png"]
    assert cat.images.list(search="old light").names == ["old.png"]
    assert cat.images.list(search="new").names == []
    cat.images.insert_records(
        [{"image_name": "new.png", "width": 8, "height": 8, "metadata": {"x": "new light"}}]
    )
    assert cat.images.list(search="light").names == ["new.png", "old.png"]
    cat.close()


def test_common_terms_are_stored_negative(tmp_path: Path, monkeypatch) -> None:
    """A large insert stores the terms most of its rows hold (here the key names and "red")
    as the rows that lack them; searches for them, and later inserts, stay exact."""
    monkeypatch.setattr(search, "NEGATIVE_MIN_ROWS", 50)
    cat = Catalog(tmp_path / "studio")
    rows = [
        {
            "image_name": f"b-{i}.png",
            "width": 8,
            "height": 8,
            "created_at": START + timedelta(minutes=i),
            "metadata": {"positive_prompt": "red castle" if i % 10 else "blue sky"},
        }
        for i in range(100)
    ]
    rows[7]["metadata"] = {"seed": 5}  # no prompt key
    cat.images.insert_records(rows)
    terms = dict(cat.sql("SELECT term, negative FROM search_terms").fetchall())
    assert terms["prompt"] and terms["positive"] and terms["red"] and terms["castle"]
    assert not terms["blue"] and not terms["sky"] and not terms["seed"]
    n_prompt = cat.sql(
        "SELECT count(*) FROM image_terms JOIN search_terms USING (term_id) WHERE term = 'prompt'"
    ).fetchall()
    assert n_prompt == [(1,)]  # the one row without the key
    cat.images.insert_records(  # small inserts keep the negative lists
        [{"image_name": "s.png", "width": 8, "height": 8, "metadata": {"x": "blue"}}]
    )
    for q in ("prompt", "red", "castle", "blue", "sky", "seed", "red castle", "ed"):
        expected = scan(cat, q)
        page = cat.images.list(search=q, limit=1000, with_total=True)
        assert set(page.names) == expected and page.total == len(expected), q
    assert len(scan(cat, "prompt")) == 99
    cat.images.delete(["b-1.png", "s.png"])
    assert cat.images.count(search="prompt") == 98 and cat.images.count(search="blue") == 10
    cat.close()


def _check_pages(cat: Catalog, q: str, expected: set[str]) -> None:
    """Starred-first pages of a search, at every offset, in both orders: the rows and the
    total a sort of the matching rows gives (starred first, then time, ties by name); by
    paging the gallery (a broad word) and by sorting the index's few rows (a narrow one);
    time order alone too."""
    default = search.NARROW_SHARE
    try:
        for share in (0.0, 1.0):
            search.NARROW_SHARE = share
            _check_pages_once(cat, q, expected)
    finally:
        search.NARROW_SHARE = default


def _check_pages_once(cat: Catalog, q: str, expected: set[str]) -> None:
    for order, desc in (("newest", True), ("oldest", False)):
        rows = cat.sql("SELECT image_name, starred, created_at FROM images").fetchall()
        rows = sorted(
            (r for r in rows if r[0] in expected), key=lambda r: (r[2], r[0]), reverse=desc
        )
        starred_first = [r[0] for r in rows if r[1]] + [r[0] for r in rows if not r[1]]
        for first_starred, want in ((True, starred_first), (False, [r[0] for r in rows])):
            for offset in range(0, len(want) + 2, 2):
                page = cat.images.list(
                    search=q,
                    starred_first=first_starred,
                    order=order,
                    limit=3,
                    offset=offset,
                    with_total=True,
                )
                at = (q, order, first_starred, offset)
                assert page.names == want[offset : offset + 3], at
                assert page.total == len(want), at
