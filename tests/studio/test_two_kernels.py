"""Two kernels (real processes) on one studio root: the idle one never takes the other's
``run()`` items, and the shared queue is worked by both, each waiter getting its outcome."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from invoke_nb.studio import Studio

KERNEL = Path(__file__).with_name("_kernel.py")
SRC = Path(__file__).resolve().parents[2] / "src"


def spawn(root: Path) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [sys.executable, str(KERNEL), str(root), "300"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.strip() == "ready":
            return proc
        if not line and proc.poll() is not None:
            break
    proc.kill()
    pytest.fail("the second kernel did not start")


def stop(proc: subprocess.Popen[str], root: Path) -> list[int]:
    """Ask the other kernel to close; the item ids it started."""
    (root / "stop").touch()
    out, _ = proc.communicate(timeout=120)
    assert "closed" in out
    return [json.loads(line)["ran"] for line in out.splitlines() if line.startswith("{")]


def test_idle_kernel_never_takes_a_run_item(tmp_path: Path, slow_graph) -> None:
    root = tmp_path / "studio"
    a = Studio(root)
    b = spawn(root)
    try:
        # A is busy with a queued item while its run() items wait behind it: the idle
        # kernel B sees them pending and must leave them alone
        (busy,) = a.enqueue(slow_graph(steps=30, delay=0.05))
        results = [
            a.run(slow_graph(steps=2, delay=0.01), progress=False, timeout=90) for _ in range(4)
        ]
        a.wait(busy, timeout=90)
    finally:
        ran = stop(b, root)
    try:
        assert ran == []
        assert [r.outputs["slow"].value for r in results] == [2, 2, 2, 2]  # in memory: ran here
        items = a.catalog.queue.list()
        assert len(items) == 5 and {i.status for i in items} == {"completed"}
        assert {i.worker_pid for i in items} == {os.getpid()}
    finally:
        a.close()


def test_shared_queue_is_worked_by_both(tmp_path: Path, slow_graph) -> None:
    root = tmp_path / "studio"
    a = Studio(root)
    b = spawn(root)
    try:
        ids = a.enqueue(slow_graph(steps=6, delay=0.1), runs=10, shared=True)
        results = {i: a.wait(i, timeout=120) for i in ids}
    finally:
        ran = stop(b, root)
    try:
        items = {i: a.catalog.queue.get(i) for i in ids}
        assert {it.status for it in items.values()} == {"completed"}
        by_b = {i for i, it in items.items() if it.worker_pid == b.pid}
        by_a = {i for i, it in items.items() if it.worker_pid == os.getpid()}
        assert by_a and by_b and by_a | by_b == set(ids), items
        assert set(ran) == by_b
        for i in by_a:
            assert results[i].outputs["slow"].value == 6
        for i in by_b:  # finished in the other kernel: the outcome came from the catalog
            assert results[i].outputs == {} and results[i].session_id == items[i].session_id
    finally:
        a.close()


def test_items_of_a_closed_studio_run_in_the_next(tmp_path: Path, slow_graph) -> None:
    root = tmp_path / "studio"
    first = Studio(root, start_queue=False)
    ids = first.enqueue(slow_graph(steps=1, delay=0.0), runs=2)
    # without a queue thread, waiting runs the item here (issue 14), never hangs
    assert first.wait(ids[0], timeout=30).outputs["slow"].value == 1
    first.close()  # ids[1] is still pending, owned by a closed Studio
    second = Studio(root)
    try:
        assert second.wait(ids[1], timeout=60).outputs["slow"].value == 1
        assert second.catalog.queue.get(ids[1]).worker_pid == os.getpid()
    finally:
        second.close()


def test_waiter_hears_when_the_running_kernel_dies(tmp_path: Path, slow_graph) -> None:
    import signal

    from invoke_nb.queue.processor import QueueItemError

    root = tmp_path / "studio"
    a = Studio(root)
    b = spawn(root)
    try:
        a.queue.pause()  # so the other kernel takes the shared item
        (item,) = a.enqueue(slow_graph(steps=600, delay=0.05), shared=True)
        assert b.stdout is not None
        line = b.stdout.readline()
        assert json.loads(line) == {"ran": item}
        os.kill(b.pid, signal.SIGKILL)
        b.wait(timeout=30)
        with pytest.raises(QueueItemError, match=f"PID {b.pid}"):
            a.wait(item, timeout=60)
        stored = a.catalog.queue.get(item)
        assert stored.status == "failed" and stored.error_type == "Interrupted"
    finally:
        if b.poll() is None:
            b.kill()
        a.close()
