"""Every Gallery message handler, driven as the browser drives it (no browser)."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import traitlets
from PIL import Image

import invoke_nb as inb
from invoke_nb.studio import Studio, StudioImage
from invoke_nb.widgets import Gallery
from invoke_nb.widgets.gallery import PAGE_SCHEMA

from .test_graph_editor import err, ok, request

PROMPTS = ["a red lighthouse", "a blue castle", "green hills at dawn", "a red barn"]


class Recorder(Gallery):
    """A Gallery that keeps what it sends to the browser."""

    def send(self, content: Any, buffers: Any = None) -> None:
        self.__dict__.setdefault("outbox", []).append((content, buffers))

    def events(self, name: str) -> list[tuple[dict[str, Any], list[Any]]]:
        return [
            (c["data"], list(b or []))
            for c, b in self.__dict__.get("outbox", [])
            if c.get("kind") == "event" and c["name"] == name
        ]


def _graph() -> inb.Graph:
    g = inb.Graph()
    g.add("integer", id="n", value=2)
    g.add("add", id="s", b=3)
    g.connect("n", "value", "s", "a")
    return g


@pytest.fixture
def studio(tmp_path: Path) -> Iterator[Studio]:
    """12 images (3 on board "keep", 1 starred), created oldest to newest, queue not running."""
    s = Studio(tmp_path / "studio", start_queue=False)
    board = s.catalog.boards.create("keep")
    for i in range(12):
        img = Image.new("RGB", (64 + i, 48), (20 * i, 100, 200))
        meta = {
            "positive_prompt": PROMPTS[i % 4],
            "seed": 1000 + i,
            "steps": 4,
            "cfg_scale": 7.5,
            "scheduler": "euler",
            "model": {"name": "tiny", "base": "sd-1"},
        }
        s.catalog.images.save(
            img,
            metadata=meta,
            graph=_graph().to_dict(),
            board_id=board.board_id if i < 3 else None,
            starred=i == 5,
        )
        time.sleep(0.002)  # distinct created_at
    yield s
    s.close()


@pytest.fixture
def gallery(studio: Studio) -> Iterator[Recorder]:
    g = Recorder(studio)
    yield g
    g.close()


def page(g: Gallery, **params: Any) -> tuple[dict[str, Any], pa.Table, list[bytes]]:
    answer = g.dispatch({"kind": "request", "id": 1, "method": "page", "params": params})
    assert answer is not None
    reply, buffers = answer
    assert reply["ok"], reply.get("error")
    assert len(buffers) == 1  # one Arrow buffer per page, thumbnails inside
    table = pa.ipc.open_stream(bytes(buffers[0])).read_all()
    return reply["result"], table, table.column("thumbnail").to_pylist()


def test_page_is_one_arrow_buffer_of_records_and_webp_thumbnails(
    gallery: Recorder, studio: Studio
) -> None:
    result, table, thumbs = page(gallery, offset=0, limit=5)
    assert result == {"offset": 0, "count": 5, "total": 12}
    assert table.schema.equals(PAGE_SCHEMA)
    expected = studio.catalog.images.list(limit=5)
    assert table.column("image_name").to_pylist() == expected.names  # newest first
    assert table.column("width").to_pylist() == [75, 74, 73, 72, 71]
    assert len(thumbs) == 5
    for name, data in zip(expected.names, thumbs, strict=True):
        assert data == studio.catalog.images.files.thumbnail_path(name).read_bytes()
        with Image.open(io.BytesIO(data)) as im:
            assert im.format == "WEBP"
    row = table.slice(0, 1).to_pylist()[0]
    assert row["positive_prompt"] == PROMPTS[11 % 4] and row["seed"] == 1011
    assert row["has_thumbnail"] is True


def test_pages_cover_everything_once_and_follow_the_filters(
    gallery: Recorder, studio: Studio
) -> None:
    seen: list[str] = []
    for offset in (0, 5, 10):
        _, table, _ = page(gallery, offset=offset, limit=5)
        seen += table.column("image_name").to_pylist()
    assert len(seen) == 12 == len(set(seen))
    _, oldest, _ = page(gallery, order="oldest", limit=12)
    assert oldest.column("image_name").to_pylist() == seen[::-1]

    board_id = studio.catalog.boards.list()[0].board_id
    r, t, _ = page(gallery, board=board_id)
    assert r["total"] == 3 and set(t.column("board_id").to_pylist()) == {board_id}
    r, t, _ = page(gallery, board="none")
    assert r["total"] == 9 and set(t.column("board_id").to_pylist()) == {None}
    r, t, _ = page(gallery, starred=True)
    assert r["total"] == 1 and t.column("seed").to_pylist() == [1005]
    r, t, _ = page(gallery, search="RED")
    assert r["total"] == 6
    assert all("red" in p for p in t.column("positive_prompt").to_pylist())
    _, t, _ = page(gallery, starred_first=True, limit=2)
    assert t.column("starred").to_pylist() == [True, False]


def test_missing_thumbnail_gives_empty_bytes(gallery: Recorder, studio: Studio) -> None:
    newest = studio.catalog.images.list(limit=1).names[0]
    studio.catalog.images.files.thumbnail_path(newest).unlink()
    _, table, thumbs = page(gallery, limit=2)
    assert table.column("has_thumbnail").to_pylist() == [False, True]
    assert thumbs[0] == b"" and thumbs[1]


def test_bad_page_parameters_are_refused_by_name(gallery: Recorder) -> None:
    e = err(gallery, "page", limit=0)
    assert e["type"] == "ValueError" and "limit" in e["message"]
    e = err(gallery, "page", order="random")
    assert "order" in e["message"]
    e = err(gallery, "page", boards="x")
    assert "boards" in e["message"]


def test_names_resolve_a_range_for_shift_click(gallery: Recorder, studio: Studio) -> None:
    names = ok(gallery, "names", offset=3, limit=4)
    assert names == studio.catalog.images.list(limit=12).names[3:7]


def test_boards_list_counts_including_uncategorized(gallery: Recorder) -> None:
    b = ok(gallery, "boards")
    assert [(x["board_name"], x["image_count"]) for x in b["boards"]] == [("keep", 3)]
    assert (b["all"], b["uncategorized"], b["starred"]) == (12, 9, 1)
    made = ok(gallery, "create_board", name="  new one ")
    assert made["board_name"] == "new one"
    assert {x["board_name"] for x in ok(gallery, "boards")["boards"]} == {"keep", "new one"}
    assert "name" in err(gallery, "create_board", name="")["message"]


def test_star_unstar_changes_the_catalog_rows(gallery: Recorder, studio: Studio) -> None:
    names = studio.catalog.images.list(limit=3).names
    assert ok(gallery, "star", names=names, starred=True) == {"changed": 3}
    assert all(studio.catalog.images.get(n).starred for n in names)
    ok(gallery, "star", names=names[:1], starred=False)
    assert not studio.catalog.images.get(names[0]).starred
    e = err(gallery, "star", names=[names[1], "nope.png"], starred=False)
    assert e["type"] == "NotFoundError" and "nope.png" in e["message"]
    assert studio.catalog.images.get(names[1]).starred  # all or nothing
    assert "names" in err(gallery, "star", names=[])["message"]


def test_move_to_board_and_back(gallery: Recorder, studio: Studio) -> None:
    board = studio.catalog.boards.create("moved")
    names = studio.catalog.images.list(board_id="none", limit=2).names
    assert ok(gallery, "move", names=names, board_id=board.board_id) == {"changed": 2}
    assert {studio.catalog.images.get(n).board_id for n in names} == {board.board_id}
    ok(gallery, "move", names=names, board_id=None)
    assert {studio.catalog.images.get(n).board_id for n in names} == {None}
    e = err(gallery, "move", names=names, board_id="no-such-board")
    assert "no-such-board" in e["message"]
    assert {studio.catalog.images.get(n).board_id for n in names} == {None}


def test_delete_needs_confirmation_then_removes_rows_files_and_selection(
    gallery: Recorder, studio: Studio
) -> None:
    names = studio.catalog.images.list(limit=2).names
    gallery.selection = [*names, studio.catalog.images.list(limit=3).names[2]]
    e = err(gallery, "delete", names=names)
    assert "confirm" in e["message"]
    assert studio.catalog.images.exists(names) == set(names)
    paths = [studio.catalog.images.path(n) for n in names]
    assert ok(gallery, "delete", names=names, confirm=True) == {"deleted": 2}
    assert studio.catalog.images.exists(names) == set()
    assert not any(p.exists() for p in paths)
    assert len(gallery.selection) == 1 and gallery.selection[0] not in names


def test_detail_sends_the_png_and_the_metadata(gallery: Recorder, studio: Studio) -> None:
    name = studio.catalog.images.list(board_id=studio.catalog.boards.list()[0].board_id).names[0]
    answer = gallery.dispatch(
        {"kind": "request", "id": 2, "method": "detail", "params": {"name": name}}
    )
    assert answer is not None
    reply, buffers = answer
    assert reply["ok"], reply
    d = reply["result"]
    assert d["image_name"] == name and d["board_name"] == "keep"
    assert (d["seed"], d["steps"], d["scheduler"], d["model_name"]) == (1002, 4, "euler", "tiny")
    assert d["metadata"]["positive_prompt"] == PROMPTS[2]
    assert bytes(buffers[0]) == studio.catalog.images.path(name).read_bytes()
    with Image.open(io.BytesIO(bytes(buffers[0]))) as im:
        assert im.size == (66, 48)
    assert err(gallery, "detail", name="missing.png")["type"] == "NotFoundError"


def test_selected_and_filters_are_python_state(gallery: Recorder, studio: Studio) -> None:
    names = studio.catalog.images.list(limit=2).names
    gallery.selection = names
    assert gallery.selected == [StudioImage(studio, n) for n in names]
    assert gallery.selected[0].pil.size == (75, 48)
    g2 = studio.gallery(board="none", starred=True, search="red", order="oldest")
    try:
        assert (g2.board, g2.starred, g2.search, g2.order) == ("none", True, "red", "oldest")
        g2.board = "keep"  # a board name becomes its id
        assert g2.board == studio.catalog.boards.list()[0].board_id
        with pytest.raises(traitlets.TraitError, match="no board with id or name 'nope'"):
            g2.board = "nope"
        assert g2.board == studio.catalog.boards.list()[0].board_id  # unchanged
    finally:
        g2.close()


def test_recall_use_and_rerun(gallery: Recorder, studio: Studio) -> None:
    name = studio.catalog.images.list(limit=1).names[0]
    recalled: list[tuple[StudioImage, inb.Graph]] = []
    used: list[tuple[StudioImage, str]] = []
    off = gallery.on_recall(lambda img, g: recalled.append((img, g)))
    gallery.on_use(lambda img, purpose: used.append((img, purpose)))

    assert ok(gallery, "recall", name=name) == {"nodes": 2, "listeners": 1}
    (img, graph), = recalled  # fmt: skip
    assert img.image_name == name and set(graph.nodes) == {"n", "s"}
    off()
    assert ok(gallery, "recall", name=name)["listeners"] == 0

    assert ok(gallery, "use", name=name, purpose="canvas") == {"listeners": 1}
    assert used == [(StudioImage(studio, name), "canvas")] and gallery.selection == [name]
    assert "purpose" in err(gallery, "use", name=name, purpose="print")["message"]

    r = ok(gallery, "rerun", name=name, seed=42)
    assert r["seed"] == 42 and len(r["item_ids"]) == 1
    item = studio.catalog.queue.get(r["item_ids"][0])
    assert item.status == "pending" and set(item.graph["nodes"]) == {"n", "s"}
    assert err(gallery, "rerun", name="missing.png")["type"] == "NotFoundError"


def test_live_events_new_images_and_progress_previews(gallery: Recorder, studio: Studio) -> None:
    studio.events.emit("image_saved", {"image_name": "x.png", "item_id": 1})
    assert gallery.events("image_added")[0][0] == {"image_name": "x.png"}

    preview = Image.new("RGB", (32, 32), (255, 0, 0))
    for step in (1, 2, 3, 4):  # the throttle drops fast middle steps, never the last one
        studio.events.emit("progress", {"item_id": 1, "step": step, "total": 4, "image": preview})
    sent = gallery.events("preview")
    assert sent[0][0]["step"] == 1 and sent[-1][0]["step"] == 4 and len(sent) < 4
    with Image.open(io.BytesIO(bytes(sent[0][1][0]))) as im:
        assert im.format == "JPEG" and im.getpixel((16, 16))[0] > 200
    studio.events.emit("progress", {"item_id": 1, "fraction": 0.5})  # no image: nothing sent
    assert len(gallery.events("preview")) == len(sent)

    studio.events.emit("queue_item_status_changed", {"item_id": 1, "status": "in_progress"})
    assert not gallery.events("preview_done")
    studio.events.emit("queue_item_status_changed", {"item_id": 1, "status": "completed"})
    assert gallery.events("preview_done") == [({"item_id": 1}, [])]

    # events raised on a worker thread (the queue's) reach the widget too
    t = threading.Thread(
        target=studio.events.emit, args=("image_saved", {"image_name": "y.png", "item_id": 2})
    )
    t.start()
    t.join()
    assert gallery.events("image_added")[-1][0] == {"image_name": "y.png"}

    gallery.close()
    studio.events.emit("image_saved", {"image_name": "z.png", "item_id": 3})
    assert gallery.events("image_added")[-1][0] == {"image_name": "y.png"}


def test_unknown_method_is_named(gallery: Recorder) -> None:
    reply = request(gallery, "explode")
    assert not reply["ok"] and "page" in reply["error"]["message"]


def test_gallery_actions_reach_the_editor_and_canvas(tmp_path: Path, tiny_sd1: Path) -> None:
    """Recall puts the image's graph into the newest editor; "use on canvas" adds a layer to
    the newest canvas; "use for img2img" loads an img2img graph into the editor."""
    from invoke_nb.graph import standard

    st = Studio(tmp_path / "studio")
    try:
        st.models.install(str(tiny_sd1), name="tiny", in_place=True)
        img = st.txt2img("a cat", seed=1, width=64, height=64, steps=2, progress=False)
        gal, ed, cv = st.gallery(), st.editor(), st.canvas()

        def ask(method: str, **params: Any) -> dict[str, Any]:
            answer = gal.dispatch({"kind": "request", "id": 1, "method": method, "params": params})
            assert answer is not None and answer[0]["ok"], answer
            return answer[0]["result"]

        ask("recall", name=img.image_name)
        assert set(ed.graph.nodes) == set(img.graph.nodes)
        before = len(cv.layers)
        ask("use", name=img.image_name, purpose="canvas")
        assert len(cv.layers) == before + 1
        ask("use", name=img.image_name, purpose="img2img")
        assert "i2l" in ed.graph.nodes and standard.OUTPUT in ed.graph.nodes
    finally:
        st.close()


def test_first_page_comes_with_the_widget_until_what_it_shows_changes(
    gallery: Recorder, studio: Studio
) -> None:
    """A new view shows the first page without asking; a change makes views ask again."""
    table = pa.ipc.open_stream(gallery._first_page).read_all()
    _, asked, _ = page(gallery, limit=gallery.page_size)
    assert table.equals(asked)
    assert gallery._first_page_meta["total"] == 12
    assert gallery._first_page_meta["filter"]["order"] == "newest"
    ok(gallery, "boards")  # reading changes nothing
    assert gallery._first_page
    ok(gallery, "star", names=[table.column("image_name")[0].as_py()], starred=True)
    assert gallery._first_page == b"" and gallery._first_page_meta == {}

    other = Recorder(studio, order="oldest")
    try:
        first = pa.ipc.open_stream(other._first_page).read_all()
        assert first.column("image_name")[0] == asked.column("image_name")[-1]
        other.search = "red"
        assert other._first_page == b""
    finally:
        other.close()
