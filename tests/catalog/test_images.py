"""Images: save/read back with InvokeAI's PNG chunks, gallery queries, bulk ops, export."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from catalog_data import GRAPH, invokeai_metadata, pixel_image
from PIL import Image, PngImagePlugin

from invoke_nb.catalog import UNCATEGORIZED, Catalog, ImageFileError, NotFoundError
from invoke_nb.catalog.records import utcnow
from invoke_nb.interchange.importer import import_folder


def test_save_writes_invokeai_chunks_and_reads_back(cat: Catalog) -> None:
    meta = invokeai_metadata()
    workflow = {"name": "wf", "nodes": [], "edges": [], "meta": {"version": "3.0.0"}}
    rec = cat.images.save(
        pixel_image((10, 200, 30)),
        metadata=meta,
        graph=GRAPH,
        workflow=workflow,
        session_id="sess",
        node_id="l2i",
    )
    assert rec.image_name.endswith(".png")
    assert (rec.width, rec.height, rec.session_id, rec.node_id) == (40, 24, "sess", "l2i")
    assert rec.has_workflow and rec.metadata == meta
    assert (rec.model_name, rec.model_key, rec.model_base) == ("tiny-sd1", "5f1c", "sd-1")
    assert (rec.positive_prompt, rec.negative_prompt, rec.seed) == ("a red fox", "blurry", 42)
    assert (rec.steps, rec.cfg_scale, rec.scheduler) == (20, 7.5, "euler")
    assert rec.graph_hash and rec.created_at.tzinfo is UTC

    # the file is a PNG whose raw text chunks are InvokeAI's keys with compact JSON
    path = cat.root / "images" / rec.image_name
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert set(im.text) == {"invokeai_metadata", "invokeai_graph", "invokeai_workflow"}
        assert json.loads(im.text["invokeai_metadata"]) == meta
        assert json.loads(im.text["invokeai_graph"]) == GRAPH
        assert ", " not in im.text["invokeai_graph"]  # compact, as pydantic dumps it
    pil = cat.images.get_pil(rec.image_name)
    assert pil.getpixel((0, 0)) == (10, 200, 30) and pil.getpixel((39, 23)) == (245, 55, 225)
    assert cat.images.get_graph(rec.image_name) == GRAPH
    assert cat.images.get_workflow(rec.image_name) == workflow
    assert cat.images.get_metadata(rec.image_name) == meta
    assert cat.images.get_thumbnail(rec.image_name).size == (40, 24)
    with Image.open(cat.files.thumbnail_path(rec.image_name)) as thumb:
        assert thumb.format == "WEBP"
    assert not list((cat.root / "images" / ".pending").iterdir())


def test_thumbnail_is_bounded_and_keeps_alpha(cat: Catalog) -> None:
    rec = cat.images.save(Image.new("RGBA", (600, 300), (1, 2, 3, 100)))
    thumb = cat.images.get_thumbnail(rec.image_name)
    assert thumb.size == (256, 128) and thumb.mode == "RGBA"
    assert cat.images.get_pil(rec.image_name).getpixel((5, 5)) == (1, 2, 3, 100)


def test_save_rejects_bad_input_and_leaves_nothing(cat: Catalog) -> None:
    with pytest.raises(TypeError, match="PIL image"):
        cat.images.save(b"not an image")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="metadata must be a dict"):
        cat.images.save(pixel_image((1, 1, 1)), metadata="x")  # type: ignore[arg-type]
    with pytest.raises(NotFoundError, match="no board with id 'nope'"):
        cat.images.save(pixel_image((1, 1, 1)), board_id="nope")
    assert cat.images.count() == 0
    assert not list((cat.root / "images").glob("*.png"))
    assert not list((cat.root / "images" / ".pending").iterdir())
    assert not list((cat.root / "thumbnails").glob("*.webp"))
    assert not list((cat.root / "thumbnails" / ".pending").iterdir())


def test_read_png_built_to_invokeai_format(cat: Catalog, tmp_path: Path) -> None:
    """A PNG written the way InvokeAI writes (tEXt chunks via PIL) imports with its columns."""
    meta = invokeai_metadata("castle on a hill", seed=7)
    info = PngImagePlugin.PngInfo()
    info.add_text("invokeai_metadata", json.dumps(meta))
    info.add_text("invokeai_graph", json.dumps(GRAPH))
    src = tmp_path / "in"
    src.mkdir()
    pixel_image((9, 8, 7)).save(src / "x.png", pnginfo=info)
    (res,) = import_folder(cat.images, src)
    assert res.status == "imported" and res.source == "invokeai"
    rec = cat.images.get(res.image_name)
    assert (rec.positive_prompt, rec.seed, rec.model_name, rec.image_origin) == (
        "castle on a hill",
        7,
        "tiny-sd1",
        "external",
    )
    assert cat.images.get_graph(rec.image_name) == GRAPH
    assert cat.images.get_workflow(rec.image_name) is None
    assert (cat.root / "images" / rec.image_name).read_bytes() == (src / "x.png").read_bytes()


def _fill(cat: Catalog, n: int) -> list[str]:
    """n images with distinct prompts/models; created_at spaced one minute apart (oldest first)."""
    b1 = cat.boards.create("one").board_id
    rows = []
    base = utcnow() - timedelta(days=1)
    for i in range(n):
        rows.append(
            {
                "image_name": f"img-{i:03d}.png",
                "width": 8,
                "height": 8,
                "created_at": base + timedelta(minutes=i),
                "updated_at": base + timedelta(minutes=i),
                "board_id": b1 if i % 3 == 0 else None,
                "starred": i % 5 == 0,
                "is_intermediate": i == n - 1,
                "model_name": "sdxl-a" if i % 2 else "sd1-b",
                "model_base": "sdxl" if i % 2 else "sd-1",
                "positive_prompt": f"A Red Castle no{i}" if i % 4 == 0 else f"blue sea {i}",
            }
        )
    assert cat.images.insert_records(rows) == n
    return [r["image_name"] for r in rows]


def test_gallery_filters_and_orders(cat: Catalog) -> None:
    names = _fill(cat, 30)
    visible = [n for i, n in enumerate(names) if i != 29]  # the last one is intermediate
    page = cat.images.list(limit=100)
    assert page.names == visible[::-1] and page.next_cursor is None
    assert cat.images.list(order="oldest", limit=3).names == visible[:3]
    assert cat.images.list(is_intermediate=None, limit=1).names == [names[29]]

    board = cat.boards.list()[0].board_id
    on_board = [n for i, n in enumerate(visible) if i % 3 == 0]
    assert cat.images.list(board_id=board).names == on_board[::-1]
    uncategorized = [n for i, n in enumerate(visible) if i % 3]
    assert cat.images.list(board_id=UNCATEGORIZED).names == uncategorized[::-1]
    assert cat.boards.uncategorized_count() == len(uncategorized)

    starred = [n for i, n in enumerate(visible) if i % 5 == 0]
    first = cat.images.list(starred_first=True).names
    assert first[: len(starred)] == starred[::-1]
    assert first[len(starred) :] == [n for n in visible[::-1] if n not in starred]
    assert cat.images.list(starred=True).names == starred[::-1]

    assert set(cat.images.list(model="sdxl-a").names) == {n for i, n in enumerate(visible) if i % 2}
    assert cat.images.count(base="sd-1") == len([i for i in range(29) if i % 2 == 0])
    hits = cat.images.list(search="red castle").names  # case-insensitive substring
    assert hits == [n for i, n in enumerate(visible) if i % 4 == 0][::-1]
    assert cat.images.list(search="100%").names == []  # LIKE wildcards are literal
    by_model = cat.images.count_by_model()
    assert by_model == {"sd1-b": 15, "sdxl-a": 14}

    t0 = cat.images.get(names[10]).created_at
    t1 = cat.images.get(names[15]).created_at
    assert cat.images.list(since=t0, until=t1, order="oldest").names == names[10:15]
    naive = t0.replace(tzinfo=None)
    assert cat.images.count(since=naive) == 19


@pytest.mark.parametrize("starred_first", [False, True])
@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_keyset_pages_match_offset_pages(cat: Catalog, starred_first: bool, order: str) -> None:
    _fill(cat, 30)
    # equal timestamps too: the tie is broken by name
    with cat.db.transaction() as conn:
        conn.execute(
            "UPDATE images SET created_at = (SELECT min(created_at) FROM images) WHERE image_name < 'img-006.png'"
        )
    whole = cat.images.list(limit=100, starred_first=starred_first, order=order).names  # type: ignore[arg-type]
    seen, cursor = [], None
    while True:
        page = cat.images.list(limit=7, cursor=cursor, starred_first=starred_first, order=order)  # type: ignore[arg-type]
        seen += page.names
        offset_page = cat.images.list(
            limit=7, offset=len(seen) - len(page), starred_first=starred_first, order=order
        )  # type: ignore[arg-type]
        assert offset_page.names == page.names
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == whole and len(seen) == 29


def test_bad_gallery_arguments(cat: Catalog) -> None:
    with pytest.raises(ValueError, match="invalid gallery cursor"):
        cat.images.list(cursor="garbage!")
    with pytest.raises(ValueError, match=r"order\s+Input should be 'newest' or 'oldest'"):
        cat.images.list(order="sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"limit\s+Input should be greater than or equal to 1"):
        cat.images.list(limit=0)
    with pytest.raises(ValueError, match=r"colour\s+Extra inputs are not permitted"):
        cat.images.list(colour="red")


def test_bulk_star_move_delete(cat: Catalog) -> None:
    recs = [cat.images.save(pixel_image((i, i, i))) for i in range(4)]
    names = [r.image_name for r in recs]
    board = cat.boards.create("keepers")
    assert cat.images.star(names[:3]) == 3
    assert cat.images.unstar(names[0]) == 1
    assert [cat.images.get(n).starred for n in names] == [False, True, True, False]
    assert cat.images.move_to_board(names[1:], board.board_id) == 3
    assert cat.boards.get(board.board_id).image_count == 3
    assert cat.images.move_to_board([names[1]], None) == 1
    assert cat.images.get(names[1]).board_id is None
    with pytest.raises(NotFoundError, match="no board with id 'zzz'"):
        cat.images.move_to_board(names, "zzz")
    with pytest.raises(NotFoundError, match=r"no image named 'ghost\.png'"):
        cat.images.star([names[0], "ghost.png"])
    assert not cat.images.get(names[0]).starred  # nothing changed by the failed call

    cat.boards.update(board.board_id, cover_image_name=names[2])
    png, thumb = cat.files.path(names[2]), cat.files.thumbnail_path(names[2])
    assert png.exists() and thumb.exists()
    assert cat.images.delete([names[2], names[3]]) == 2
    assert not png.exists() and not thumb.exists()
    with pytest.raises(NotFoundError):
        cat.images.get(names[2])
    assert cat.boards.get(board.board_id).cover_image_name is None  # cover cleared, no newer image
    with pytest.raises(NotFoundError):
        cat.images.get_pil(names[2])
    assert cat.images.count() == 2


def test_record_without_file_is_a_clear_error(cat: Catalog) -> None:
    rec = cat.images.save(pixel_image((1, 2, 3)))
    cat.files.path(rec.image_name).unlink()
    with pytest.raises(ImageFileError, match="has a record but no file"):
        cat.images.get_pil(rec.image_name)
    assert cat.check().missing_files == [rec.image_name]


def test_export_zip(cat: Catalog, tmp_path: Path) -> None:
    recs = [cat.images.save(pixel_image((i, 0, 0)), metadata={"seed": i}) for i in range(3)]
    out = cat.images.export_zip([r.image_name for r in recs[:2]], tmp_path / "sel.zip")
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == sorted(r.image_name for r in recs[:2])
        data = zf.read(recs[0].image_name)
    assert data == cat.files.path(recs[0].image_name).read_bytes()
    with pytest.raises(NotFoundError):
        cat.images.export_zip(["ghost.png"], tmp_path / "bad.zip")
    assert not (tmp_path / "bad.zip").exists()


def test_update_fields(cat: Catalog) -> None:
    rec = cat.images.save(pixel_image((5, 5, 5)), is_intermediate=True)
    assert cat.images.count() == 0 and cat.images.count(is_intermediate=True) == 1
    new = cat.images.update(rec.image_name, is_intermediate=False, image_category="user")
    assert not new.is_intermediate and new.image_category == "user"
    assert new.updated_at >= rec.updated_at
    with pytest.raises(ValueError, match="cannot change image field"):
        cat.images.update(rec.image_name, width=3)
    assert cat.images.list(category="user").names == [rec.image_name]
    assert cat.images.list(category=["general"]).names == []
    assert datetime.now(UTC) - new.created_at < timedelta(minutes=1)


@pytest.mark.parametrize("small", [0, 5000])
def test_windowed_pages_equal_a_full_sort(cat: Catalog, small: int) -> None:
    """Pages found through time windows match a plain sort, also when times arrive out of
    order (imports of old images), with ties, filters, offsets and cursors."""
    import random

    cat.images.planner.small = small  # 0: always use the time-window plan, even on a small table

    rnd = random.Random(3)
    base = utcnow() - timedelta(days=30)
    rows = []
    for i in range(600):
        minute = i if i < 400 else rnd.randrange(0, 400)  # the last 200 land among older ones
        rows.append(
            {
                "image_name": f"n{i:04d}.png",
                "width": 1,
                "height": 1,
                "created_at": base + timedelta(minutes=minute),
                "starred": rnd.random() < 0.1,
                "positive_prompt": "rare gem" if rnd.random() < 0.03 else "common",
            }
        )
    cat.images.insert_records(rows)

    def expected(pred, starred_first: bool, newest: bool) -> list[str]:
        sel = [r for r in rows if pred(r)]
        sel.sort(key=lambda r: (r["created_at"], r["image_name"]), reverse=newest)
        if starred_first:
            sel.sort(key=lambda r: not r["starred"])  # stable: starred block first
        return [r["image_name"] for r in sel]

    cases = [
        ({}, lambda r: True),
        ({"search": "gem"}, lambda r: "gem" in r["positive_prompt"]),
        ({"starred": False}, lambda r: not r["starred"]),
    ]
    for kwargs, pred in cases:
        for starred_first in (False, True):
            for order in ("newest", "oldest"):
                want = expected(pred, starred_first, order == "newest")
                for offset in (0, 5, 250, 590):
                    page = cat.images.list(
                        limit=9, offset=offset, starred_first=starred_first, order=order, **kwargs
                    )  # type: ignore[arg-type]
                    assert page.names == want[offset : offset + 9], (
                        kwargs,
                        starred_first,
                        order,
                        offset,
                    )
                got, cursor = [], None
                while True:
                    page = cat.images.list(
                        limit=25, cursor=cursor, starred_first=starred_first, order=order, **kwargs
                    )  # type: ignore[arg-type]
                    got += page.names
                    if not (cursor := page.next_cursor):
                        break
                assert got == want, (kwargs, starred_first, order)


def test_insert_records_rejects_bad_rows_whole(cat: Catalog) -> None:
    cat.images.insert_records([{"image_name": "a.png", "width": 1, "height": 1}])
    rows = [{"image_name": f"r{i}.png", "width": 1, "height": 1} for i in range(20)]
    with pytest.raises(ValueError, match="rejected, nothing inserted"):
        cat.images.insert_records([*rows, {"image_name": "a.png", "width": 1, "height": 1}])
    with pytest.raises(ValueError, match="rejected, nothing inserted"):
        cat.images.insert_records([{"image_name": "a.png", "width": 2, "height": 2}])
    with pytest.raises(ValueError, match="needs image_name, width and height"):
        cat.images.insert_records([{"image_name": "b.png"}])
    assert cat.images.count() == 1 and cat.images.get("a.png").width == 1
