"""Fixtures for the model manager tests: header-only safetensors files and tiny real models."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest


def write_safetensors_header(path: Path, shapes: dict[str, tuple[int, ...]]) -> Path:
    """A valid safetensors file with the given tensor names/shapes and all-zero F16 data.

    The data region is made with ``truncate`` (a sparse file), so real-size shapes such as a
    (320, 768) cross-attention weight cost nothing.
    """
    header: dict[str, object] = {}
    offset = 0
    for key, shape in shapes.items():
        n = 2
        for d in shape:
            n *= d
        header[key] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        f.truncate(8 + len(raw) + offset)
    return path


# Aliases of the session-wide tiny models (tests/conftest.py), named for what they are here.
@pytest.fixture(scope="session")
def sd1_folder(tiny_sd1: Path) -> Path:
    return tiny_sd1


@pytest.fixture(scope="session")
def sd1_file(tiny_sd1_file: Path) -> Path:
    return tiny_sd1_file


@pytest.fixture(scope="session")
def sdxl_folder(tiny_sdxl: Path) -> Path:
    return tiny_sdxl
