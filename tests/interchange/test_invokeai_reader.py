"""The InvokeAI importer's Arrow pieces: board lookups by batch, memberships kept once."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pyarrow as pa
import pytest
from invokeai_root import make_invokeai_root

from invoke_nb.interchange.invokeai.images import _boards_of, _first_of_each


def test_boards_of_equals_a_dict_lookup() -> None:
    rnd = random.Random(5)
    universe = [f"{i:05d}.png" for i in range(3000)]
    for _ in range(20):
        members = rnd.sample(universe, rnd.randrange(0, 1500))
        boards = {n: f"board-{rnd.randrange(7)}" for n in members}
        table = pa.table(
            {"image_name": pa.array(members, pa.string()),
             "board_id": pa.array([boards[n] for n in members], pa.string())}
        )  # fmt: skip
        batch = rnd.sample(universe, rnd.randrange(0, 800))
        cut = rnd.randrange(len(batch) + 1)  # a batch of two chunks, as the reader's can be
        names = pa.chunked_array([batch[:cut], batch[cut:]], pa.string())
        assert _boards_of(names, table).to_pylist() == [boards.get(n) for n in batch]


def test_a_name_twice_gets_its_board_at_its_first_row() -> None:
    members = pa.table({"image_name": ["a", "b"], "board_id": ["A", "B"]})
    names = pa.chunked_array([["b", "x", "b"]])
    assert _boards_of(names, members).to_pylist() == ["B", None, None]


def test_memberships_once_each_keeping_the_first() -> None:
    table = pa.table({"image_name": ["a", "b", "a", "c", "b"], "board_id": list("ABXCY")})
    kept = _first_of_each(table)
    assert kept.to_pydict() == {"image_name": ["a", "b", "c"], "board_id": ["A", "B", "C"]}
    once = pa.table({"image_name": ["a", "b"], "board_id": ["A", "B"]})
    assert _first_of_each(once) is once


def test_unresolved_models_counts_per_model_as_a_lookup_per_image(tmp_path) -> None:
    """Counting per model before looking models up gives what looking up every image gives
    (by key; by name and base; by name alone when the image has no base)."""
    from invoke_nb.catalog import Catalog
    from invoke_nb.interchange.invokeai.models import unresolved_models

    rnd = random.Random(9)
    cat = Catalog(tmp_path / "studio")
    try:
        with cat.db.transaction() as db:
            for key, name, base in [("k1", "alpha", "sdxl"), ("k2", "beta", "sd-1")]:
                db.execute(
                    "INSERT INTO models VALUES (?, 'h', '/m', ?, ?, 'main', 'diffusers', '{}', "
                    "now(), now())",
                    [key, name, base],
                )
            pick = [None, "alpha", "beta", "gamma"]
            rows = [
                (f"{i}.png", rnd.choice(pick), rnd.choice([None, "k1", "k2", "k9"]),
                 rnd.choice([None, "sdxl", "sd-1"]), rnd.choice(["invokeai", None]))
                for i in range(400)
            ]  # fmt: skip
            db.executemany(
                "INSERT INTO images (image_name, width, height, created_at, updated_at, "
                "model_name, model_key, model_base, source) VALUES (?, 1, 1, now(), now(), ?, "
                "?, ?, ?)",
                rows,
            )
            oracle = db.execute(
                "SELECT coalesce(i.model_name, '?') || ' (' || coalesce(i.model_base, '?') "
                "|| ')', count(*) FROM images i WHERE i.source = 'invokeai' "
                "AND (i.model_name IS NOT NULL OR i.model_key IS NOT NULL) "
                "AND NOT EXISTS (SELECT 1 FROM models m WHERE m.key = i.model_key "
                "OR (m.name = i.model_name AND (i.model_base IS NULL OR m.base = i.model_base)))"
                " GROUP BY 1"
            ).fetchall()
        got = unresolved_models(cat)
        assert got == dict(oracle) and len(got) >= 3
    finally:
        cat.close()


@pytest.mark.parametrize("where", ["reader", "shaper"])
def test_an_error_in_the_reading_threads_surfaces_and_a_rerun_completes(
    tmp_path, monkeypatch, where
) -> None:
    """An error while reading or shaping a batch stops the import with that error; the
    batches before it are committed (the catalog keeps its indexes), and a second run
    brings the rest."""
    from invoke_nb.catalog import Catalog, name_index
    from invoke_nb.interchange.invokeai import images as ia_images
    from invoke_nb.interchange.invokeai import import_invokeai

    ia = make_invokeai_root(tmp_path / "invokeai")
    for i in range(5):
        ia.add_image(metadata={"positive_prompt": f"p{i}"}, write_file=False)
    ia.close()
    if where == "reader":
        batches = ia_images._driver_batches

        def failing(*args):
            yield from itertools.islice(batches(*args), 2)
            raise OSError("disk went away")

        monkeypatch.setattr(ia_images, "_driver_batches", failing)
    else:
        shape = ia_images._Shaper.__call__
        calls = itertools.count()

        def failing(self, batch):
            if next(calls) == 2:
                raise OSError("disk went away")
            return shape(self, batch)

        monkeypatch.setattr(ia_images._Shaper, "__call__", failing)
    cat = Catalog(tmp_path / "studio")
    try:
        with pytest.raises(OSError, match="disk went away"):
            import_invokeai(cat, ia.root, files="none", batch_size=2, progress=False)
        with cat.db.connection() as db:
            assert all(name_index.exists(db, i.name) for i in name_index.BULK_INDEXES)
        assert cat.sql("SELECT count(*) FROM images").fetchall()[0][0] == 4
        monkeypatch.undo()
        report = import_invokeai(cat, ia.root, files="none", batch_size=2, progress=False)
        assert (report.added["images"], report.existing["images"]) == (1, 4)
        prompts = cat.sql("SELECT positive_prompt FROM images ORDER BY image_id").fetchall()
        assert [p[0] for p in prompts] == [f"p{i}" for i in range(5)]
    finally:
        cat.close()


def test_known_rows_left_out_only_when_rowid_and_name_match() -> None:
    """A rowid the catalog knows, now holding another name (SQLite gave a deleted row's
    rowid to a new image), is read as new."""
    from invoke_nb.interchange.invokeai.images import Known

    known = Known(np.array([2, 3, 7]), pa.array(["b", "c", "g"]), after=1)
    batch = pa.table({"r": [2, 3, 4, 7, 9], "image_name": ["b", "X", "d", "g", "i"]})
    rest, n = known.split(batch)
    assert n == 2 and rest["r"].to_pylist() == [3, 4, 9]
    assert rest["image_name"].to_pylist() == ["X", "d", "i"]
    assert known.before == 0 and Known(np.array([1, 2]), pa.array(["a", "b"]), 2).before == 2
    nothing = Known(np.array([], np.int64), pa.array([], pa.string()), after=0)
    assert nothing.split(batch) == (batch, 0)


def test_closing_the_reader_mid_way_ends_both_threads(tmp_path, monkeypatch) -> None:
    """The writer stops early (an error, Ctrl-C): closing the reader ends the reading thread
    and the shaping thread whichever of them waits for the other."""
    import threading
    import time

    from invoke_nb.interchange.invokeai import images as ia_images
    from invoke_nb.interchange.invokeai.root import InvokeAIRoot, Schema

    ia = make_invokeai_root(tmp_path / "invokeai")
    for i in range(6):
        ia.add_image(metadata={"positive_prompt": f"p{i}"}, write_file=False)
    ia.close()
    taken = threading.Event()
    batches = ia_images._batches

    def first_then_slow(*args):
        it = batches(*args)
        yield next(it)
        taken.wait(10)  # the writer has the first batch: the shaper waits for the reader
        time.sleep(0.5)  # a slow read, during which the reader is closed
        yield from it

    monkeypatch.setattr(ia_images, "_batches", first_then_slow)
    src = InvokeAIRoot.locate(ia.root)
    conn = src.connect()
    try:
        reader = ia_images.ImageReader(src, Schema(conn), 2)
        table, skipped = next(iter(reader))
        assert table.num_rows == 2 and skipped == 0
        taken.set()
        closing = threading.Thread(target=reader.close)
        closing.start()
        closing.join(10)  # the slow read ends soon; the shaper must not wait forever
        assert not closing.is_alive()
    finally:
        taken.set()
        conn.close()
