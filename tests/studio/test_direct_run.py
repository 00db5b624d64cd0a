"""A studio without a queue thread (``start_queue=False``) runs graphs in the calling thread,
with the same events, queue rows and catalog writes as the queue thread gives them."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import invoke_nb as inb
from invoke_nb.studio import Studio, StudioImage


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[Studio]:
    s = Studio(tmp_path / "studio", start_queue=False)
    yield s
    s.close()


def _threads_seen(studio: Studio) -> tuple[list[tuple[str, str]], list[str]]:
    """Record (event kind, status) pairs and the thread each event came from."""
    events: list[tuple[str, str]] = []
    threads: list[str] = []

    def on(kind: str, payload: dict) -> None:
        events.append((kind, payload.get("status", "")))
        threads.append(threading.current_thread().name)

    studio.events.on("*", on)
    return events, threads


def test_txt2img_runs_here_and_catalogues_the_image(tmp_path: Path, tiny_sd1: Path) -> None:
    with Studio(tmp_path / "studio", start_queue=False) as studio:
        studio.models.install(str(tiny_sd1), name="tiny", in_place=True)
        events, threads = _threads_seen(studio)
        img = studio.txt2img("a red fox", seed=3, width=64, height=64, steps=3, progress=False)
        assert not studio.queue.is_running
        assert isinstance(img, StudioImage) and np.asarray(img.pil).std() > 1
        assert img.record.seed == 3 and img.record.positive_prompt == "a red fox"
        assert set(threads) == {threading.current_thread().name}  # no other thread ran it
        kinds = [k for k, _ in events]
        assert ("queue_item_status_changed", "in_progress") in events
        assert ("queue_item_status_changed", "completed") in events
        assert kinds.count("image_saved") == 1 and "node_complete" in kinds
        (item,) = studio.queue_items()
        assert item.status == "completed"
        rows = studio.sql("select count(*) from images where not is_intermediate").fetchall()
        assert rows == [(1,)]


def test_run_wait_and_arun_without_a_queue_thread(bare: Studio, slow_graph) -> None:
    r = bare.run(slow_graph(steps=2, delay=0.0), progress=False)
    assert r.outputs["slow"].value == 2
    (item_id,) = bare.enqueue(slow_graph(steps=3, delay=0.0))
    assert bare.catalog.queue.get(item_id).status == "pending"  # queued, not run yet
    assert bare.wait(item_id).outputs["slow"].value == 3
    assert bare.catalog.queue.get(item_id).status == "completed"
    # a loop of its own on another thread: the test process may run one here (playwright)
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(asyncio.run, bare.arun(slow_graph(steps=4, delay=0.0))).result()
    assert result.outputs["slow"].value == 4
    assert [i.status for i in bare.queue_items()] == ["completed"] * 3


def test_a_failing_graph_raises_and_is_recorded(bare: Studio, slow_graph) -> None:
    with pytest.raises(inb.NodeError, match="asked to fail"):
        bare.run(slow_graph(steps=1, delay=0.0, fail=True), progress=False)
    (item,) = bare.queue_items()
    assert item.status == "failed" and "asked to fail" in (item.error_message or "")
    # the studio still runs the next graph
    assert bare.run(slow_graph(steps=1, delay=0.0), progress=False).outputs["slow"].value == 1


def test_interrupt_cancels_the_item(bare: Studio, slow_graph) -> None:
    """Ctrl-C in the cell (a KeyboardInterrupt in the running thread) cancels the item."""

    def interrupt(kind: str, payload: dict) -> None:
        if kind == "progress" and payload.get("step") == 2:
            raise KeyboardInterrupt

    bare.events.on("progress", interrupt)
    with pytest.raises(inb.Cancelled):
        bare.run(slow_graph(steps=5, delay=0.0), progress=False)
    (item,) = bare.queue_items()
    assert item.status == "canceled"
    assert bare.queue.running_items == []
