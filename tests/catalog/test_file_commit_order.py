"""A row is never committed without its files: read-only or foreign-filesystem
``thumbnails/``, a rename that fails, a full disk. Mount-based cases need root (tmpfs mounts);
elsewhere they skip, and the injected-failure cases still run."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from invoke_nb.catalog import Catalog
from invoke_nb.catalog import files as files_module
from invoke_nb.catalog.errors import ImageFileError


def _mount_tmpfs(where: Path, size: str, *, read_only: bool = False) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if read_only else "")
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)],
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


@pytest.fixture
def mounts() -> Iterator[list[Path]]:
    """Mount points made by a test, unmounted afterwards."""
    made: list[Path] = []
    yield made
    for m in reversed(made):
        subprocess.run(["umount", "-l", str(m)], capture_output=True, timeout=10)


def mount_or_skip(mounts: list[Path], where: Path, size: str, **kw: bool) -> None:
    if os.geteuid() != 0 or not _mount_tmpfs(where, size, **kw):
        pytest.skip("needs root to mount a tmpfs (a read-only / small / foreign filesystem)")
    mounts.append(where)


def consistent(cat: Catalog) -> None:
    """Every row has its PNG and thumbnail; no file without a row; nothing left pending."""
    report = cat.check()
    assert report.missing_files == [] and report.untracked_files == [], report
    for (name,) in cat.sql("SELECT image_name FROM images").fetchall():
        assert cat.files.path(name).is_file() and cat.files.thumbnail_path(name).is_file()
    thumbs = {p.stem for p in cat.files.thumbnails_dir.glob("*.webp")}
    assert thumbs == {Path(n).stem for (n,) in cat.sql("SELECT image_name FROM images").fetchall()}
    assert not list(cat.files.pending_dir.iterdir())


def test_read_only_thumbnails_leave_no_row(tmp_path: Path, mounts: list[Path]) -> None:
    root = tmp_path / "studio"
    Catalog(root).close()
    thumbs = root / "thumbnails"
    if os.geteuid() != 0:  # permissions bind everyone but root
        (thumbs / ".pending").rmdir()
        thumbs.chmod(0o555)
    else:  # root ignores them: an empty read-only filesystem in place of thumbnails/
        mount_or_skip(mounts, thumbs, "1M", read_only=True)
    cat = Catalog(root)
    try:
        with pytest.raises(ImageFileError, match="thumbnails"):
            cat.images.save(Image.new("RGB", (32, 32), (9, 9, 9)))
        assert cat.images.count() == 0
        assert not list(cat.files.images_dir.glob("*.png"))
        assert not list(cat.files.pending_dir.iterdir())
    finally:
        cat.close()
        if os.geteuid() != 0:
            thumbs.chmod(0o755)


def test_thumbnails_on_another_filesystem(tmp_path: Path, mounts: list[Path]) -> None:
    root = tmp_path / "studio"
    Catalog(root).close()
    mount_or_skip(mounts, root / "thumbnails", "4M")
    cat = Catalog(root)
    try:
        rec = cat.images.save(Image.new("RGB", (32, 32), (9, 9, 9)))
        assert cat.images.get_thumbnail(rec.image_name).size == (32, 32)
        consistent(cat)
    finally:
        cat.close()


def test_failed_rename_takes_the_row_back(cat: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    kept = cat.images.save(Image.new("RGB", (8, 8), (1, 1, 1)))
    real = os.replace

    def flaky(src: object, dst: object) -> None:
        if str(dst).endswith(".png"):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real(src, dst)

    monkeypatch.setattr(files_module.os, "replace", flaky)
    with pytest.raises(ImageFileError, match="could not move image"):
        cat.images.save(Image.new("RGB", (8, 8), (2, 2, 2)))
    monkeypatch.undo()
    assert [r.image_name for r in cat.images.list().items] == [kept.image_name]
    consistent(cat)


def test_disk_full_at_the_write_saves_nothing(
    cat: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(path: Path, write: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files_module, "_fsync_write", full)
    with pytest.raises(ImageFileError, match="No space left"):
        cat.images.save(Image.new("RGB", (8, 8), (2, 2, 2)))
    monkeypatch.undo()
    assert cat.images.count() == 0
    consistent(cat)
