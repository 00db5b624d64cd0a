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
)
def test_term_index_finds_what_a_scan_finds(ops: list, qs: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cat = Catalog(Path(tmp) / "studio")
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
                            "created_at": START + timedelta(minutes=n),
                            "metadata": {"positive_prompt": p, "seed": 1000 + n},
                            "positive_prompt": None if n % 3 else f"column only {p}",
                        }
                    )
                cat.images.insert_records(rows)  # <= 8 rows: one by one; more: Arrow
                names += [r["image_name"] for r in rows]
            elif names:
                gone = list(dict.fromkeys(names[i % len(names)] for i in arg))
                cat.images.delete(gone)
                names = [x for x in names if x not in gone]
        for q in qs:
            expected = scan(cat, q)
            page = cat.images.list(search=q, limit=1000, with_total=True)
            assert set(page.names) == expected, q
            assert page.total == len(expected) == cat.images.count(search=q), q
            default = search.MAX_TERMS
            search.MAX_TERMS = 1  # words in several terms are left to the check as written
            try:
                assert set(cat.images.list(search=q, limit=1000).names) == expected, q
            finally:
                search.MAX_TERMS = default
        stale = cat.sql(
            "SELECT count(*) FROM image_terms WHERE image_id NOT IN (SELECT image_id FROM images)"
        ).fetchall()
        assert stale == [(0,)]
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
