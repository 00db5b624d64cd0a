"""Two processes on one root, a lock held too long, and a writer killed mid-batch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from catalog_data import pixel_image

from invoke_nb.catalog import Catalog, CatalogBusyError

WORKER = str(Path(__file__).with_name("_worker.py"))


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, WORKER, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_two_processes_write_and_read_at_once(tmp_path: Path) -> None:
    root = tmp_path / "studio"
    cat = Catalog(root)
    ids = cat.queue.enqueue([{"job": i} for i in range(12)])
    cat.close()
    procs = [_spawn("write", str(root), tag, "8") for tag in ("alpha", "beta")]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outs.append(json.loads(out))

    assert outs[0]["torch"] is False  # the catalog works without torch
    cat = Catalog(root)
    names = outs[0]["names"] + outs[1]["names"]
    assert len(set(names)) == 16 and cat.images.count() == 16
    assert cat.images.exists(names) == set(names)
    assert cat.images.count(search="alpha number") == 8
    assert cat.images.count(search="beta number") == 8
    for n in names:
        assert cat.images.get_pil(n).size == (16, 16)
    # every queue item was run exactly once, by one process or the other
    a, b = set(outs[0]["claimed"]), set(outs[1]["claimed"])
    assert not a & b and a | b == set(ids)
    assert cat.queue.counts()["completed"] == 12
    report = cat.check()
    assert report.clean, report
    cat.close()


def test_lock_held_too_long_names_the_holder(tmp_path: Path) -> None:
    root = tmp_path / "studio"
    cat = Catalog(root, busy_timeout=0.5)
    cat.images.save(pixel_image((1, 2, 3)))
    cat.release()
    holder = _spawn("hold", str(root), "4")
    try:
        assert holder.stdout.readline().strip() == "held"
        start = time.monotonic()
        with pytest.raises(CatalogBusyError) as info:
            cat.images.count()
        assert time.monotonic() - start >= 0.5  # it retried for busy_timeout...
        assert holder.poll() is None  # ...and gave up while the lock was still held (4 s)
        assert info.value.pid == holder.pid
        assert f"process {holder.pid}" in str(info.value) and "busy" in str(info.value)
        with pytest.raises(CatalogBusyError):
            cat.images.save(pixel_image((4, 5, 6)))
    finally:
        holder.wait(timeout=30)
    # once the other process lets go, work continues and nothing was half-written
    assert cat.images.count() == 1
    assert cat.check().clean
    cat.close()


def test_waiting_process_gets_the_file_when_holder_idles(tmp_path: Path) -> None:
    """A Catalog keeps the file only while busy: another process gets in promptly."""
    root = tmp_path / "studio"
    cat = Catalog(root, idle_release=30)  # would keep the file 30 s if nobody asked
    cat.images.save(pixel_image((1, 1, 1)))
    assert cat.db.is_open
    other = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(Path(WORKER).parent)!r}); import _worker; from invoke_nb.catalog import Catalog; print(Catalog({str(root)!r}, busy_timeout=10).images.count())"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert other.returncode == 0, other.stderr
    assert other.stdout.strip() == "1"
    assert cat.images.count() == 1
    cat.close()


@pytest.mark.parametrize("delay", [0.6, 1.3])
def test_kill_9_mid_batch_leaves_a_consistent_catalog(tmp_path: Path, delay: float) -> None:
    root = tmp_path / "studio"
    Catalog(root).close()
    proc = _spawn("crash", str(root))
    ticks = 0
    deadline = time.monotonic() + 60
    while ticks < 2 and time.monotonic() < deadline:
        if proc.stdout.readline().startswith("tick"):
            ticks += 1
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)

    cat = Catalog(root)
    batches = cat.sql(
        "SELECT split_part(image_name, '-', 1) AS b, count(*) AS n FROM images "
        "WHERE image_name LIKE 'batch%' GROUP BY 1"
    ).fetchall()
    assert len(batches) >= 2
    assert {n for _, n in batches} == {200}  # each batch is all there or not at all
    report = cat.check()
    # the batch rows are records only (like an import of rows); every saved image has its files
    assert [n for n in report.missing_files if not n.startswith("batch")] == []
    assert report.untracked_files == []
    assert not list((root / "images" / ".pending").iterdir())
    saved = cat.images.list(limit=1000, search=None).items
    real = [r for r in saved if not r.image_name.startswith("batch")]
    assert len(real) >= 2
    for r in real:
        assert cat.images.get_pil(r.image_name).size == (256, 256)
        assert cat.files.thumbnail_path(r.image_name).exists()
    cat.close()


def test_recovery_finishes_or_undoes_interrupted_saves(cat: Catalog) -> None:
    """The two crash windows of a save, reproduced exactly with a dead writer's PID."""
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)
    pending = cat.files.pending_dir
    im = pixel_image((3, 4, 5))
    # crash after the record committed, before the rename
    im.save(pending / f"{pid}-committed.png")
    im.save(pending / f"{pid}-committed.webp")
    cat.images.insert_records([{"image_name": "committed.png", "width": 40, "height": 24}])
    # crash before the record was inserted
    im.save(pending / f"{pid}-orphan.png")
    im.save(pending / f"{pid}-orphan.webp")
    # a live process's save in flight is left alone
    im.save(pending / f"{os.getppid()}-inflight.png")

    report = Catalog(cat.root).recovery
    assert report.completed == ["committed.png"] and report.discarded == ["orphan.png"]
    assert cat.images.get_pil("committed.png").getpixel((0, 0)) == (3, 4, 5)
    assert cat.files.thumbnail_path("committed.png").exists()
    assert sorted(p.name for p in pending.iterdir()) == [f"{os.getppid()}-inflight.png"]
    assert not (cat.root / "images" / "orphan.png").exists()
