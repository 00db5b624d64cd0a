"""``studio.images`` and ``studio.boards``: the public image repository, on real rows and files."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from invoke_nb.catalog.errors import NotFoundError
from invoke_nb.studio import Studio, StudioImage


@pytest.fixture
def studio(tmp_path: Path) -> Iterator[Studio]:
    s = Studio(tmp_path / "studio", start_queue=False)
    yield s
    s.close()


def _save(studio: Studio, prompt: str, model: str, color: str, **kw: object) -> StudioImage:
    rec = studio.catalog.images.save(
        Image.new("RGB", (16, 16), color),
        metadata={"positive_prompt": prompt, "model": {"name": model, "key": f"k-{model}"}},
        **kw,
    )
    return studio.images.get(rec.image_name)


@pytest.fixture
def three(studio: Studio) -> list[StudioImage]:
    """Three images, oldest first: a lighthouse (sd15), a castle (sd15), a cat (xl)."""
    return [
        _save(studio, "a lighthouse at dusk", "sd15", "red"),
        _save(studio, "a castle on a hill", "sd15", "green"),
        _save(studio, "a cat", "xl", "blue"),
    ]


def test_list_filters_and_pages(studio: Studio, three: list[StudioImage]) -> None:
    page = studio.images.list()
    assert page == list(reversed(three))  # newest first, StudioImage objects
    assert all(isinstance(i, StudioImage) for i in page)
    assert [r.positive_prompt for r in page.records] == [
        "a cat",
        "a castle on a hill",
        "a lighthouse at dusk",
    ]
    assert studio.images.list(search="CASTLE").names == [three[1].name]
    assert studio.images.list(model="sd15").names == [three[1].name, three[0].name]
    assert studio.images.list(model="k-xl").names == [three[2].name]
    first = studio.images.list(limit=2)
    assert first.names == [three[2].name, three[1].name]
    assert studio.images.list(limit=2, offset=2).names == [three[0].name]
    assert studio.images.list(limit=2, cursor=first.next_cursor).names == [three[0].name]
    assert studio.images.count(model="sd15") == 2 and len(studio.images) == 3
    assert list(studio.images.list().df()["model_name"]) == ["xl", "sd15", "sd15"]


def test_get_returns_the_image_and_names_a_missing_one(
    studio: Studio, three: list[StudioImage]
) -> None:
    img = studio.images.get(three[0].name)
    assert img.pil.getpixel((0, 0)) == (255, 0, 0)
    assert img.metadata["positive_prompt"] == "a lighthouse at dusk"
    assert studio.images.get(img.record) == img  # a record works too
    with pytest.raises(NotFoundError, match=r"nope\.png"):
        studio.images.get("nope.png")


def test_star_and_filter_starred(studio: Studio, three: list[StudioImage]) -> None:
    assert studio.images.star(three[:2]) == 2
    assert studio.images.list(starred=True).names == [three[1].name, three[0].name]
    assert studio.images.star(three[0], starred=False) == 1
    assert studio.images.list(starred=True).names == [three[1].name]
    assert studio.images.list(starred=False).names == [three[2].name, three[0].name]
    with pytest.raises(NotFoundError, match=r"ghost\.png"):
        studio.images.star([three[2].name, "ghost.png"])
    assert not studio.images.get(three[2].name).record.starred  # nothing changed


def test_boards_and_move(studio: Studio, three: list[StudioImage]) -> None:
    keep = studio.boards.create("keepers")
    studio.boards.create("empty")
    assert studio.images.move(three[:2], "keepers") == 2
    counts = {b.board_name: b.image_count for b in studio.boards.list()}
    assert counts == {"keepers": 2, "empty": 0}
    assert studio.boards.uncategorized_count() == 1
    assert studio.images.list(board="keepers").names == [three[1].name, three[0].name]
    assert studio.images.list(board=keep.board_id) == studio.images.list(board="keepers")
    assert studio.images.list(board="none").names == [three[2].name]
    assert studio.boards.get("keepers").cover_image_name == three[1].name
    assert studio.images.move(three[0], None) == 1
    assert studio.boards.get(keep).image_count == 1
    with pytest.raises(NotFoundError, match="no board named 'typo'"):
        studio.images.move(three[2], "typo")
    with pytest.raises(NotFoundError, match="no board named 'typo'"):
        studio.images.list(board="typo")


def test_boards_rename_delete_and_ambiguous_names(studio: Studio, three: list[StudioImage]) -> None:
    studio.boards.create("a")
    studio.images.move(three, "a")
    renamed = studio.boards.rename("a", "b")
    assert renamed.board_name == "b" and renamed.image_count == 3
    assert [b.board_name for b in studio.boards] == ["b"]
    studio.boards.create("b")
    with pytest.raises(LookupError, match="2 boards are named 'b'"):
        studio.boards.get("b")
    assert studio.boards.delete(renamed.board_id) == 3  # images become uncategorized
    assert len(studio.boards) == 1
    assert studio.images.count(board="none") == 3
    studio.images.move(three[:1], "b")
    gone = three[0].path
    assert studio.boards.delete("b", delete_images=True) == 1
    assert not gone.exists()
    assert len(studio.images) == 2


def test_delete_removes_rows_and_files(studio: Studio, three: list[StudioImage]) -> None:
    paths = [i.path for i in three[:2]]
    assert studio.images.delete(three[:2]) == 2
    assert studio.images.list().names == [three[2].name]
    assert not any(p.exists() for p in paths)
    with pytest.raises(NotFoundError):
        studio.images.delete(three[0].name)


def test_export_to_folder_and_zip(studio: Studio, three: list[StudioImage], tmp_path: Path) -> None:
    out = studio.images.export(three[:2], tmp_path / "out")
    assert sorted(p.name for p in out.iterdir()) == sorted(i.name for i in three[:2])
    assert (out / three[0].name).read_bytes() == three[0].path.read_bytes()
    with pytest.raises(FileExistsError, match=re.escape(three[0].name)):
        studio.images.export(three, out)
    assert len(list(out.iterdir())) == 2  # nothing written by the refused export
    z = studio.images.export(three, tmp_path / "all.zip")
    with zipfile.ZipFile(z) as zf:
        assert sorted(zf.namelist()) == sorted(i.name for i in three)
    with pytest.raises(NotFoundError, match=r"ghost\.png"):
        studio.images.export(["ghost.png"], tmp_path / "x")


def test_import_folder_reports_imported_duplicates_and_skipped(
    studio: Studio, tmp_path: Path
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a fox in snow\nSteps: 4, Seed: 77, CFG scale: 5, Model: fox-xl")
    Image.new("RGB", (8, 8), "white").save(src / "a1111.png", pnginfo=info)
    Image.new("RGB", (8, 8), "black").save(src / "plain.png")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    studio.boards.create("inbox")

    summary = studio.images.import_folder(src, board="inbox")
    assert len(summary.imported) == 2 and len(summary.skipped) == 1
    assert summary.skipped[0].path.endswith("broken.png") and summary.skipped[0].reason
    fox = studio.images.list(search="fox")
    assert len(fox) == 1 and fox.records[0].seed == 77 and fox.records[0].model_name == "fox-xl"
    assert studio.boards.get("inbox").image_count == 2
    again = studio.images.import_folder(src)
    assert len(again.imported) == 0 and len(again.duplicates) == 2
    with pytest.raises(NotADirectoryError):
        studio.images.import_folder(tmp_path / "missing")
