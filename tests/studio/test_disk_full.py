"""A full disk fails the enqueue or the queue item (with the reason) instead of leaving it in_progress, and
leaves no row without files. The real case mounts a small tmpfs (root only; it skips
elsewhere); the injected case runs everywhere."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pytest
from PIL import Image

import invoke_nb as inb
from invoke_nb.nodes import InputField, node
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.primitives import ImageOutput, ImageSavingNode
from invoke_nb.studio import Studio


@node("t_noise_image", category="test", deterministic=False)
class NoiseImage(ImageSavingNode):
    """Random pixels (PNG does not compress them): a save that needs real disk space."""

    size: int = InputField(default=256)

    def invoke(self, ctx: Context) -> ImageOutput:
        rng = np.random.default_rng()
        pixels = rng.integers(0, 256, (self.size, self.size, 3), dtype=np.uint8)
        return self.save_image(ctx, Image.fromarray(pixels))


def noise_graph(size: int) -> inb.Graph:
    g = inb.Graph()
    g.add("t_noise_image", id="n", size=size)
    return g


def wait_until(check, seconds: float = 60.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def small_root(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a size-limited tmpfs")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=12M", "tmpfs", str(mnt)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.mark.parametrize("left_kib", [40, 0])
def test_full_disk_fails_the_item(small_root: Path, left_kib: int) -> None:
    studio = Studio(small_root / "studio")
    try:
        studio.run(noise_graph(64), progress=False, timeout=60)  # the catalog works
        before = studio.catalog.images.count()
        queued = len(studio.catalog.queue.list())
        st = os.statvfs(small_root)
        free = st.f_bavail * st.f_frsize
        filler = small_root / "filler"
        # left_kib=0: until the disk says no
        with contextlib.suppress(OSError), open(filler, "wb") as fh:
            fh.write(b"\0" * max(0, free - left_kib * 1024))
        with pytest.raises(Exception, match=r"No space left|could not write") as raised:
            studio.run(noise_graph(512), progress=False, timeout=20)
        filler.unlink()  # space comes back: the outcome reaches the catalog
        items = studio.catalog.queue
        last = max(items.list(), key=lambda i: i.item_id)
        if len(items.list()) == queued:
            # the disk was too full even to queue the item (the commit could not grow
            # DuckDB's WAL): the enqueue said so and nothing was queued
            assert "No space left" in str(raised.value)
            assert items.list(status="pending") == items.list(status="in_progress") == []
        elif "cannot claim" in str(raised.value):
            # the disk was too full even to claim the item (DuckDB's WAL could not grow):
            # the wait said so, and the item, still pending, runs once there is space
            assert wait_until(lambda: items.get(last.item_id).status == "completed")
            before += 1
        else:  # claimed, then the save found no space: the item failed, saying why
            assert wait_until(lambda: items.list(status="in_progress") == []), items.list()
            last = items.get(last.item_id)
            assert last.status == "failed" and "space" in (last.error_message or "")
        assert studio.catalog.images.count() == before
        report = studio.catalog.check()
        assert report.missing_files == [] and report.untracked_files == []
        # and the queue goes on
        assert studio.run(noise_graph(32), progress=False, timeout=60).image.pil.size == (32, 32)
    finally:
        studio.close()


def test_outcome_the_catalog_refused_is_recorded_later(
    studio: Studio, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = studio.catalog.queue.finish
    refusals = []

    def full_disk(item_id: int, status: str, **kw):
        if len(refusals) < 3:
            refusals.append(item_id)
            raise duckdb.IOException("Could not write file: No space left on device")
        return real(item_id, status, **kw)

    monkeypatch.setattr(studio.catalog.queue, "finish", full_disk)
    result = studio.run(noise_graph(16), progress=False, timeout=60)
    assert result.image.pil.size == (16, 16)  # the waiter has its result at once
    item = result.item_id
    assert wait_until(lambda: studio.catalog.queue.get(item).status == "completed")
    assert len(refusals) == 3
    # the queue takes new items again once the outcome is written
    assert studio.run(noise_graph(8), progress=False, timeout=60).image.pil.size == (8, 8)
