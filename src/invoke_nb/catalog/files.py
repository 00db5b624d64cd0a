"""Image and thumbnail files beside the catalog, written so a crash never leaves a half-state.

A save goes in three steps: (1) the PNG is written and fsynced under
``images/.pending/<pid>-<name>``, its WebP thumbnail under ``thumbnails/.pending/``: each file
is staged in a folder inside its final folder, so the rename of step 3 never crosses
filesystems, and a folder that cannot be written fails the save before any row exists;
(2) the record is inserted in a catalog transaction; (3) the pending files are renamed into
place (``os.replace``, atomic on one filesystem). If a rename still fails, the rows are
deleted again and the error raised (:meth:`ImageRepository._stage_and_insert`).
On open, :meth:`ImageFiles.recover` looks at pending files whose writer process is gone:
if the record was committed the rename is finished, otherwise the files are deleted. So after
a crash no record lacks its file and no stray file is visible in the gallery folder.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, PngImagePlugin

from invoke_nb.catalog.connection import pid_alive
from invoke_nb.catalog.errors import ImageFileError, InvalidImageNameError

__all__ = [
    "IMAGE_NAME_PATTERN",
    "THUMBNAIL_SIZE",
    "ImageFiles",
    "RecoveryReport",
    "check_image_name",
]

THUMBNAIL_SIZE = 256
_MAX_NAME = 255  # one path component on every common filesystem
# the same rule as check_image_name, for checking whole Arrow columns at once
IMAGE_NAME_PATTERN = r"^[^./\\:\x00][^/\\:\x00]{0,250}\.[pP][nN][gG]$"


def check_image_name(image_name: object) -> str:
    """Return ``image_name`` if it is a bare ``<name>.png`` that stays inside ``images/``.

    The one gate every image name passes before a path is built from it (names arrive from
    notebooks, widget messages, shared workflows and the graphs stored in PNGs): no folder
    separators, no ``..``, no absolute or drive paths, no hidden names, no NUL, ``.png``."""
    if not isinstance(image_name, str):
        raise InvalidImageNameError(
            f"an image name must be a string, not {type(image_name).__name__}"
        )
    name = image_name
    problem = None
    if not name or len(name) > _MAX_NAME:
        problem = f"must be 1 to {_MAX_NAME} characters"
    elif "/" in name or "\\" in name or "\0" in name or ":" in name:
        problem = "must be a bare file name (no folders, drive letters or NUL)"
    elif name.startswith(".") or os.path.isabs(name):
        problem = "must not start with '.' or be an absolute path"
    elif not name.lower().endswith(".png") or len(name) == 4:
        problem = "must end in .png"
    if problem is not None:
        raise InvalidImageNameError(f"invalid image name {image_name!r}: it {problem}")
    return name


@dataclass
class RecoveryReport:
    """What the startup check found and did."""

    completed: list[str] = field(default_factory=list)  # records existed: files moved in place
    discarded: list[str] = field(default_factory=list)  # no record: pending files deleted
    missing_files: list[str] = field(default_factory=list)  # records whose PNG is gone
    untracked_files: list[str] = field(default_factory=list)  # PNGs with no record

    @property
    def clean(self) -> bool:
        """True if nothing needed repair and nothing is inconsistent."""
        return not (self.completed or self.discarded or self.missing_files or self.untracked_files)


def _fsync_write(path: Path, write: Callable[[object], None]) -> None:
    with open(path, "wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())


def make_thumbnail(image: Image.Image, size: int = THUMBNAIL_SIZE) -> Image.Image:
    """A copy that fits in ``size`` x ``size``, in a mode WebP can hold (alpha kept)."""
    has_alpha = "A" in image.getbands() or "transparency" in image.info
    thumb = image.convert("RGBA" if has_alpha else "RGB")
    thumb.thumbnail((size, size))
    return thumb


class ImageFiles:
    """Paths and atomic writes for ``images/`` and ``thumbnails/``."""

    def __init__(self, images_dir: Path, thumbnails_dir: Path) -> None:
        self.images_dir = images_dir
        self.thumbnails_dir = thumbnails_dir
        self.pending_dir = images_dir / ".pending"
        self.thumbnail_pending_dir = thumbnails_dir / ".pending"
        for d in (images_dir, thumbnails_dir, self.pending_dir, self.thumbnail_pending_dir):
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError:  # a read-only folder: browsing works, a save says what failed
                if not d.is_dir():
                    continue

    def path(self, image_name: str) -> Path:
        """Where the PNG of ``image_name`` lives (:class:`InvalidImageNameError` for a name
        that would lead elsewhere)."""
        return self.images_dir / check_image_name(image_name)

    def thumbnail_path(self, image_name: str) -> Path:
        """Where its WebP thumbnail lives."""
        return self.thumbnails_dir / (Path(check_image_name(image_name)).stem + ".webp")

    def _pending(self, image_name: str) -> tuple[Path, Path]:
        stem = f"{os.getpid()}-{Path(check_image_name(image_name)).stem}"
        return self.pending_dir / f"{stem}.png", self.thumbnail_pending_dir / f"{stem}.webp"

    def stage(
        self,
        image_name: str,
        image: Image.Image | None,
        pnginfo: PngImagePlugin.PngInfo | None = None,
        png_bytes: bytes | None = None,
    ) -> None:
        """Write the PNG (encoded from ``image`` or given as bytes) and thumbnail as pending."""
        png, thumb = self._pending(image_name)
        target = png
        try:
            for d in (self.pending_dir, self.thumbnail_pending_dir):
                target = d
                d.mkdir(exist_ok=True)
            target = png
            if png_bytes is not None:
                _fsync_write(png, lambda fh: fh.write(png_bytes))
                with Image.open(png) as im:
                    im.load()
                    image = im.copy()
            else:
                assert image is not None
                _fsync_write(
                    png, lambda fh: image.save(fh, "PNG", pnginfo=pnginfo, compress_level=6)
                )
            target = thumb
            _fsync_write(thumb, lambda fh: make_thumbnail(image).save(fh, "WEBP", quality=80))
        except OSError as exc:  # disk full, read-only folder, ...: name the file and why
            raise ImageFileError(
                f"could not write {target} for image {image_name!r}: "
                f"{exc.strerror or exc} (nothing was saved)"
            ) from exc

    def commit(self, image_names: Iterable[str]) -> None:
        """Move staged files into place (after their records are committed)."""
        for name in image_names:
            png, thumb = self._pending(name)
            try:
                os.replace(thumb, self.thumbnail_path(name))
                os.replace(png, self.path(name))
            except OSError as exc:
                raise ImageFileError(
                    f"could not move image {name!r} into {self.images_dir} / "
                    f"{self.thumbnails_dir}: {exc.strerror or exc}"
                ) from exc

    def discard(self, image_names: Iterable[str]) -> None:
        """Delete staged files whose records were not committed."""
        for name in image_names:
            for p in self._pending(name):
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()

    def delete(self, image_names: Iterable[str]) -> None:
        """Remove PNGs and thumbnails (missing files are fine)."""
        for name in image_names:
            for p in (self.path(name), self.thumbnail_path(name)):
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()

    def recover(self, has_record: Callable[[list[str]], set[str]]) -> RecoveryReport:
        """Finish or undo saves left by processes that died between the three steps."""
        report = RecoveryReport()
        groups: dict[tuple[int, str], list[Path]] = {}
        # thumbnails/.pending, and images/.pending for thumbnails staged by older versions
        staged = [
            p
            for d in (self.pending_dir, self.thumbnail_pending_dir)
            if d.is_dir()
            for p in d.iterdir()
        ]
        for p in staged:
            pid_text, _, stem = p.stem.partition("-")
            if not pid_text.isdigit():
                continue
            pid = int(pid_text)
            if pid == os.getpid() or not pid_alive(pid):
                groups.setdefault((pid, stem), []).append(p)
        if not groups:
            return report
        names = {stem + ".png": key for key, stem in ((k, k[1]) for k in groups)}
        known = has_record(list(names))
        for name, key in names.items():
            paths = groups[key]
            png = next((p for p in paths if p.suffix == ".png"), None)
            thumb = next((p for p in paths if p.suffix == ".webp"), None)
            if name in known and png is not None:
                if thumb is not None:
                    os.replace(thumb, self.thumbnail_path(name))
                os.replace(png, self.path(name))
                report.completed.append(name)
            else:
                for p in paths:
                    p.unlink()
                report.discarded.append(name)
        return report

    def listed_pngs(self) -> set[str]:
        """Names of every PNG in the images folder (a full scan: use for checks, not per page)."""
        return {
            e.name for e in os.scandir(self.images_dir) if e.name.endswith(".png") and e.is_file()
        }
