"""One gallery query vocabulary: the catalog's ImageQuery, the widget's requests and the
browser's TypeScript type agree."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
import pytest

from invoke_nb.catalog import Catalog, ImageQuery
from invoke_nb.widgets.gallery import (
    FILTER_TRAITS,
    QUERY_TS,
    Gallery,
    GalleryQuery,
    query_typescript,
)


def test_typescript_matches_the_python_type():
    assert QUERY_TS.read_text(encoding="utf-8") == query_typescript(), (
        "extension/src/widgets/gallery/query.ts is out of date: regenerate it with "
        "invoke_nb.widgets.gallery.write_query_typescript()"
    )
    assert set(GalleryQuery.model_fields) == set(ImageQuery.model_fields)
    for name in FILTER_TRAITS:  # each filter the browser sends is a synced trait
        assert name in ImageQuery.model_fields
        assert Gallery.class_traits()[name].metadata.get("sync")


def test_browser_forms_mean_no_filter():
    q = GalleryQuery(board="", starred=False, search="  ", order="oldest", starred_first=True)
    assert (q.board, q.starred, q.search) == (None, None, None)
    assert ImageQuery(starred=False).starred is False  # the Python API keeps "unstarred only"
    with pytest.raises(ValueError, match="limit"):
        GalleryQuery(limit=501)


def _catalog(tmp_path) -> tuple[Catalog, list[str]]:
    cat = Catalog(tmp_path / "studio")
    rows = [
        {
            "image_name": f"img-{i:02d}.png",
            "width": 8,
            "height": 8,
            "starred": i % 3 == 0,
            "image_category": "general" if i % 4 else "user",
            "positive_prompt": "a red fox" if i % 2 else "a grey wolf",
            "metadata": '{"positive_prompt": "%s"}' % ("a red fox" if i % 2 else "a grey wolf"),
            "created_at": datetime(2024, 5, 1, 10, i),
        }
        for i in range(30)
    ]
    cat.images.insert_records(rows)
    return cat, [r["image_name"] for r in rows]


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"starred_first": True, "limit": 7, "offset": 3},
        {"category": "assets"},
        {"category": "images", "search": "fox", "order": "oldest"},
        {"starred": False, "search": "wolf", "limit": 4},
    ],
)
def test_arrow_page_equals_the_record_page(tmp_path, fields):
    cat, _ = _catalog(tmp_path)
    try:
        q = ImageQuery(**fields, with_total=True)
        page = cat.images.list(q)
        table, total = cat.images.page_arrow(q, ("image_name", "starred", "created_at"))
        assert table.column("image_name").to_pylist() == page.names
        assert total == page.total == cat.images.count(q)
        assert table.schema.field("created_at").type == pa.string()
        assert cat.images.list(**fields).names == page.names  # keywords, same query
    finally:
        cat.close()


def test_categories_are_invokeais_tabs(tmp_path):
    cat, names = _catalog(tmp_path)
    try:
        assets = cat.images.list(category="assets", limit=100).names
        images = cat.images.list(category="images", limit=100).names
        assert sorted(assets) == sorted(n for i, n in enumerate(names) if i % 4 == 0)
        assert sorted(images + assets) == sorted(names)
    finally:
        cat.close()
