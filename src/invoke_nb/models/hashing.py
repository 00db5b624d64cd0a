"""Model content hashes, computed the way InvokeAI computes them.

InvokeAI writes ``{key, hash, name, base, type}`` into image metadata, ``hash`` looking like
``blake3:<hex>``. Computing the same value here lets a graph from an InvokeAI PNG find the
same model installed in invoke-nb by hash.

The rule (InvokeAI 6.x, ``model_hash``):
- a single file: the BLAKE3 hex digest of its bytes;
- a folder: every file below it (recursively) whose name ends in one of
  :data:`WEIGHT_SUFFIXES` is hashed on its own; the files are ordered by path (component by
  component); the final digest is BLAKE3 over the concatenated hex digests (UTF-8).
Config and tokenizer files do not enter a folder's hash.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from blake3 import blake3

__all__ = ["WEIGHT_SUFFIXES", "file_blake3", "model_hash"]

WEIGHT_SUFFIXES = (".ckpt", ".safetensors", ".bin", ".pt", ".pth")


def file_blake3(path: str | Path, *, threads: bool = True) -> str:
    """The BLAKE3 hex digest of one file, memory-mapped and multi-threaded (fast on big files)."""
    hasher = blake3(max_threads=blake3.AUTO if threads else 1)
    if os.path.getsize(path) == 0:
        return hasher.hexdigest()  # mmap refuses empty files
    hasher.update_mmap(str(path))
    return hasher.hexdigest()


def _weight_files(folder: Path) -> list[Path]:
    found = [
        Path(root, name)
        for root, _dirs, names in os.walk(folder)
        for name in names
        if name.endswith(WEIGHT_SUFFIXES)
    ]
    # InvokeAI sorts Path objects, which compare component by component (not as strings).
    return sorted(found, key=lambda p: p.parts)


def model_hash(
    path: str | Path,
    *,
    threads: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> str:
    """``blake3:<hex>`` for a model file or folder, identical to InvokeAI's hash of it.

    ``progress(done, total)`` is called after each file of a folder.
    """
    p = Path(path)
    if p.is_file():
        digest = file_blake3(p, threads=threads)
        if progress:
            progress(1, 1)
        return f"blake3:{digest}"
    if not p.is_dir():
        raise FileNotFoundError(f"model path {str(p)!r} is neither a file nor a folder")
    files = _weight_files(p)
    composite = blake3()
    for i, f in enumerate(files, 1):
        composite.update(file_blake3(f, threads=threads).encode("utf-8"))
        if progress:
            progress(i, len(files))
    return f"blake3:{composite.hexdigest()}"
