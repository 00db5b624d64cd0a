"""The reference model shared with InvokeAI: the tiny SD1 factory, written the way every
transformers version reads it.

``make_sd1`` saves its CLIP text encoder with transformers 5.2x, which drops the
``text_model.`` prefix from the weight names. transformers 5.5 (what InvokeAI 6.14.2 runs)
does not map the short names back and silently starts from random weights, so InvokeAI's
images would not depend on our weights at all. Real SD1 checkpoints carry the prefix; this
module rewrites the file with it (both versions then load the same tensors).

The factory's weights come from torch's random generator, whose sampling path may change
between releases and CPUs; every float tensor is therefore replaced by values made from
integers of numpy's frozen legacy stream (:func:`deterministic_weights`), so the folder's
bytes, and its blake3 hash (the one InvokeAI recorded in the reference PNGs, see
tests/fixtures/invokeai/README.md), are the same on every machine.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

# What InvokeAI 6.14.2 recorded for this model in the reference PNGs (its own hashing).
REFERENCE_HASH = "blake3:5bf3dd45fe304bb5d8d5b52f886ad530d64876fc658ee07a64274de066cbe1ee"


def canonical_text_encoder(model_dir: Path) -> None:
    """Prefix the text encoder's weight names with ``text_model.`` (no-op when present)."""
    from safetensors.torch import load_file, save_file

    path = Path(model_dir) / "text_encoder" / "model.safetensors"
    tensors = load_file(path)
    if all(k.startswith("text_model.") for k in tensors):
        return
    fixed = {
        (k if k.startswith("text_model.") else f"text_model.{k}"): v for k, v in tensors.items()
    }
    save_file(dict(sorted(fixed.items())), path, metadata={"format": "pt"})


def _value_of(name: str, shape: tuple[int, ...]) -> Any:
    """Weights from integers only: the same bits on every machine and numpy release.

    numpy's legacy ``RandomState`` stream is frozen by its policy; integers scaled by a
    correctly rounded product give uniform values with the spread of a fan-in init, with no
    libm call (``log``/``cos`` results may differ in the last place between machines).
    """
    import numpy as np

    n = int(np.prod(shape)) if shape else 1
    if len(shape) == 1 and "norm" in name and name.endswith("weight"):
        return np.ones(shape, np.float32)
    rs = np.random.RandomState(zlib.crc32(name.encode()))
    ints = rs.randint(-(2**23), 2**23, size=n, dtype=np.int64).astype(np.float64)
    fan_in = n // shape[0] if len(shape) > 1 else 0
    std = 0.02 if fan_in == 0 else 1.0 / np.sqrt(fan_in)
    half_width = np.sqrt(3.0) * std  # uniform on [-w, w] has std w / sqrt(3)
    return (ints * (half_width / 2**23)).astype(np.float32).reshape(shape)


def deterministic_weights(model_dir: Path) -> None:
    """Replace every float tensor of the folder's safetensors files by :func:`_value_of`."""
    import torch
    from safetensors.torch import load_file, save_file

    for path in sorted(Path(model_dir).rglob("*.safetensors")):
        tensors = load_file(path)
        out = {}
        for k, v in sorted(tensors.items()):
            if v.is_floating_point():
                v = torch.from_numpy(_value_of(k, tuple(v.shape))).to(v.dtype)
            out[k] = v.contiguous()
        save_file(out, path, metadata={"format": "pt"})


def build_reference_sd1(dest: Path) -> Path:
    """The tiny SD1 model (768-wide CLIP and cross-attention, 4-block VAE) of the fixtures."""
    from invoke_nb.testing.tiny_models import make_sd1

    folder = make_sd1(Path(dest), seed=0)
    canonical_text_encoder(folder)
    deterministic_weights(folder)
    return folder
