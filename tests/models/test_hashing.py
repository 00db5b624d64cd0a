"""Model hashes follow InvokeAI's rule, so metadata from InvokeAI finds models by hash."""

from __future__ import annotations

from pathlib import Path

import pytest
from blake3 import blake3

from invoke_nb.models.hashing import model_hash

# Computed with InvokeAI 6.14.2's ``ModelHash().hash(path)`` (its wheel's model_hash.py) on
# the same bytes as below: our hashes must match its hashes exactly.
INVOKEAI_FILE_HASH = "blake3:1b06ce5ad94441612fe1c77dc37a0a89d86d5d4452b1c0c63f52adc5daf682cd"
INVOKEAI_FOLDER_HASH = "blake3:3fac60c14898eb4987f16204fda63538e325c8fc8488a7606e6e9260098f4209"


def test_single_file_is_blake3_of_its_bytes(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000
    f = tmp_path / "m.safetensors"
    f.write_bytes(data)
    assert model_hash(f) == "blake3:" + blake3(data).hexdigest() == INVOKEAI_FILE_HASH
    assert model_hash(f, threads=False) == model_hash(f)


def test_empty_file(tmp_path: Path) -> None:
    f = tmp_path / "empty.bin"
    f.write_bytes(b"")
    assert model_hash(f) == "blake3:" + blake3(b"").hexdigest()


def test_folder_hashes_weight_files_in_path_order(tmp_path: Path) -> None:
    root = tmp_path / "pipe"
    files = {
        "unet/diffusion_pytorch_model.safetensors": b"unet",
        "a-b/x.bin": b"ab",  # '-' sorts before '/' as text, but "a" < "a-b" part by part
        "a/z.pt": b"az",
        "text_encoder/model.safetensors": b"te",
        "unet/config.json": b"{}",  # configs do not count
        "model_index.json": b"{}",
        "README.md": b"hello",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    order = [
        "a/z.pt",
        "a-b/x.bin",
        "text_encoder/model.safetensors",
        "unet/diffusion_pytorch_model.safetensors",
    ]
    composite = blake3()
    for rel in order:
        composite.update(blake3(files[rel]).hexdigest().encode())
    assert model_hash(root) == "blake3:" + composite.hexdigest()
    # the value InvokeAI 6.14.2's own ModelHash gives for this folder (computed once with it)
    assert model_hash(root) == INVOKEAI_FOLDER_HASH

    (root / "unet" / "config.json").write_text('{"changed": true}')
    assert model_hash(root) == "blake3:" + composite.hexdigest()
    (root / "a" / "z.pt").write_bytes(b"changed")
    assert model_hash(root) != "blake3:" + composite.hexdigest()


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope"):
        model_hash(tmp_path / "nope")
