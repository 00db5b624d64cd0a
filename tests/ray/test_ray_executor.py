"""The Ray executor on a local 2-CPU cluster: same pixels as the local executor, models
shipped (hash-checked) and loaded once per worker, events streamed back, errors named,
cancel of running and pending jobs, and a worker killed mid-batch (retry, then failure),
with the catalog holding exactly one copy of every finished image."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("ray")

import ray_nodes  # noqa: F401 - registers ray_t_slow_image

import invoke_nb as inb
from invoke_nb.executors.ray import RayExecutor, WorkerLostError
from invoke_nb.graph.standard import OUTPUT, txt2img
from invoke_nb.nodes.types import identifier
from invoke_nb.studio import Studio

SEEDS = [11, 12, 13, 14, 15, 16]


@pytest.fixture(scope="module")
def ray_studio(
    ray_cluster: Any, tiny_sd1: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Studio]:
    """A studio whose queue runs on 2 Ray workers; models are shipped (not read by path)."""
    root = tmp_path_factory.mktemp("ray-studio")
    s = Studio(root / "studio")
    s.models.install(tiny_sd1, name="tiny-sd1", in_place=True)
    s.use_executor("ray", workers=2, ship_models="always", model_dir=str(root / "worker-models"))
    s.executor.wait_ready()
    yield s
    s.executor.close()
    s.close()


@pytest.fixture
def studio(ray_studio: Studio) -> Studio:
    """The module's studio (its workers are costly to start) in the same state for every
    test, whatever ran before: nothing queued, two live workers, no retries recorded."""
    ray_studio.cancel()
    ex: RayExecutor = ray_studio.executor
    ex.retries.clear()
    ex.max_retries = 1
    assert len(ex.wait_ready()) == 2
    return ray_studio


def sd1(studio: Studio) -> Any:
    return identifier(studio.models.get("tiny-sd1"))


def slow_graph(**values: Any) -> inb.Graph:
    g = inb.Graph()
    g.add("ray_t_slow_image", id="slow", **values)
    return g


def record_events(studio: Studio) -> tuple[list[tuple[str, dict[str, Any]]], Any]:
    seen: list[tuple[str, dict[str, Any]]] = []
    off = studio.events.on("*", lambda kind, payload: seen.append((kind, payload)))
    return seen, off


def _last_steps(seen: list[tuple[str, dict[str, Any]]], ids: list[int]) -> dict[int, int]:
    """The last progress step each of ``ids`` reported so far."""
    out: dict[int, int] = {}
    for k, p in list(seen):
        if k == "progress" and p.get("item_id") in ids:
            out[p["item_id"]] = max(out.get(p["item_id"], 0), p["step"])
    return out


def test_batch_matches_local_pixels_and_loads_models_once_per_worker(studio: Studio) -> None:
    assert studio.queue.concurrency() == 2
    g = txt2img(sd1(studio), "a lighthouse", width=64, height=64, steps=4, seed=0)
    seen, off = record_events(studio)
    try:
        ids = studio.enqueue(g, batch={"seed.value": SEEDS})
        results = [studio.wait(i, timeout=120) for i in ids]
    finally:
        off()
    local = inb.Runner(services=inb.Services(models=studio.models))
    for seed, res in zip(SEEDS, results, strict=True):
        name = res.outputs[OUTPUT].image.image_name
        ours = np.asarray(studio.catalog.images.get_pil(name).convert("RGB")).astype(np.int16)
        ref = local.run(
            txt2img(sd1(studio), "a lighthouse", width=64, height=64, steps=4, seed=seed)
        )
        theirs = np.asarray(ref.image(OUTPUT).convert("RGB")).astype(np.int16)
        assert np.abs(ours - theirs).max() <= 1, seed
        assert ours.std() > 5
        assert np.array_equal(np.asarray(res.image(OUTPUT).convert("RGB")), ours)
        assert studio.catalog.images.get(name).seed == seed

    stats = studio.executor.worker_stats()
    assert [s["jobs"] > 0 for s in stats] == [True, True]  # both workers took jobs
    for s in stats:
        assert s["model_loads"], s
        assert set(s["model_loads"].values()) == {1}, s  # each part loaded once per worker
    # events streamed back from both workers, tagged with the queue item
    progress = [p for k, p in seen if k == "progress" and p.get("item_id") in ids]
    assert {p["worker"] for p in progress} == {0, 1}
    assert {p["item_id"] for k, p in seen if k == "image_saved"} == set(ids)
    # the worker copies were shipped through the object store and hash-checked
    shipped = list(Path(studio.root).parent.glob("worker-models/blake3-*/.verified"))
    assert len(shipped) == 1


def test_studio_run_returns_catalogued_image_and_reuses_worker_cache(studio: Studio) -> None:
    g = txt2img(sd1(studio), "a red barn", width=64, height=64, steps=3, seed=5)
    first = studio.run(g, progress=False)
    assert first.image.name == first.outputs[OUTPUT].image.image_name
    assert first.image.path.exists()
    again = studio.run(g, progress=False)  # same worker cache or the other worker: same pixels
    assert np.array_equal(np.asarray(again.image.pil), np.asarray(first.image.pil))


def test_node_failure_on_worker_names_the_node(studio: Studio) -> None:
    (item,) = studio.enqueue(slow_graph(steps=1, delay=0.01, fail=True, value=3))
    with pytest.raises(inb.NodeError, match="slow") as info:
        studio.wait(item, timeout=60)
    assert isinstance(info.value.original, ValueError)
    assert "asked to fail at value 3" in str(info.value)
    stored = studio.catalog.queue.get(item)
    assert (stored.status, stored.error_type) == ("failed", "ValueError")


def test_direct_run_without_catalog_keeps_images_in_memory(studio: Studio) -> None:
    res = studio.executor.run(
        slow_graph(steps=2, delay=0.01, value=200), session_id="direct", services=inb.Services()
    )
    assert res.image("slow").getpixel((0, 0)) == (200, 55, 7)
    assert res.outputs["slow"].steps_done == 2


def test_cancel_reaches_running_and_pending_jobs(studio: Studio) -> None:
    before = studio.sql("select count(*) from images").fetchall()[0][0]
    seen, off = record_events(studio)
    try:
        ids = studio.enqueue(slow_graph(steps=200, delay=0.05), batch={"slow.value": [1, 2, 3, 4]})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            workers = {
                p.get("worker")
                for k, p in list(seen)
                if k == "progress" and p.get("item_id") in ids
            }
            if workers == {0, 1}:
                break
            time.sleep(0.05)
        assert workers == {0, 1}, "both workers should be running a job"
        at_cancel = _last_steps(seen, ids)
        assert sorted(studio.cancel(ids)) == sorted(ids)
        for i in ids:
            with pytest.raises(inb.Cancelled):
                studio.wait(i, timeout=30)
        # stopped between steps, well before the end of its 200: counted in steps, not seconds
        after = _last_steps(seen, ids)
        assert set(after) == set(at_cancel) and len(after) == 2
        assert all(after[i] - at_cancel[i] < 100 for i in after), (at_cancel, after)
    finally:
        off()
    assert {studio.catalog.queue.get(i).status for i in ids} == {"canceled"}
    started = {p["item_id"] for k, p in seen if k == "node_started" and p.get("item_id") in ids}
    assert len(started) == 2  # the two pending items never reached a worker
    steps = [p["step"] for k, p in seen if k == "progress" and p.get("item_id") in ids]
    assert max(steps) < 200
    assert studio.sql("select count(*) from images").fetchall()[0][0] == before
    # the workers are free again
    (item,) = studio.enqueue(slow_graph(steps=1, delay=0.01, value=9))
    assert studio.wait(item, timeout=60).outputs["slow"].steps_done == 1


def _kill_when_running(studio: Studio, ids: list[int]) -> tuple[int, int]:
    """SIGKILL the worker process of the first of ``ids`` to report step 3; (item, worker)."""
    pids = {info["index"]: info["pid"] for info in studio.executor.wait_ready()}
    hit = threading.Event()
    target: dict[str, int] = {}

    def watch(kind: str, payload: dict[str, Any]) -> None:
        if (
            kind == "progress"
            and payload.get("item_id") in ids
            and payload.get("step") == 3
            and not hit.is_set()
        ):
            target.update(item=payload["item_id"], worker=payload["worker"])
            hit.set()

    off = studio.events.on("progress", watch)
    try:
        assert hit.wait(60), "no job reported progress"
        os.kill(pids[target["worker"]], signal.SIGKILL)
    finally:
        off()
    return target["item"], target["worker"]


def test_worker_killed_mid_batch_is_retried_then_failed(studio: Studio) -> None:
    ex: RayExecutor = studio.executor
    images_dir = Path(studio.root) / "images"
    files_before = len(list(images_dir.glob("*.png")))
    rows_before = studio.sql("select count(*) from images").fetchall()[0][0]
    values = [10, 20, 30, 40, 50]
    ids = studio.enqueue(slow_graph(steps=12, delay=0.05), batch={"slow.value": values})
    item, worker = _kill_when_running(studio, ids)
    results = {i: studio.wait(i, timeout=120) for i in ids}  # every item completes
    assert [r["worker"] for r in ex.retries] == [worker]
    assert {studio.catalog.queue.get(i).status for i in ids} == {"completed"}
    rows = studio.sql(
        "select session_id, count(*) from images where created_at is not null group by 1"
    ).fetchall()
    sessions = {studio.catalog.queue.get(i).session_id for i in ids}
    per_session = {s: n for s, n in rows if s in sessions}
    assert per_session == dict.fromkeys(sessions, 1)  # one image per item: none lost, none twice
    assert studio.sql("select count(*) from images").fetchall()[0][0] == rows_before + len(ids)
    assert len(list(images_dir.glob("*.png"))) == files_before + len(ids)
    for v, i in zip(values, ids, strict=True):
        assert results[i].image("slow").getpixel((0, 0)) == (v, 255 - v, 7)
    assert ex.concurrency == 2  # the dead worker was replaced

    # No retries left: the killed job fails with the reason and leaves no image behind.
    ex.max_retries = 0
    try:
        ids = studio.enqueue(slow_graph(steps=12, delay=0.05), batch={"slow.value": [60, 70]})
        item, worker = _kill_when_running(studio, ids)
        with pytest.raises(WorkerLostError, match=f"worker {worker} died"):
            studio.wait(item, timeout=120)
        (other,) = [i for i in ids if i != item]
        studio.wait(other, timeout=120)
    finally:
        ex.max_retries = 1
    failed = studio.catalog.queue.get(item)
    assert failed.status == "failed" and failed.error_type == "WorkerLostError"
    assert "died" in (failed.error_message or "")
    lost_session = failed.session_id
    assert (
        studio.sql("select count(*) from images where session_id = ?", [lost_session]).fetchall()[
            0
        ][0]
        == 0
    )


def test_bad_arguments_are_named() -> None:
    from invoke_nb import executors

    assert executors.RayExecutor is RayExecutor
    with pytest.raises(ValueError, match="ship_models='sometimes'"):
        RayExecutor(ship_models="sometimes")
    with pytest.raises(ValueError, match="workers=0"):
        RayExecutor(workers=0)
    with pytest.raises(ValueError, match="max_retries=-1"):
        RayExecutor(max_retries=-1)
