"""Moving a whole InvokeAI library in: a test root with InvokeAI's exact schema, imported,
re-imported, interrupted and resumed; the InvokeAI root is never written."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from invokeai_root import REFERENCE_PNGS, SCHEMA_4, FakeInvokeAIRoot, make_invokeai_root
from PIL import Image
from reference_model import REFERENCE_HASH

from invoke_nb.catalog import Catalog
from invoke_nb.interchange.invokeai import InvokeAILibraryError, import_invokeai
from invoke_nb.testing.pixels import assert_pixels_close

WORKFLOW = {
    "name": "My txt2img",
    "author": "me",
    "description": "a saved workflow",
    "version": "1.0.0",
    "contact": "",
    "tags": "sd1, mine",
    "notes": "",
    "exposedFields": [],
    "meta": {"version": "3.0.0"},
    "nodes": [],
    "edges": [],
}


@pytest.fixture
def ia(tmp_path: Path, reference_model: Path) -> FakeInvokeAIRoot:
    """A 6.14-schema root: 4 real InvokeAI PNGs, boards, a workflow, presets, models."""
    r = make_invokeai_root(tmp_path / "invokeai")
    cats = r.add_board("Cats")
    r.add_board("Old stuff", archived=True)
    for i, png in enumerate(REFERENCE_PNGS):
        r.add_image(
            png,
            starred=i == 0,
            intermediate=i == 3,
            board_id=cats if i < 2 else None,
            created_at=f"2024-05-0{i + 1} 10:00:00.{i}00",
        )
    r.add_image(name="gone.png", metadata={"positive_prompt": "lost"}, write_file=False)
    r.add_image(metadata={"positive_prompt": "x", "model": {"name": "sdxl-base", "base": "sdxl"}})
    r.add_workflow(WORKFLOW)
    r.add_workflow({**WORKFLOW, "name": "Text to Image - SD1.5"}, category="default")
    wid = r.add_workflow({**WORKFLOW, "name": "With thumbnail"})
    (r.root / "workflow_thumbnails").mkdir()
    Image.new("RGB", (8, 8)).save(r.root / "workflow_thumbnails" / f"{wid}.webp")
    pid = r.add_style_preset("Watercolor", "{prompt}, watercolor", "photo")
    r.add_style_preset("Anime", "{prompt} anime", "photo", type="default")
    (r.root / "style_presets" / "images").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(r.root / "style_presets" / "images" / f"{pid}.webp")
    r.add_model(str(reference_model), name="tiny-sd1", hash=REFERENCE_HASH)
    r.add_model("sd-1/main/deleted-model", name="deleted-model", hash="blake3:11")
    r.add_model("/nowhere/odd.safetensors", name="odd", hash="blake3:22", base="unknown")
    yield r
    r.close()


def _snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            st = p.stat()
            out[str(p.relative_to(root))] = (
                st.st_size,
                st.st_mtime_ns,
                hashlib.sha256(p.read_bytes()).hexdigest(),
            )
    return out


def test_import_brings_the_library_in(tmp_path: Path, ia: FakeInvokeAIRoot, reference_model):
    cat = Catalog(tmp_path / "studio")
    report = import_invokeai(cat, ia.root, progress=False)
    assert report.schema_version == 33
    assert report.added["images"] == 5  # 4 reference PNGs + the sdxl one; gone.png skipped
    assert report.added["boards"] == 2
    assert report.added["workflows"] == 2 and report.added["style_presets"] == 1
    assert report.added["models"] == 1
    reasons = {(s.kind, s.name): s.reason for s in report.skipped}
    assert reasons[("image", "gone.png")].startswith("missing file: ")
    assert reasons[("workflow", next(iter(_ids(ia, "default"))))].startswith("built into InvokeAI")
    assert reasons[("style_preset", "Anime")].startswith("built into InvokeAI")
    assert reasons[("model", "deleted-model")].startswith("missing file: ")
    assert reasons[("model", "odd")].startswith("unknown model")
    assert report.unresolved_models == {"sdxl-base (sdxl)": 1}
    assert "images         added        5" in str(report)

    first = ia.images[0]
    rec = cat.images.get(first)
    meta = json.loads(ia.db.execute("SELECT metadata FROM images LIMIT 1").fetchone()[0])
    assert rec.metadata == meta and rec.source == "invokeai"
    assert (rec.model_name, rec.model_base, rec.seed, rec.steps) == ("tiny-sd1", "sd-1", 42, 10)
    assert rec.cfg_scale == 7.5 and rec.scheduler == meta["scheduler"]
    assert rec.positive_prompt == "a photo of a cute cat"
    assert rec.starred and rec.board_id is not None and not rec.is_intermediate
    assert rec.created_at.isoformat() == "2024-05-01T10:00:00+00:00"
    assert cat.images.get(ia.images[3]).is_intermediate
    assert cat.images.path(first).read_bytes() == (ia.images_dir / first).read_bytes()
    assert cat.files.thumbnail_path(first).exists()
    assert os.path.samefile(cat.images.path(first), ia.images_dir / first)  # hard link

    boards = {b.board_name: b for b in cat.boards.list(include_archived=True)}
    assert boards["Cats"].image_count == 2 and boards["Old stuff"].archived
    assert sorted(cat.boards.image_names(boards["Cats"].board_id)) == sorted(ia.images[:2])
    wfs = {w.name: w for w in cat.workflows.list()}
    assert set(wfs) == {"My txt2img", "With thumbnail"}
    assert wfs["My txt2img"].tags == "sd1, mine" and wfs["My txt2img"].category == "user"
    assert Path(wfs["With thumbnail"].thumbnail).is_file()
    (preset,) = cat.style_presets.list()
    assert (preset.name, preset.positive_prompt, preset.negative_prompt) == (
        "Watercolor",
        "{prompt}, watercolor",
        "photo",
    )
    assert Path(preset.image).is_file()
    (model,) = cat.models.list()
    assert model.hash == REFERENCE_HASH and model.path == str(reference_model)
    assert not model.owned and model.default_settings == {"width": 512, "height": 512}


def _ids(ia: FakeInvokeAIRoot, category: str) -> set[str]:
    rows = ia.db.execute("SELECT workflow_id, workflow FROM workflow_library").fetchall()
    return {w for w, text in rows if json.loads(text)["meta"]["category"] == category}


def test_second_import_adds_nothing_and_root_is_never_written(tmp_path: Path, ia):
    cat = Catalog(tmp_path / "studio")
    ia.db.close()  # as when InvokeAI is not running
    before = _snapshot(ia.root)
    import_invokeai(cat, ia.root, progress=False)
    counts = cat.sql(
        "SELECT (SELECT count(*) FROM images), (SELECT count(*) FROM boards), "
        "(SELECT count(*) FROM workflows), (SELECT count(*) FROM models)"
    ).fetchall()[0]
    again = import_invokeai(cat, ia.root, progress=False)
    assert sum(again.added.values()) == 0
    assert again.existing["images"] == 5 and again.existing["boards"] == 2
    assert (
        cat.sql(
            "SELECT (SELECT count(*) FROM images), (SELECT count(*) FROM boards), "
            "(SELECT count(*) FROM workflows), (SELECT count(*) FROM models)"
        ).fetchall()[0]
        == counts
    )
    assert _snapshot(ia.root) == before  # same files, bytes and mtimes: nothing written


def test_reads_a_live_database_through_its_wal(tmp_path: Path, ia):
    """InvokeAI running: its connection holds the WAL; rows only in the WAL are seen."""
    wal = ia.root / "databases" / "invokeai.db-wal"
    assert wal.exists()
    ia.add_image(metadata={"positive_prompt": "only in the wal"})
    cat = Catalog(tmp_path / "studio")
    report = import_invokeai(cat, ia.root, progress=False)
    assert report.added["images"] == 6
    assert cat.images.count(search="only in the wal") == 1


def test_interrupted_import_resumes(tmp_path: Path, ia):
    cat = Catalog(tmp_path / "studio")
    calls = []

    def stop_after_first_batch(done: int, total: int) -> None:
        calls.append((done, total))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_invokeai(cat, ia.root, batch_size=2, progress=stop_after_first_batch)
    assert calls == [(2, 6)]
    assert cat.images.count(is_intermediate=None) == 2  # the first batch was committed
    report = import_invokeai(cat, ia.root, batch_size=2, progress=False)
    assert report.existing["images"] == 2 and report.added["images"] == 3
    names = [r[0] for r in cat.sql("SELECT image_name FROM images").fetchall()]
    assert len(names) == len(set(names)) == 5


def _image_rows(cat: Catalog) -> list[tuple]:
    return cat.sql("SELECT * EXCLUDE (image_id) FROM images ORDER BY image_name").fetchall()


@pytest.mark.parametrize("batch_size", [1, 2, 4, 100])
def test_known_rows_left_out_the_rest_exactly_as_a_full_import(tmp_path: Path, ia, batch_size):
    """A library partly in the catalog (rows gone from its start, middle and end): the reader
    leaves the rows the catalog holds out before shaping them; the others arrive exactly as
    a full import brings them, and every row is counted once, added or already there."""
    names = [r[0] for r in ia.db.execute("SELECT image_name FROM images ORDER BY rowid")]
    ia.db.close()  # InvokeAI not running: the known rows are found before reading
    whole = Catalog(tmp_path / "whole")
    import_invokeai(whole, ia.root, files="none", progress=False)
    cat = Catalog(tmp_path / "studio")
    import_invokeai(cat, ia.root, files="none", progress=False)
    cat.images.delete([names[0], names[3], names[5]])
    calls: list[tuple[int, int]] = []
    report = import_invokeai(
        cat, ia.root, files="none", batch_size=batch_size, progress=lambda *a: calls.append(a)
    )
    assert (report.added["images"], report.existing["images"]) == (3, 3)
    done = [d for d, _ in calls]
    assert done == sorted(done) and calls[-1] == (6, 6)
    assert _image_rows(cat) == _image_rows(whole)
    assert cat.images.count(is_intermediate=None) == 6  # the gallery's tallies agree
    again = import_invokeai(cat, ia.root, files="none", batch_size=batch_size, progress=False)
    assert (again.added["images"], again.existing["images"]) == (0, 6)


def test_a_name_inserted_after_the_known_rows_were_found(tmp_path: Path, ia, monkeypatch):
    """An image of the library inserted after the reader looked at the catalog (another
    process importing it too): the batch holding it goes in again looking its names up, so
    the row already there stays and nothing is inserted twice."""
    import invoke_nb.interchange.invokeai as ia_package

    names = [r[0] for r in ia.db.execute("SELECT image_name FROM images ORDER BY rowid")]
    ia.db.close()
    cat = Catalog(tmp_path / "studio")
    cat.images.insert_records([{"image_name": "mine.png", "width": 3, "height": 3}])
    found = ia_package.known_rows

    def then_someone_inserts(catalog, src):
        known = found(catalog, src)
        catalog.images.insert_records([{"image_name": names[2], "width": 1, "height": 1}])
        return known

    monkeypatch.setattr(ia_package, "known_rows", then_someone_inserts)
    report = import_invokeai(cat, ia.root, files="none", batch_size=4, progress=False)
    assert (report.added["images"], report.existing["images"]) == (5, 1)
    rows = cat.sql("SELECT image_name, width FROM images").fetchall()
    assert len(rows) == len({n for n, _ in rows}) == 7
    assert dict(rows)[names[2]] == 1 and dict(rows)["mine.png"] == 3


def test_copy_mode_and_subfolders(tmp_path: Path, ia):
    name = ia.add_image(REFERENCE_PNGS[0])
    sub = ia.images_dir / "2024" / "05"
    sub.mkdir(parents=True)
    (ia.images_dir / name).rename(sub / name)
    ia.db.execute("UPDATE images SET image_subfolder = '2024/05' WHERE image_name = ?", [name])
    ia.db.commit()
    cat = Catalog(tmp_path / "studio")
    report = import_invokeai(cat, ia.root, files="copy", progress=False)
    assert report.added["images"] == 6
    assert cat.images.path(name).read_bytes() == (sub / name).read_bytes()
    assert not os.path.samefile(cat.images.path(name), sub / name)
    assert cat.files.thumbnail_path(name).exists()  # made from the PNG: InvokeAI had none here


def test_rows_only(tmp_path: Path, ia):
    cat = Catalog(tmp_path / "studio")
    report = import_invokeai(cat, ia.root, files="none", models=False, progress=False)
    assert report.added["images"] == 6 and report.added["models"] == 0  # gone.png too
    assert not any((tmp_path / "studio" / "images").glob("*.png"))


def test_batches_recut_from_the_readers_batches(tmp_path: Path, ia):
    """Batches are re-cut from the driver's Arrow batches (the typed first row left out);
    rows, boards and rowid order survive."""
    cat = Catalog(tmp_path / "studio")
    calls = []
    report = import_invokeai(
        cat, ia.root, files="none", models=False, batch_size=5,
        progress=lambda done, total: calls.append((done, total)),
    )  # fmt: skip
    assert calls == [(5, 6), (6, 6)] and report.added["images"] == 6
    rowid_order = [r[0] for r in ia.db.execute("SELECT image_name FROM images ORDER BY rowid")]
    assert [r[0] for r in cat.sql("SELECT image_name FROM images").fetchall()] == rowid_order
    in_board = cat.sql("SELECT image_name FROM images WHERE board_id IS NOT NULL").fetchall()
    assert sorted(r[0] for r in in_board) == sorted(ia.images[:2])


def test_invokeai4_schema(tmp_path: Path, reference_model: Path):
    r = make_invokeai_root(tmp_path / "invokeai4", SCHEMA_4)
    board = r.add_board("Dogs")
    name = r.add_image(REFERENCE_PNGS[1], board_id=board, starred=True)
    r.add_workflow(WORKFLOW)
    r.add_model(str(reference_model), name="tiny-sd1", hash=REFERENCE_HASH)
    cat = Catalog(tmp_path / "studio")
    report = import_invokeai(cat, r.root, progress=False)
    assert report.schema_version == 9
    assert (report.added["images"], report.added["boards"], report.added["workflows"]) == (1, 1, 1)
    assert report.added["models"] == 1 and report.added["style_presets"] == 0
    rec = cat.images.get(name)
    assert rec.starred and rec.board_id == board and rec.model_name == "tiny-sd1"


def test_not_an_invokeai_root(tmp_path: Path):
    cat = Catalog(tmp_path / "studio")
    with pytest.raises(InvokeAILibraryError, match=r"no database at .*invokeai\.db"):
        import_invokeai(cat, tmp_path)
    (tmp_path / "db").mkdir()
    (tmp_path / "invokeai.yaml").write_text("db_dir: db\n")
    (tmp_path / "db" / "invokeai.db").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(InvokeAILibraryError, match="cannot read InvokeAI database"):
        import_invokeai(cat, tmp_path)


def test_studio_import_then_rerun_matches_invokeai(tmp_path: Path, ia, studio, invokeai_weights):
    report = studio.import_invokeai(ia.root, progress=False)
    assert report.added["models"] == 1
    png = next(p for p in REFERENCE_PNGS if "euler-" in p.name)
    name = next(n for n in ia.images if (ia.images_dir / n).read_bytes() == png.read_bytes())
    img = studio.rerun(studio.image(name), progress=False)  # model found by InvokeAI's key
    with Image.open(png) as ref:  # cross-machine tolerance: see invoke_nb.testing.pixels
        assert_pixels_close(img.pil, ref, what=png.name)


def test_cli(tmp_path: Path, ia, capsys):
    from invoke_nb.cli import main

    studio_root = tmp_path / "cli-studio"
    assert main(["--root", str(studio_root), "import-invokeai", str(ia.root), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "images         added        5" in out and "missing file" in out
    assert main(["--root", str(studio_root), "import-invokeai", str(tmp_path / "nope")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_text_column_null_in_the_first_batch(tmp_path: Path, ia):
    """A text column NULL in every row of the driver's first batch and set in a later one
    (the Arrow reader types columns from its first batch) comes in as text, exactly."""
    names = [r[0] for r in ia.db.execute("SELECT image_name FROM images ORDER BY rowid")]
    ia.db.execute("UPDATE images SET session_id = NULL, node_id = NULL, deleted_at = NULL")
    ia.db.execute(
        "UPDATE images SET session_id = 'sess-9', node_id = 'n1', deleted_at = "
        "'2024-01-02 03:04:05.678' WHERE image_name = ?",
        [names[-1]],
    )
    ia.db.commit()
    cat = Catalog(tmp_path / "studio")
    report = import_invokeai(cat, ia.root, files="none", models=False, batch_size=2, progress=False)
    assert report.added["images"] == 6
    rows = cat.sql(
        "SELECT image_name, session_id, node_id, deleted_at FROM images ORDER BY image_id"
    ).fetchall()
    assert [r[0] for r in rows] == names
    assert [r[1:3] for r in rows] == [(None, None)] * 5 + [("sess-9", "n1")]
    assert str(rows[-1][3]) == "2024-01-02 03:04:05.678000" and rows[0][3] is None


@pytest.mark.parametrize("batch_size", [1, 2, 4])
def test_text_column_set_mid_stream_resumes_at_the_right_row(tmp_path: Path, ia, batch_size):
    """The driver fails its stream at the first text in a column it typed from NULLs; the
    rest is read again from the row after the last one delivered: every row once, in order,
    with its values, whichever batch the text falls in."""
    names = [r[0] for r in ia.db.execute("SELECT image_name FROM images ORDER BY rowid")]
    ia.db.execute("UPDATE images SET node_id = NULL, deleted_at = NULL")
    ia.db.execute("UPDATE images SET node_id = 'n' || rowid WHERE image_name IN (?, ?)",
                  [names[2], names[4]])  # fmt: skip
    ia.db.commit()
    cat = Catalog(tmp_path / "studio")
    report = import_invokeai(
        cat, ia.root, files="none", models=False, batch_size=batch_size, progress=False
    )
    assert report.added["images"] == 6
    rows = cat.sql("SELECT image_name, node_id, width FROM images ORDER BY image_id").fetchall()
    want = ia.db.execute("SELECT image_name, node_id, width FROM images ORDER BY rowid")
    assert rows == [tuple(r) for r in want.fetchall()]
    assert [r[1] is not None for r in rows] == [False, False, True, False, True, False]


def test_long_metadata_gets_the_memory_it_needs(tmp_path: Path, monkeypatch):
    """A batch larger than the import's DuckDB memory limit (long metadata) raises the limit
    instead of failing the import; every prompt arrives whole."""
    import invoke_nb.interchange.invokeai.images as ia_images

    monkeypatch.setattr(ia_images, "IMPORT_MEMORY", "8MB")
    r = make_invokeai_root(tmp_path / "invokeai")
    prompts = [f"{i} " + "a very long prompt " * 60_000 for i in range(4)]  # ~1.1 MB each
    for i, p in enumerate(prompts):
        r.add_image(
            metadata={"positive_prompt": p, "seed": i},
            created_at=f"2024-05-01 10:0{i}:00.000",
            write_file=False,
        )
    cat = Catalog(tmp_path / "studio")
    try:
        report = import_invokeai(cat, r.root, files="none", models=False, progress=False)
        assert report.added["images"] == 4
        got = cat.sql("SELECT positive_prompt FROM images ORDER BY seed").fetchall()
        assert [g[0] for g in got] == prompts
    finally:
        cat.close()
        r.close()


def test_malformed_metadata_costs_only_its_own_row(tmp_path: Path) -> None:
    """A batch's metadata is parsed once, trusting it to be JSON; one malformed text makes
    DuckDB refuse the whole batch, which is then shaped again checking each row: that row is
    kept without metadata, and its neighbours in the batch keep theirs and their columns.
    The model's layouts (4.x object, 3.x object, a plain string) give the same columns."""
    ia = make_invokeai_root(tmp_path / "invokeai")
    rows = {
        "new": {"positive_prompt": "a red fox", "seed": 7, "steps": 30, "cfg_scale": 7.5,
                "scheduler": "euler", "model": {"name": "Juggernaut", "key": "k1", "base": "sdxl"}},
        "old": {"positive_prompt": "an owl", "model": {"model_name": "sd15", "base_model": "sd-1"}},
        "plain": {"positive_prompt": "a cat", "model": "dreamshaper"},
        "broken": {"positive_prompt": "replaced below"},
        "text": {"positive_prompt": "replaced below"},
    }  # fmt: skip
    names = {
        k: ia.add_image(name=f"{k}.png", metadata=m, write_file=False) for k, m in rows.items()
    }
    ia.db.execute("UPDATE images SET metadata = ? WHERE image_name = ?",
                  ['{"positive_prompt": "cut off', names["broken"]])  # fmt: skip
    ia.db.execute("UPDATE images SET metadata = 'Steps: 20, Sampler: Euler' WHERE image_name = ?",
                  [names["text"]])  # fmt: skip
    ia.db.commit()
    cat = Catalog(tmp_path / "studio")
    try:
        report = import_invokeai(cat, ia.root, files="none", models=False, progress=False)
        assert report.added["images"] == 5
        got = {k: cat.images.get(n) for k, n in names.items()}
        new = got["new"]
        assert (new.positive_prompt, new.seed, new.steps, new.cfg_scale, new.scheduler) == (
            "a red fox", 7, 30, 7.5, "euler")  # fmt: skip
        assert (new.model_name, new.model_key, new.model_base) == ("Juggernaut", "k1", "sdxl")
        assert new.metadata == rows["new"]
        assert (got["old"].model_name, got["old"].model_base) == ("sd15", "sd-1")
        assert (got["plain"].model_name, got["plain"].positive_prompt) == ("dreamshaper", "a cat")
        for bad in ("broken", "text"):
            assert got[bad].metadata is None and got[bad].positive_prompt is None
    finally:
        cat.close()
