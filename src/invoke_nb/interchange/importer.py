"""Importing images made elsewhere (InvokeAI, ComfyUI, A1111/Forge, NovelAI, Fooocus, SwarmUI,
InvokeAI 2.x; PNG, JPEG, WebP) into the catalog."""

from __future__ import annotations

import hashlib
import io
import uuid
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from invoke_nb.catalog.errors import ImageFileError
from invoke_nb.catalog.gallery import placeholders
from invoke_nb.catalog.pngchunks import (
    build_pnginfo,
    columns_from_metadata,
    dumps,
    graph_hash,
    read_text_chunks,
)
from invoke_nb.catalog.records import ImportResult, utcnow
from invoke_nb.interchange.othertools import read_image_metadata

if TYPE_CHECKING:
    from invoke_nb.catalog.images import ImageRepository

__all__ = ["import_folder"]

_OTHER_IMAGE_SUFFIXES = {".gif", ".bmp", ".tif", ".tiff", ".avif"}
_IMPORTED = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def _check_pixels(path: Path, size: tuple[int, int]) -> None:
    """Refuse an image larger than Pillow's decompression-bomb limit
    (``PIL.Image.MAX_IMAGE_PIXELS``, ~89 Mpx by default; raise it to import bigger files)
    before it is decoded: a small file can claim a huge canvas."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit and size[0] * size[1] > limit:
        raise ImageFileError(
            f"{path}: {size[0]}x{size[1]} pixels is over the limit of {limit} "
            "(PIL.Image.MAX_IMAGE_PIXELS); skipped"
        )


def import_folder(
    repo: ImageRepository,
    folder: str | Path,
    *,
    board_id: str | None = None,
    recursive: bool = True,
    batch_size: int = 64,
) -> list[ImportResult]:
    """Import PNG, JPEG and WebP images (with the metadata of the tool that made them, see
    :mod:`~invoke_nb.interchange.othertools`); one result per file.

    PNGs are copied byte for byte (their own chunks stay); JPEG and WebP are stored as PNGs
    keeping their metadata text. A file whose bytes are already catalogued is reported as a
    duplicate; an unreadable one, or an image file in another format, as an error with the
    reason. Other files are ignored.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"import_folder: {folder} is not a folder")
    if board_id is not None:
        with repo._db.connection() as conn:
            repo._check_boards(conn, {board_id})
    found = folder.rglob("*") if recursive else folder.glob("*")
    files = sorted(p for p in found if p.is_file() and ".pending" not in p.parts)
    paths = [p for p in files if p.suffix.lower() in _IMPORTED]
    results: list[ImportResult] = [
        ImportResult(
            path=str(p),
            status="error",
            reason=f"{p.name}: only PNG, JPEG and WebP files are imported (where tools keep "
            "generation metadata); convert it to PNG first",
        )
        for p in files
        if p.suffix.lower() in _OTHER_IMAGE_SUFFIXES
    ]
    for start in range(0, len(paths), batch_size):
        results += _import_batch(repo, paths[start : start + batch_size], board_id)
    return results


def _import_batch(
    repo: ImageRepository, paths: list[Path], board_id: str | None
) -> list[ImportResult]:
    results: dict[Path, ImportResult] = {}
    staged: list[tuple[Path, dict[str, Any], bytes, Any]] = []
    hashes: dict[str, Path] = {}
    for path in paths:
        try:
            raw = path.read_bytes()
            digest = hashlib.sha256(raw).hexdigest()
            if digest in hashes:
                results[path] = ImportResult(
                    path=str(path), status="duplicate", reason=f"same bytes as {hashes[digest]}"
                )
                continue
            with warnings.catch_warnings():  # the size is checked below, with our error
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                im = Image.open(io.BytesIO(raw))
            with im:
                if im.format not in _IMPORTED.values():
                    raise ImageFileError(f"{path}: not a PNG, JPEG or WebP ({im.format})")
                _check_pixels(path, im.size)  # from the header, before any decoding
                im.load()
                chunks = read_text_chunks(im) if im.format == "PNG" else {}
                found = read_image_metadata(im, chunks)
                size = im.size
                # JPEG/WebP are stored as PNGs, with the text their metadata came from
                as_png = None if im.format == "PNG" else _as_png(im, found.keep)
            ex = found.extracted
            meta_columns = columns_from_metadata(ex.metadata)
            meta_text = dumps(ex.metadata) if ex.metadata is not None else None
            ghash = graph_hash(ex.graph)
        except ImageFileError as exc:
            results[path] = ImportResult(path=str(path), status="error", reason=str(exc))
            continue
        except Image.DecompressionBombError as exc:  # Pillow refused it at open
            reason = f"{path}: too many pixels to decode safely ({exc}); skipped"
            results[path] = ImportResult(path=str(path), status="error", reason=reason)
            continue
        except RecursionError:
            reason = f"{path}: its metadata is nested too deeply to read; skipped"
            results[path] = ImportResult(path=str(path), status="error", reason=reason)
            continue
        except (Exception, Image.DecompressionBombWarning) as exc:  # one bad file, not the batch
            reason = f"cannot read {path}: {type(exc).__name__}: {exc}"
            results[path] = ImportResult(path=str(path), status="error", reason=reason)
            continue
        hashes[digest] = path
        if as_png is not None:
            size = as_png[0].size
        now = utcnow()
        row = {
            "image_name": f"{uuid.uuid4()}.png",
            "image_origin": "external",
            "image_category": "general",
            "width": size[0],
            "height": size[1],
            "has_workflow": ex.workflow is not None,
            "board_id": board_id,
            "created_at": now,
            "updated_at": now,
            "metadata": meta_text,
            "graph_hash": ghash,
            "content_hash": digest,
            "source": ex.source,
            **meta_columns,
        }
        staged.append((path, row, raw, as_png))
    if staged:
        with repo._db.connection() as conn:
            digests = [row["content_hash"] for _, row, _, _ in staged]
            dup_rows = conn.execute(
                "SELECT content_hash, image_name FROM images "
                f"WHERE content_hash IN ({placeholders(len(digests))})",
                digests,
            ).fetchall()
        dups = dict(dup_rows)
        fresh = []
        for path, row, raw, as_png in staged:
            if row["content_hash"] in dups:
                results[path] = ImportResult(
                    path=str(path),
                    status="duplicate",
                    image_name=dups[row["content_hash"]],
                    reason="already in the catalog",
                )
            else:
                fresh.append((path, row, raw, as_png))
        if fresh:
            repo._stage_and_insert(
                [
                    (row, *as_png, None) if as_png else (row, None, None, raw)
                    for _, row, raw, as_png in fresh
                ]
            )
            for path, row, _, _ in fresh:
                results[path] = ImportResult(
                    path=str(path),
                    status="imported",
                    image_name=row["image_name"],
                    source=row["source"],
                )
    return [results[p] for p in paths]


def _as_png(im: Image.Image, keep: dict[str, str]) -> tuple[Image.Image, Any]:
    """A JPEG/WebP frame upright, in a PNG mode, with its metadata text as PNG chunks."""
    from PIL import ImageOps

    try:
        img = ImageOps.exif_transpose(im)
    except Exception:  # a broken orientation tag keeps the stored orientation
        img = im
    img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
    info = build_pnginfo(None, None, None)
    for key, text in keep.items():
        info.add_text(key, text)
    return img, info
