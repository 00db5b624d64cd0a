"""Shipping a model to a Ray worker in chunks (no Ray needed: ``put``/``get`` stand in for the
object store): the kernel's reading stays bounded by the chunk size whatever the model's size,
and the worker ends up with byte-identical files."""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from invoke_nb.executors.shipping import pack_chunks, unpack_chunks
from invoke_nb.models.hashing import model_hash

CHUNK = 64 << 10  # 64 KiB pieces for 4 MiB of weights: 64x the chunk


def _store(root: Path) -> tuple[Callable[[bytes], Path], Callable[[Path], bytes], list[int]]:
    """An object store on disk: ``put`` keeps nothing in memory; sizes of what it got."""
    root.mkdir()
    sizes: list[int] = []

    def put(data: bytes) -> Path:
        sizes.append(len(data))
        path = root / f"{len(sizes):06d}"
        path.write_bytes(data)
        return path

    return put, Path.read_bytes, sizes


def _packed_peak(src: Path, put: Callable[[bytes], Path]) -> tuple[list[Path], int]:
    tracemalloc.start()
    try:
        refs = pack_chunks(src, put, CHUNK)
        return refs, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_file_travels_in_bounded_chunks_and_arrives_identical(tmp_path: Path) -> None:
    src = tmp_path / "unet.safetensors"
    src.write_bytes(os.urandom(4 << 20))
    put, get, sizes = _store(tmp_path / "store")
    refs, peak = _packed_peak(src, put)
    assert len(refs) == 64 and max(sizes) == CHUNK and sum(sizes) == src.stat().st_size
    assert peak < 4 * CHUNK, f"kernel peak {peak} bytes for a {src.stat().st_size}-byte file"
    got = unpack_chunks(refs, get, src.name, False, tmp_path / "worker")
    assert got.read_bytes() == src.read_bytes()


def test_a_folder_travels_as_a_tar_stream_and_arrives_identical(tmp_path: Path) -> None:
    src = tmp_path / "tiny-model"
    (src / "unet").mkdir(parents=True)
    (src / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(os.urandom(3 << 20))
    (src / "unet" / "config.json").write_text('{"sample_size": 8}')
    (src / "model_index.json").write_text("{}")
    put, get, sizes = _store(tmp_path / "store")
    refs, peak = _packed_peak(src, put)
    assert len(refs) > 40 and max(sizes) <= CHUNK
    assert peak < 4 * CHUNK, f"kernel peak {peak} bytes for a 3 MiB folder"
    got = unpack_chunks(refs, get, src.name, True, tmp_path / "worker")
    for f in src.rglob("*"):
        if f.is_file():
            assert (got / f.relative_to(src)).read_bytes() == f.read_bytes(), f
    assert model_hash(got) == model_hash(src)


def test_reading_all_at_once_would_show_in_the_peak(tmp_path: Path) -> None:
    """The peak measure above can fail: a whole-file read shows the file's size."""
    src = tmp_path / "w.bin"
    src.write_bytes(os.urandom(1 << 20))
    tracemalloc.start()
    try:
        src.read_bytes()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak >= 1 << 20
