"""The InvokeAI importer's Arrow pieces: board lookups by batch, memberships kept once."""

from __future__ import annotations

import random

import pyarrow as pa

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
