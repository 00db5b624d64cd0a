"""The queue: ordering, prepend, batches, cancel, failure isolation, restart recovery, events."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

import invoke_nb as inb
from invoke_nb.queue.batch import Batch, BatchError, expand_batch
from invoke_nb.studio import Studio


def add_graph() -> inb.Graph:
    g = inb.Graph()
    g.add("integer", id="a", value=1)
    g.add("add", id="s", b=10)
    g.connect("a", "value", "s", "a")
    return g


def test_batch_zip_product_runs() -> None:
    g = add_graph()
    b = Batch.parse(
        [
            [
                {"node_id": "a", "field": "value", "items": [1, 2]},
                {"node_path": "s", "field_name": "b", "items": [10, 20]},
            ]
        ],
        runs=2,
    )
    b.validate(g)
    vals = [[(v.node_id, v.field, v.value) for v in fv] for fv in expand_batch(b)]
    assert vals == [[("a", "value", 1), ("s", "b", 10)], [("a", "value", 2), ("s", "b", 20)]] * 2
    b2 = Batch.parse([{"a.value": [1, 2, 3]}, {"s.b": [0, 100]}])
    assert len(b2) == 6
    got = [tuple(v.value for v in fv) for fv in expand_batch(b2)]
    assert got == [(1, 0), (1, 100), (2, 0), (2, 100), (3, 0), (3, 100)]


def test_batch_errors() -> None:
    g = add_graph()
    with pytest.raises(BatchError, match="unequal lengths"):
        Batch.parse({"a.value": [1, 2], "s.b": [1]}).validate(g)
    with pytest.raises(inb.GraphError, match="ghost"):
        Batch.parse({"ghost.value": [1]}).validate(g)
    with pytest.raises(inb.GraphError, match="'nope'"):
        Batch.parse({"a.nope": [1]}).validate(g)
    with pytest.raises(inb.GraphError, match="value"):
        Batch.parse({"a.value": ["x"]}).validate(g)
    with pytest.raises(BatchError, match="runs"):
        Batch.parse(None, runs=0)
    with pytest.raises(BatchError, match=r"edge from a.value feeds it"):
        Batch.parse({"s.a": [1]}).validate(g)


def test_dataframe_rows_are_zipped_items(studio: Studio) -> None:
    df = pd.DataFrame({"a.value": [1, 2, 3], "s.b": [100, 200, 300]})
    ids = studio.enqueue(add_graph(), batch=df)
    results = [studio.wait(i, timeout=30).outputs["s"].value for i in ids]
    assert results == [101, 202, 303]
    items = studio.queue_items()
    assert [i.status for i in items] == ["completed"] * 3
    assert items[0].field_values[0] == {"node_path": "a", "field_name": "value", "value": 1}


def test_enqueue_returns_at_once_and_runs_in_order(studio: Studio) -> None:
    studio.queue.pause()
    ids = studio.enqueue(add_graph(), batch={"a.value": [1, 2, 3]})
    # returned with nothing run: the items wait for the (paused) processor
    assert [studio.catalog.queue.get(i).status for i in ids] == ["pending"] * 3
    order: list[int] = []
    studio.events.on(
        "queue_item_status_changed",
        lambda k, p: p["status"] == "in_progress" and order.append(p["item_id"]),
    )
    (first,) = studio.enqueue(add_graph(), prepend=True)
    studio.queue.resume()
    for i in [*ids, first]:
        studio.wait(i, timeout=30)
    assert order == [first, *ids]


def test_cancel_mid_run_within_a_step(studio: Studio, slow_graph) -> None:
    started = threading.Event()
    steps: list[int] = []

    def on_progress(kind: str, p: dict) -> None:
        steps.append(p["step"])
        started.set()

    studio.events.on("progress", on_progress)
    (item,) = studio.enqueue(slow_graph(steps=200, delay=0.02))
    assert started.wait(20)
    at_cancel = len(steps)
    studio.cancel(item)
    with pytest.raises(inb.Cancelled):
        studio.wait(item, timeout=10)
    # the node stops at its next step boundary: the step in flight may still report
    assert len(steps) - at_cancel <= 2, (at_cancel, len(steps))
    assert studio.catalog.queue.get(item).status == "canceled"
    assert max(steps) < 200


def test_cancel_pending_batch_and_all(studio: Studio) -> None:
    studio.queue.pause()
    ids = studio.enqueue(add_graph(), batch={"a.value": [1, 2, 3, 4]})
    item = studio.catalog.queue.get(ids[0])
    assert set(studio.cancel(batch_id=item.batch_id)) == set(ids)
    ids2 = studio.enqueue(add_graph(), runs=2)
    assert set(studio.cancel()) == set(ids2)
    studio.queue.resume()
    with pytest.raises(inb.Cancelled):
        studio.wait(ids[0], timeout=5)
    assert {i.status for i in studio.queue_items()} == {"canceled"}


def test_failure_isolated_and_recorded_then_retry(studio: Studio, slow_graph) -> None:
    (bad,) = studio.enqueue(slow_graph(steps=1, delay=0.0, fail=True))
    (good,) = studio.enqueue(add_graph())
    with pytest.raises(inb.NodeError, match="asked to fail"):
        studio.wait(bad, timeout=30)
    assert studio.wait(good, timeout=30).outputs["s"].value == 11
    item = studio.catalog.queue.get(bad)
    assert item.status == "failed"
    assert item.error_type == "RuntimeError"
    assert "asked to fail" in item.error_message and "slow" in item.error_message
    assert "RuntimeError" in item.error_traceback
    (again,) = studio.retry(bad)
    with pytest.raises(inb.NodeError):
        studio.wait(again, timeout=30)


def test_events_sequence_for_a_run(studio: Studio) -> None:
    seen: list[tuple[str, str | None]] = []
    studio.events.on("*", lambda k, p: seen.append((k, p.get("status") or p.get("node_id"))))
    g = inb.Graph()
    g.add("blank_image", id="img", width=8, height=8, mode="RGB", is_intermediate=True)
    g.add("save_image", id="save")
    g.connect("img", "image", "save", "image")
    r = studio.run(g, progress=False)
    kinds = [k for k, _ in seen]
    assert kinds[0] == "batch_enqueued"
    assert ("queue_item_status_changed", "in_progress") in seen
    saved = kinds.index("image_saved")
    assert seen[saved - 1] == ("node_started", "save") and seen[saved + 1] == (
        "node_complete",
        "save",
    )
    assert seen[-1] == ("queue_item_status_changed", "completed")
    assert len(r.images) == 1
    rec = r.image.record
    assert (rec.width, rec.height) == (8, 8)
    assert r.image.pil.size == (8, 8)


def test_restart_recovery(tmp_path: Path) -> None:
    root = tmp_path / "root"
    s = Studio(root, start_queue=False)
    ids = s.enqueue(add_graph(), runs=3)
    claimed = s.catalog.queue.claim_next()  # as if a kernel died while running it
    s.close()
    s2 = Studio(root, start_queue=False)
    try:
        assert s2.recovered_items == [claimed.item_id]
        item = s2.catalog.queue.get(claimed.item_id)
        assert item.status == "failed" and "stopped" in item.error_message
        pending = [i.item_id for i in s2.queue_items(status="pending")]
        assert pending == ids[1:]
        s2.queue.start()
        assert [s2.wait(i, timeout=30).outputs["s"].value for i in pending] == [11, 11]
    finally:
        s2.close()


def test_memory_images_become_portable(studio: Studio) -> None:
    g = inb.Graph()
    g.add("image", id="i", image=Image.new("RGB", (4, 4), (1, 2, 3)))
    g.add("img_scale", id="sc", scale_factor=2.0)
    g.connect("i", "image", "sc", "image")
    r = studio.run(g, progress=False)
    queued = studio.catalog.queue.get(r.item_id).graph
    name = queued["nodes"]["i"]["image"]["image_name"]
    assert not name.startswith("mem-")
    assert studio.catalog.images.get(name).is_intermediate


def test_interrupt_cancels_blocking_run(studio: Studio, slow_graph) -> None:
    import _thread

    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    with pytest.raises(inb.Cancelled):
        studio.run(slow_graph(steps=400, delay=0.02), progress=False)
    items = studio.queue_items()
    assert items[-1].status == "canceled"


def test_arun(studio: Studio) -> None:
    import asyncio

    # a fresh thread: other tests (Playwright's sync API) may leave a loop on this one
    box: list = []
    t = threading.Thread(target=lambda: box.append(asyncio.run(studio.arun(add_graph()))))
    t.start()
    t.join(30)
    assert box and box[0].outputs["s"].value == 11


def test_seed_batch_gives_each_run_its_own_seed() -> None:
    import random

    from invoke_nb.graph import standard
    from invoke_nb.nodes.types import ModelIdentifierField
    from invoke_nb.queue.batch import seed_batch

    g = standard.txt2img(ModelIdentifierField(name="m", base="sd-1"), "p", width=64, height=64)
    data = seed_batch(g, 4, rng=random.Random(0))
    assert data is not None and list(data[0]) == ["seed.value"]
    b = Batch.parse(data)
    b.validate(g)
    seeds = [fv[0].value for fv in expand_batch(b)]
    assert len(seeds) == 4 and len(set(seeds)) == 4
    bare = inb.Graph()
    bare.add("noise", id="n", seed=1, width=64, height=64)
    assert list(seed_batch(bare, 2)[0]) == ["n.seed"]
    assert seed_batch(add_graph(), 3) is None
