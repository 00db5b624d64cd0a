"""Hostile files in an import: each is skipped with its reason, the good files of the same
batch are imported, and nothing huge is decoded."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from invoke_nb.catalog import Catalog
from invoke_nb.interchange.importer import import_folder


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_header_png(path: Path, side: int = 30_000) -> Path:
    """A tiny file whose header claims side x side RGB pixels."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    body = _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def png(path: Path, colour: tuple[int, int, int], size=(8, 8), text: dict | None = None) -> Path:
    info = PngImagePlugin.PngInfo()
    for k, v in (text or {}).items():
        info.add_text(k, v)
    Image.new("RGB", size, colour).save(path, pnginfo=info)
    return path


def test_bad_files_are_skipped_and_the_batch_imports(
    cat: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    good = [png(src / f"good{i}.png", (i, 2, 3)) for i in range(3)]
    bomb = huge_header_png(src / "bomb.png")
    deep = "[" * 200_000 + "]" * 200_000
    nested = png(src / "nested.png", (9, 9, 9), text={"invokeai_metadata": deep})
    nested_obj = png(
        src / "nested_obj.png",
        (8, 8, 8),
        text={"parameters": "x", "invokeai_metadata": '{"a":' * 50_000 + "1" + "}" * 50_000},
    )
    # a real image over the pixel limit (the limit lowered so the test stays small): it is
    # refused from its header, not decoded
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 15_000)
    big = png(src / "big.png", (7, 7, 7), size=(100, 200))

    results = {Path(r.path).name: r for r in import_folder(cat.images, src, batch_size=64)}
    for p in good:
        assert results[p.name].status == "imported", results[p.name]
    assert results[bomb.name].status == "error"
    assert "900000000 pixels" in results[bomb.name].reason
    assert results[big.name].status == "error" and "100x200" in results[big.name].reason
    for p in (nested, nested_obj):
        assert results[p.name].status == "error", results[p.name]
        assert p.name in results[p.name].reason
    assert cat.images.count() == 3
    names = {r.image_name for r in cat.images.list().items}
    colours = sorted(cat.images.get_pil(n).getpixel((0, 0)) for n in names)
    assert colours == [(0, 2, 3), (1, 2, 3), (2, 2, 3)]


def test_huge_header_with_pillows_default_limit(cat: Catalog, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    huge_header_png(src / "a-bomb.png")
    png(src / "b-good.png", (1, 1, 1))
    results = {Path(r.path).name: r.status for r in import_folder(cat.images, src)}
    assert results == {"a-bomb.png": "error", "b-good.png": "imported"}
