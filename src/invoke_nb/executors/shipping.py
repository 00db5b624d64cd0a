"""Moving a model's files to a Ray worker in pieces: never whole in anyone's memory.

A model part (a ``.safetensors`` file, or a diffusers folder, which travels as a tar stream)
is cut into chunks of :data:`CHUNK_BYTES` as it is read; each chunk goes to ``put`` (Ray's
``ray.put``: the object store) and is dropped, so the kernel holds one chunk at a time
however big the checkpoint (an SDXL one is ~7 GB). The worker fetches the chunks one by one
(``get``: ``ray.get``) and writes them straight to disk, untarring folders as a stream.
Workers that can read the kernel's paths (shared storage) get nothing shipped at all: see
``RayExecutor(ship_models=...)``.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["CHUNK_BYTES", "pack_chunks", "unpack_chunks"]

CHUNK_BYTES = 64 << 20
"""Bytes per shipped piece: large enough that per-object overhead does not matter, small
enough that the kernel's read buffer stays small."""


class _ChunkWriter(io.RawIOBase):
    """A write-only stream that hands every full chunk to ``put`` (for tar's output)."""

    def __init__(self, put: Callable[[bytes], Any], size: int) -> None:
        self.put, self.size = put, size
        self.buf = bytearray()
        self.refs: list[Any] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.buf += data
        while len(self.buf) >= self.size:
            self.refs.append(self.put(bytes(memoryview(self.buf)[: self.size])))
            del self.buf[: self.size]
        return len(data)

    def finish(self) -> list[Any]:
        if self.buf:
            self.refs.append(self.put(bytes(self.buf)))
            self.buf = bytearray()
        return self.refs


def pack_chunks(
    path: str | os.PathLike[str], put: Callable[[bytes], Any], chunk_size: int = CHUNK_BYTES
) -> list[Any]:
    """Read a model file (or tar a model folder) in ``chunk_size`` pieces, handing each to
    ``put``; returns what ``put`` returned, in order."""
    p = Path(path)
    if p.is_file():
        refs = []
        with p.open("rb") as f:
            while block := f.read(chunk_size):
                refs.append(put(block))
        return refs
    writer = _ChunkWriter(put, chunk_size)
    with tarfile.open(fileobj=writer, mode="w|") as tar:  # a stream: no seeking back
        tar.add(p, arcname=p.name)
    return writer.finish()


class _ChunkReader(io.RawIOBase):
    """A read-only stream over chunks fetched one at a time (for tar's input)."""

    def __init__(self, chunks: Iterable[Any], get: Callable[[Any], bytes]) -> None:
        self._chunks: Iterator[Any] = iter(chunks)
        self._get = get
        self._cur = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not len(self._cur):
            nxt = next(self._chunks, None)
            if nxt is None:
                return 0
            self._cur = memoryview(self._get(nxt))
        n = min(len(buffer), len(self._cur))
        buffer[:n] = self._cur[:n]
        self._cur = self._cur[n:]
        return n


def unpack_chunks(
    chunks: Iterable[Any],
    get: Callable[[Any], bytes],
    name: str,
    is_dir: bool,
    dest_dir: Path,
) -> Path:
    """Write shipped chunks under ``dest_dir`` as they arrive; the model's path there."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    if not is_dir:
        target = dest_dir / name
        with target.open("wb") as f:
            for c in chunks:
                f.write(get(c))
        return target
    stream = io.BufferedReader(_ChunkReader(chunks, get), buffer_size=1 << 20)
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        tar.extractall(dest_dir, filter="data")
    return dest_dir / name
