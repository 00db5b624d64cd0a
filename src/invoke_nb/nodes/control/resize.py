"""Control-image resizing as InvokeAI does it (its ``heuristic_resize`` and resize modes).

Edge maps stay edge maps: a two-colour image is resized, non-maximum-suppressed and
re-thresholded (thinned to one pixel when its edges were one pixel wide); maps with few
colours (segmentation) are resized nearest-neighbour; others area (down) or cubic (up).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch

__all__ = ["heuristic_resize", "prepare_control_image", "resize_to_mode", "thin"]

_K3 = np.ones((3, 3), np.uint8)  # cv2.getStructuringElement(MORPH_RECT, (3, 3))
_DIRECTIONS = [
    np.array(k, np.uint8)
    for k in (
        [[0, 0, 0], [1, 1, 1], [0, 0, 0]],
        [[0, 1, 0], [0, 1, 0], [0, 1, 0]],
        [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
        [[0, 0, 1], [0, 1, 0], [1, 0, 0]],
    )
]


def thin(binary: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a 0/255 image to one-pixel-wide lines."""
    img = (binary > 127).astype(np.uint8)
    while True:
        changed = False
        for step in (0, 1):
            p = np.pad(img, 1)
            n = [
                p[:-2, 1:-1], p[:-2, 2:], p[1:-1, 2:], p[2:, 2:],
                p[2:, 1:-1], p[2:, :-2], p[1:-1, :-2], p[:-2, :-2],
            ]  # fmt: skip
            count = sum(x.astype(np.int32) for x in n)
            seq = [*n, n[0]]
            trans = sum(((seq[i] == 0) & (seq[i + 1] == 1)).astype(np.int32) for i in range(8))
            if step == 0:
                a = (n[0] * n[2] * n[4] == 0) & (n[2] * n[4] * n[6] == 0)
            else:
                a = (n[0] * n[2] * n[6] == 0) & (n[0] * n[4] * n[6] == 0)
            drop = (img == 1) & (count >= 2) & (count <= 6) & (trans == 1) & a
            if drop.any():
                img[drop] = 0
                changed = True
        if not changed:
            return img * 255


def heuristic_resize(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an (H, W, C) uint8 image to ``size`` = (width, height), keeping edge maps."""
    import cv2  # imported here: `import invoke_nb` loads no OpenCV

    h, w = arr.shape[:2]
    if (w, h) == tuple(size):
        return arr
    alpha = None
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr, alpha = arr[:, :, :3], arr[:, :, 3]
    flat = arr.reshape(-1, arr.shape[-1])
    if len(flat) > 100_000:  # a fixed sample: the same image is always resized the same way
        pick = np.random.default_rng(0).choice(len(flat), 100_000, replace=False)
        flat = np.vstack([arr[[0, 0, -1, -1], [0, -1, 0, -1]], flat[pick]])
    colours = len(np.unique(flat, axis=0))
    binary = colours == 2 and flat.min() < 16 and flat.max() > 240
    one_pixel = False
    if binary:
        gray = cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY)
        edges = cv2.countNonZero(cv2.morphologyEx(gray, cv2.MORPH_GRADIENT, _K3))
        one_pixel = 2 * edges > cv2.countNonZero((gray > 127).astype(np.uint8))
    if 2 < colours < 200:
        interp = cv2.INTER_NEAREST
    elif size[0] * size[1] < w * h:
        interp = cv2.INTER_AREA
    else:
        interp = cv2.INTER_CUBIC
    out = cv2.resize(arr, tuple(size), interpolation=interp)
    if binary:
        gray = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)
        peaks = np.zeros_like(gray)
        for k in _DIRECTIONS:
            keep = cv2.dilate(gray, k) == gray
            peaks[keep] = gray[keep]
        _, bw = cv2.threshold(peaks, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        bw = thin(bw).astype(np.uint8) if one_pixel else bw
        out = np.stack([bw] * 3, axis=2)
    if alpha is not None:
        a = cv2.resize(alpha, tuple(size), interpolation=interp)
        out = np.dstack((out, ((a > 127) * 255).astype(np.uint8)))
    return out


def resize_to_mode(image: Image.Image, width: int, height: int, mode: str) -> np.ndarray:
    """An (H, W, 3) uint8 control image of ``width`` x ``height`` by InvokeAI's resize mode."""
    if mode == "just_resize_simple":
        return np.asarray(image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS))
    arr = np.asarray(image.convert("RGB"))
    if mode == "just_resize":
        return heuristic_resize(arr, (width, height))
    oh, ow = arr.shape[:2]
    kh, kw = height / oh, width / ow
    if mode == "fill_resize":  # fit inside, pad with the border's median colour
        k = min(kh, kw)
        border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]], axis=0)
        canvas = np.tile(np.median(border, axis=0).astype(np.uint8)[None, None], (height, width, 1))
        inner = heuristic_resize(arr, (round(ow * k), round(oh * k)))
        ih, iw = inner.shape[:2]
        top, left = max(0, (height - ih) // 2), max(0, (width - iw) // 2)
        canvas[top : top + ih, left : left + iw] = inner
        return canvas
    if mode == "crop_resize":  # cover, then crop the centre
        k = max(kh, kw)
        big = heuristic_resize(arr, (round(ow * k), round(oh * k)))
        top, left = max(0, (big.shape[0] - height) // 2), max(0, (big.shape[1] - width) // 2)
        return big[top : top + height, left : left + width]
    raise ValueError(f"unknown resize mode {mode!r}")


def prepare_control_image(
    image: Image.Image, width: int, height: int, mode: str, channels: int = 3
) -> torch.Tensor:
    """(1, channels, height, width) float32 in [0, 1], as ControlNets and adapters take it."""
    import torch

    arr = np.ascontiguousarray(resize_to_mode(image, width, height, mode))
    t = torch.from_numpy(arr.copy()).float().div(255).permute(2, 0, 1).unsqueeze(0)
    return t[:, :channels]
