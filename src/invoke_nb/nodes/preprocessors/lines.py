"""``mlsd_detection``: straight line segments found by M-LSD, drawn one pixel wide in white
on black, with InvokeAI 6.11.1's processing (its weight file comes from
``lllyasviel/ControlNet``, installed on first use)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from invoke_nb.nodes.base import InputField, node
from invoke_nb.nodes.preprocessors.weights import preprocessor_file
from invoke_nb.nodes.primitives import ImageOutput, ImageSavingNode
from invoke_nb.nodes.types import ImageField

if TYPE_CHECKING:
    from invoke_nb.nodes.context import Context

__all__ = ["MLSD_FILE", "MLSD_REPO", "mlsd_lines", "mlsd_segments"]

MLSD_REPO = "lllyasviel/ControlNet"
MLSD_FILE = "annotator/ckpts/mlsd_large_512_fp32.pth"
_TOP_K = 200  # candidate line centres kept, as M-LSD's reference decoder


def mlsd_segments(
    arr: np.ndarray, net: Any, score_threshold: float, distance_threshold: float
) -> np.ndarray:
    """(n, 4) segments ``x0, y0, x1, y1`` in pixels of ``arr`` (uint8 RGB, sides multiples
    of 64): local maxima (3x3) of the centre heat map scoring above ``score_threshold``
    whose two ends lie more than ``distance_threshold`` output cells apart."""
    import torch
    from torch.nn import functional as F

    ones = np.ones((*arr.shape[:2], 1))
    feed = np.concatenate([arr, ones], axis=-1).transpose(2, 0, 1)[None].astype(np.float32)
    x = torch.from_numpy(feed / 127.5 - 1.0).to(next(net.parameters()).device)
    with torch.no_grad():
        out = net(x)
    w = out.shape[3]
    heat = torch.sigmoid(out[:, 0])
    peaks = heat * (F.max_pool2d(heat, 3, stride=1, padding=1) == heat).float()
    scores, idx = torch.topk(peaks.reshape(-1), min(_TOP_K, peaks.numel()))
    ends = out[0, 1:5].cpu().numpy().transpose(1, 2, 0)  # (h, w, [dx0, dy0, dx1, dy1])
    length = np.sqrt(np.sum((ends[:, :, :2] - ends[:, :, 2:]) ** 2, axis=-1))
    segments = []
    for i, score in zip(idx.cpu().numpy(), scores.cpu().numpy(), strict=True):
        y, x0 = divmod(int(i), w)
        if score > score_threshold and length[y, x0] > distance_threshold:
            d = ends[y, x0]
            segments.append([x0 + d[0], y + d[1], x0 + d[2], y + d[3]])
    # the maps are at half the input's size
    return 2 * np.array(segments) if segments else np.zeros((0, 4))


def mlsd_lines(
    image: Image.Image, net: Any, score_threshold: float, distance_threshold: float
) -> Image.Image:
    """The segments drawn on black at the image's width floored to a multiple of 64 (height
    kept in proportion, floored likewise), then resized (bilinear) to the image's size."""
    import cv2

    arr = np.asarray(image.convert("RGB"))
    h, w = arr.shape[:2]
    fw = (w // 64) * 64
    fh = int(fw / w * h)
    fh -= fh % 64
    if fw == 0 or fh == 0:
        raise ValueError(f"mlsd_detection needs an image of at least 64x64 pixels, got {w}x{h}")
    small = cv2.resize(arr, (fw, fh), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((fh, fw), np.uint8)
    for seg in mlsd_segments(small, net, score_threshold, distance_threshold):
        x0, y0, x1, y1 = (int(v) for v in seg)
        cv2.line(canvas, (x0, y0), (x1, y1), 255, 1)
    return Image.fromarray(cv2.resize(canvas, (w, h), interpolation=cv2.INTER_LINEAR))


@node(
    "mlsd_detection",
    title="MLSD Detection",
    category="controlnet",
    tags=["controlnet", "mlsd", "edge"],
    version="1.0.0",
)
class MlsdDetectionNode(ImageSavingNode):
    """A map of the image's straight line segments (M-LSD)."""

    image: ImageField = InputField(description="The image to process")
    score_threshold: float = InputField(
        default=0.1,
        ge=0,
        description="The threshold used to score points when determining line segments",
    )
    distance_threshold: float = InputField(
        default=20.0,
        ge=0,
        description="Threshold for including a line segment - lines shorter than this "
        "distance will be discarded",
    )

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image, mode="RGB")
        ident = preprocessor_file(ctx, self.id, "mlsd_detection", MLSD_REPO, MLSD_FILE, "mlsd")
        with ctx.models.load(ident) as net:
            lines = mlsd_lines(image, net, self.score_threshold, self.distance_threshold)
        return self.save_image(ctx, lines)
