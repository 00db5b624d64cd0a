"""The queue processor keeps ``executor.concurrency`` items in flight (no Ray needed): items
overlap, finish in order of completion, are cancelled together, and a plain executor still
runs one item at a time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray_nodes  # noqa: F401 - registers ray_t_slow_image

import invoke_nb as inb
from invoke_nb.executors.local import LocalExecutor
from invoke_nb.studio import Studio


class TwoAtOnce(LocalExecutor):
    """The local executor, declaring that it can run two graphs at once."""

    concurrency = 2


@pytest.fixture
def studio(tmp_path: Path) -> Iterator[Studio]:
    s = Studio(tmp_path / "studio")
    yield s
    s.close()


def slow(steps: int, value: int = 1) -> inb.Graph:
    g = inb.Graph()
    g.add("ray_t_slow_image", id="slow", steps=steps, delay=0.02, value=value)
    return g


def status_log(studio: Studio) -> tuple[list[tuple[int, str]], Any]:
    log: list[tuple[int, str]] = []
    lock = threading.Lock()

    def on(kind: str, payload: dict[str, Any]) -> None:
        with lock:
            log.append((payload["item_id"], payload["status"]))

    return log, studio.events.on("queue_item_status_changed", on)


def test_items_overlap_and_finish_in_completion_order(studio: Studio) -> None:
    studio.use_executor(TwoAtOnce())
    assert studio.queue.concurrency() == 2
    log, off = status_log(studio)
    try:
        long_id, short_id = studio.enqueue(slow(40)), studio.enqueue(slow(5))
        long_id, short_id = long_id[0], short_id[0]
        for i in (long_id, short_id):
            studio.wait(i, timeout=30)
    finally:
        off()
    events = [e for e in log if e[0] in (long_id, short_id)]
    assert events[:2] == [(long_id, "in_progress"), (short_id, "in_progress")]  # both started
    assert events[2:] == [(short_id, "completed"), (long_id, "completed")]  # short one first
    assert studio.sql("select count(*) from images").fetchall()[0][0] == 2


def test_cancel_stops_every_running_item(studio: Studio) -> None:
    studio.use_executor(TwoAtOnce())
    steps: dict[int, int] = {}  # item id -> progress events seen
    off = studio.events.on(
        "progress", lambda k, p: steps.__setitem__(p["item_id"], steps.get(p["item_id"], 0) + 1)
    )
    ids = studio.enqueue(slow(500), batch={"slow.value": [1, 2, 3]})
    deadline = time.monotonic() + 20
    while len(studio.queue.running_items) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sorted(studio.queue.running_items) == ids[:2]
    at_cancel = dict(steps)
    studio.cancel(ids)
    for i in ids:
        with pytest.raises(inb.Cancelled):
            studio.wait(i, timeout=10)
    off()
    # each running item stops at its next step boundary (the step in flight may report)
    assert set(steps) == set(ids[:2]), steps
    assert all(steps[i] - at_cancel.get(i, 0) <= 2 for i in steps), (at_cancel, steps)
    assert {studio.catalog.queue.get(i).status for i in ids} == {"canceled"}
    assert studio.queue.running_items == []


def test_plain_executor_runs_one_item_at_a_time(studio: Studio) -> None:
    assert studio.queue.concurrency() == 1
    log, off = status_log(studio)
    try:
        ids = studio.enqueue(slow(5), batch={"slow.value": [1, 2, 3]})
        for i in ids:
            studio.wait(i, timeout=30)
    finally:
        off()
    statuses = [s for i, s in log if i in ids]
    assert statuses == ["in_progress", "completed"] * 3


def test_use_executor_names_and_errors(studio: Studio) -> None:
    first = studio.executor
    new = studio.use_executor("local")
    assert isinstance(new, LocalExecutor) and new is not first
    assert studio.queue.executor is new
    with pytest.raises(ValueError, match="'dask'"):
        studio.use_executor("dask")
    with pytest.raises(TypeError, match="executor name"):
        studio.use_executor(TwoAtOnce(), workers=2)
    assert studio.executor is new  # a failed switch changes nothing
