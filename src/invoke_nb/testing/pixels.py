"""How far two images are apart, and the tolerance pixel tests allow.

Float results differ by a unit in the last place between x86-64 CPUs (SIMD width, FMA, the
kernels oneDNN/MKL pick) and between patch releases of torch, diffusers and transformers.
After decoding to 8-bit, a value that sat near a rounding boundary then lands one level
away. On the machines seen so far that moved 2 to 88 of the 12,288 values of a 64x64 RGB
image (<= 0.7%), each by one level. So pixel tests allow at most ``MAX_LEVELS`` levels and at
most ``MAX_SHARE`` of the values differing; a real mismatch (another scheduler, seed or
seeding convention) moves most values by more than 8 levels. The exact figures are reported
by ``python -m benchmarks.exactness``, not asserted.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

MAX_LEVELS = 2
MAX_SHARE = 0.02


class PixelDiff(NamedTuple):
    """The largest difference in 8-bit levels, and the share of values that differ at all."""

    max_levels: int
    share: float
    differing: int
    total: int

    def __str__(self) -> str:
        return (
            f"max {self.max_levels} levels, {self.differing}/{self.total} values "
            f"({100 * self.share:.2f}%) differ"
        )


def _rgb(img: object) -> np.ndarray:
    if hasattr(img, "convert"):  # a PIL image
        img = img.convert("RGB")
    return np.asarray(img).astype(np.int16)


def pixel_diff(a: object, b: object) -> PixelDiff:
    """Compare two images (PIL images or uint8/int arrays of the same shape)."""
    x, y = _rgb(a), _rgb(b)
    if x.shape != y.shape:
        raise ValueError(f"images differ in shape: {x.shape} vs {y.shape}")
    d = np.abs(x - y)
    n = int((d > 0).sum())
    return PixelDiff(int(d.max()) if d.size else 0, n / max(d.size, 1), n, int(d.size))


def assert_pixels_close(
    ours: object,
    ref: object,
    *,
    max_levels: int = MAX_LEVELS,
    max_share: float = MAX_SHARE,
    what: str = "image",
) -> PixelDiff:
    """Fail unless ``ours`` is within the cross-machine tolerance of ``ref``."""
    d = pixel_diff(ours, ref)
    assert d.max_levels <= max_levels and d.share <= max_share, (
        f"{what}: {d} (allowed: max {max_levels} levels, {100 * max_share:.0f}% of values)"
    )
    return d


def assert_float16_noise_close(ours: object, ref: object, *, exact_share: float = 0.99) -> None:
    """Fail unless float16 noise ``ours`` equals ``ref`` to one float16 step everywhere and
    exactly at ``exact_share`` of the values: the noise is computed with libm's log/sin/cos,
    which may round a value one way on one CPU and the other way on another."""
    a = np.asarray(ours, dtype=np.float32).ravel()
    b = np.asarray(ref, dtype=np.float32).ravel()
    assert a.shape == b.shape, f"noise: {a.shape} values, expected {b.shape}"
    diff = np.abs(a - b)
    step = np.spacing(np.abs(b).astype(np.float16)).astype(np.float32)
    assert (diff <= step).all(), f"noise: {int((diff > step).sum())} values off by > 1 step"
    assert (diff == 0).mean() >= exact_share, f"noise: {(diff == 0).mean():.3f} exact"
