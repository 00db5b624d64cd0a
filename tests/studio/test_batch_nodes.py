"""Batch and generator nodes: expanded by the queue as InvokeAI's editor expands them."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import invoke_nb as inb
from invoke_nb.nodes.batch import BatchNodeError, resolve_generator
from invoke_nb.queue.batch import Batch, BatchError, expand_batch, split_batch_nodes
from invoke_nb.studio import Studio, StudioImage


def _sum_graph() -> inb.Graph:
    """x + y with x from an integer batch and y from another."""
    g = inb.Graph()
    g.add("integer_batch", id="bx", integers=[1, 2, 3])
    g.add("integer_batch", id="by", integers=[10, 20])
    g.add("add", id="s")
    g.connect("bx", "value", "s", "a")
    g.connect("by", "value", "s", "b")
    return g


def test_ungrouped_batches_multiply_and_each_item_gets_its_values(studio: Studio) -> None:
    ids = studio.enqueue(_sum_graph())
    assert len(ids) == 6  # 3 x 2, as InvokeAI would enqueue
    got = sorted(studio.wait(i, timeout=30).outputs["s"].value for i in ids)
    assert got == [11, 12, 13, 21, 22, 23]
    items = studio.queue_items()
    assert {v["node_path"] for v in items[0].field_values} == {"s"}
    assert "bx" not in items[0].graph["nodes"]  # batch nodes never reach the runner


def test_grouped_batches_zip_and_generators_feed_them(studio: Studio) -> None:
    g = inb.Graph()
    g.add(
        "integer_generator",
        id="gen",
        generator={
            "type": "integer_generator_arithmetic_sequence",
            "start": 5,
            "step": 5,
            "count": 3,
        },
    )
    g.add("integer_batch", id="bx", batch_group_id="Group 1")
    g.connect("gen", "integers", "bx", "integers")
    g.add("string_batch", id="bs", batch_group_id="Group 1", strings=["a", "b", "c"])
    g.add("string_join", id="k")
    g.connect("bs", "value", "k", "string_left")
    g.set("k", string_right="!")
    g.add("mul", id="m", b=2)
    g.connect("bx", "value", "m", "a")
    ids = studio.enqueue(g)
    assert len(ids) == 3  # zipped, not multiplied
    results = [studio.wait(i, timeout=30) for i in ids]
    pairs = sorted((r.outputs["m"].value, r.outputs["k"].value) for r in results)
    assert pairs == [(10, "a!"), (20, "b!"), (30, "c!")]


def test_unequal_group_lengths_and_empty_batches_are_refused() -> None:
    g = inb.Graph()
    g.add("integer_batch", id="a", integers=[1, 2], batch_group_id="Group 2")
    g.add("float_batch", id="b", floats=[0.5], batch_group_id="Group 2")
    g.add("add", id="s")
    g.connect("a", "value", "s", "a")
    g.add("float_math", id="f")
    g.connect("b", "value", "f", "a")
    with pytest.raises(BatchError, match=r"Group 2.*unequal"):
        split_batch_nodes(g)
    with pytest.raises(inb.GraphError):
        g.set("a", integers=[])  # min_length=1, as InvokeAI


def test_batch_node_run_directly_says_what_to_do() -> None:
    g = inb.Graph()
    g.add("integer_batch", id="b", integers=[1])
    with pytest.raises(Exception, match="expanded by the queue"):
        inb.run(g)


def test_generators_follow_invokeai_rules() -> None:
    seq = resolve_generator(
        "float_generator",
        {"type": "float_generator_arithmetic_sequence", "start": 1, "step": 0.5, "count": 3},
    )
    assert seq == [1, 1.5, 2.0]
    lin = resolve_generator(
        "integer_generator",
        {"type": "integer_generator_linear_distribution", "start": 0, "end": 10, "count": 4},
    )
    assert lin == [0, 3, 7, 10]  # Math.round(10/3)=3, Math.round(20/3)=7
    parsed = resolve_generator(
        "integer_generator",
        {"type": "integer_generator_parse_string", "input": "4, 5x, ,junk,-2", "splitOn": ","},
    )
    assert parsed == [4, 5, -2]  # parseInt keeps a numeric prefix, drops the rest
    lines = resolve_generator(
        "string_generator",
        {"type": "string_generator_parse_string", "input": "cat\ndog\n", "splitOn": "\\n"},
    )
    assert lines == ["cat", "dog"]
    combos = resolve_generator(
        "string_generator",
        {
            "type": "string_generator_dynamic_prompts_combinatorial",
            "input": "a {red|blue} {car|boat}",
            "maxPrompts": 10,
        },
    )
    assert combos == ["a red car", "a red boat", "a blue car", "a blue boat"]
    with pytest.raises(BatchNodeError, match="unknown"):
        resolve_generator("float_generator", {"type": "float_generator_nope"})


def test_seeded_uniform_random_matches_the_mersenne_twister() -> None:
    values = resolve_generator(
        "integer_generator",
        {
            "type": "integer_generator_random_distribution_uniform",
            "min": 0,
            "max": 9,
            "count": 5,
            "seed": 5489,
        },
    )
    # MT19937 seeded with 5489 (the reference default) starts 3499211612, 581869302, ...
    first = [3499211612, 581869302, 3890346734, 3586334585, 545404204]
    assert values == [int(x / 2**32 * 10) for x in first]
    again = resolve_generator(
        "integer_generator",
        {
            "type": "integer_generator_random_distribution_uniform",
            "min": 0,
            "max": 9,
            "count": 5,
            "seed": 5489,
        },
    )
    assert again == values


def test_image_generator_takes_a_boards_images(studio: Studio) -> None:
    board_id = studio.catalog.boards.create("refs").board_id
    names = []
    for v in (10, 200):
        rec = studio.catalog.images.save(
            Image.new("RGB", (8, 8), (v, v, v)), board_id=board_id, category="general"
        )
        names.append(rec.image_name)
    g = inb.Graph()
    g.add(
        "image_generator",
        id="gen",
        generator={
            "type": "image_generator_images_from_board",
            "board_id": board_id,
            "category": "images",
        },
    )
    g.add("image_batch", id="b")
    g.connect("gen", "images", "b", "images")
    g.add("img_conv", id="c", mode="L")
    g.connect("b", "image", "c", "image")
    ids = studio.enqueue(g)
    assert len(ids) == 2
    means = sorted(
        int(
            np.asarray(
                StudioImage(studio, studio.wait(i, timeout=30).outputs["c"].image.image_name).pil
            ).mean()
        )
        for i in ids
    )
    assert means == [10, 200]


def test_split_keeps_the_graph_valid_and_expand_counts() -> None:
    g2, groups = split_batch_nodes(_sum_graph())
    assert set(g2.nodes) == {"s"}
    g2.validate()
    assert len(Batch(groups)) == 6
    assert len(expand_batch(Batch(groups, runs=2))) == 12


def test_run_of_a_batch_graph_points_to_enqueue(studio: Studio) -> None:
    with pytest.raises(BatchError, match=r"studio\.enqueue"):
        studio.run(_sum_graph(), progress=False)


def test_batch_workflow_survives_invokeai_export(studio: Studio) -> None:
    from invoke_nb.graph.workflow import Workflow, read_workflow

    g = inb.Graph()
    gen = {"type": "float_generator_linear_distribution", "start": 0, "end": 1, "count": 3}
    g.add("float_generator", id="gen", generator=gen)
    g.add("float_batch", id="b")
    g.connect("gen", "floats", "b", "floats")
    g.add("float_math", id="m", operation="MUL", b=10.0)
    g.connect("b", "value", "m", "a")
    back = read_workflow(Workflow(graph=g).to_invokeai()).graph
    assert back.nodes["gen"].values["generator"].model_dump() == gen
    ids = studio.enqueue(back)
    assert sorted(studio.wait(i, timeout=30).outputs["m"].value for i in ids) == [0.0, 5.0, 10.0]
