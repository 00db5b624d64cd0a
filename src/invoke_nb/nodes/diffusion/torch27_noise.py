"""``torch.randn(..., dtype=float16, generator=Generator("cpu").manual_seed(seed))`` as
torch 2.7 computes it, the torch InvokeAI 6.11 ships with (``torch==2.7.1``).

InvokeAI's SD3 and FLUX nodes draw their starting noise in float16 on the CPU. Torch 2.7
fills a float16 tensor of 16 or more elements with its own float16 path: 16 uniforms at a
time (``(mt19937() & 2047) / 2048``), then Box-Muller on pairs (i, i + 8) with every
intermediate (``1 - u``, ``log``, ``-2 *``, ``sqrt``, ``2 pi u``, ``cos``/``sin``, the
product) rounded to float16; a size that is not a multiple of 16 redraws its last 16
values. Newer torch (2.13 here) draws in float32 and rounds once, so the same call gives
other numbers and InvokeAI-made images would not re-generate. This module rebuilds the
torch 2.7 stream from the Mersenne Twister words (numpy's MT19937 with the same seeding).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["randn_float16_torch27"]

_H, _F = np.float16, np.float32


def _words(seed: int, n: int) -> np.ndarray:
    """The first ``n`` 32-bit outputs of ``torch.Generator("cpu").manual_seed(seed)``."""
    bits = np.random.MT19937(0)
    bits._legacy_seeding(seed & 0xFFFFFFFF)  # mt19937's init_genrand, as torch seeds it
    return bits.random_raw(n)


def _uniform(words: np.ndarray) -> np.ndarray:
    return ((words & 2047).astype(_F) / _F(2048)).astype(_H)


def _box_muller_16(d: np.ndarray) -> None:
    """torch 2.7's ``normal_fill_16`` for float16, in place on 16 values."""
    u1 = (_F(1) - d[:8].astype(_F)).astype(_H)
    log = np.log(u1.astype(_F)).astype(_H)
    radius = np.sqrt((_F(-2) * log.astype(_F)).astype(_H).astype(_F)).astype(_H)
    theta = (2.0 * np.pi * d[8:16].astype(np.float64)).astype(_H)
    cos = np.cos(theta.astype(_F)).astype(_H)
    sin = np.sin(theta.astype(_F)).astype(_H)
    d[:8] = (radius.astype(_F) * cos.astype(_F)).astype(_H)
    d[8:16] = (radius.astype(_F) * sin.astype(_F)).astype(_H)


def randn_float16_torch27(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    """Standard normal float16 noise of ``shape`` (16 or more values) as torch 2.7 draws it."""
    import torch

    n = int(np.prod(shape))
    if n < 16:  # torch's per-value path; never a latent tensor
        raise ValueError(f"torch 2.7's float16 noise is rebuilt for 16+ values, not {n}")
    words = _words(seed, n + (16 if n % 16 else 0))
    d = _uniform(words[:n])
    for i in range(0, n - 15, 16):
        _box_muller_16(d[i : i + 16])
    if n % 16:
        tail = d[n - 16 :]
        tail[:] = _uniform(words[n:])
        _box_muller_16(tail)
    return torch.from_numpy(d.reshape(shape).copy())
