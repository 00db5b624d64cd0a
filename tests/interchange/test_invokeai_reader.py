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
