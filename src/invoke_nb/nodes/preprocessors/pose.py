"""``dw_openpose_detection``: whole-body pose (DWPose: a YOLOX person detector and an
RTMPose keypoint model, both ONNX files from ``yzd-v/DWPose`` run by onnxruntime, installed
on first use), drawn as OpenPose's coloured skeleton on black, as InvokeAI 6.11.1 does."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from invoke_nb.nodes.base import InputField, node
from invoke_nb.nodes.preprocessors.weights import preprocessor_file
from invoke_nb.nodes.primitives import ImageOutput, ImageSavingNode
from invoke_nb.nodes.types import ImageField

if TYPE_CHECKING:
    from invoke_nb.nodes.context import Context

__all__ = ["DWPOSE_REPO", "detect_people", "draw_pose", "estimate_pose"]

DWPOSE_REPO = "yzd-v/DWPose"
DETECTOR_FILE, POSE_FILE = "yolox_l.onnx", "dw-ll_ucoco_384.onnx"
_DET_SIZE = 640
_STRIDES = (8, 16, 32)
_MEAN = np.array([123.675, 116.28, 103.53])  # the pose model's input statistics
_STD = np.array([58.395, 57.12, 57.375])
# OpenPose body: limbs as 1-based keypoint pairs (the first 17 are drawn) and 18 colours
_LIMBS = [(2, 3), (2, 6), (3, 4), (4, 5), (6, 7), (7, 8), (2, 9), (9, 10), (10, 11), (2, 12)]
_LIMBS += [(12, 13), (13, 14), (2, 1), (1, 15), (15, 17), (1, 16), (16, 18)]
_COLOURS = [
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
]  # fmt: skip
# hand skeleton: the wrist (0) to each finger's four joints
_HAND = [(0 if j == 0 else 4 * f + j, 4 * f + j + 1) for f in range(5) for j in range(4)]
# COCO-WholeBody body order -> OpenPose's (with the neck inserted at 17)
_FROM = [17, 6, 8, 10, 7, 9, 12, 14, 16, 13, 15, 2, 1, 4, 3]
_TO = [1, 2, 3, 4, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17]
_EPS = 0.01


def _iou_filter(boxes: np.ndarray, scores: np.ndarray, thr: float) -> list[int]:
    """Greedy non-maximum suppression (box areas counted inclusively, +1 pixel)."""
    x0, y0, x1, y1 = boxes.T
    areas = (x1 - x0 + 1) * (y1 - y0 + 1)
    order, keep = scores.argsort()[::-1], []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]) + 1)
        inter = w * h
        order = rest[inter / (areas[i] + areas[rest] - inter) <= thr]
    return keep


def detect_people(session: Any, arr: np.ndarray) -> np.ndarray:
    """Person boxes (x0, y0, x1, y1) scoring above 0.3 after class-wise suppression: the
    image scaled to fit 640x640 (top-left, grey 114 padding), YOLOX grid decoding."""
    import cv2

    h, w = arr.shape[:2]
    r = min(_DET_SIZE / h, _DET_SIZE / w)
    canvas = np.full((_DET_SIZE, _DET_SIZE, 3), 114, np.uint8)
    nh, nw = int(h * r), int(w * r)
    canvas[:nh, :nw] = cv2.resize(arr, (nw, nh), interpolation=cv2.INTER_LINEAR).astype(np.uint8)
    feed = np.ascontiguousarray(canvas.transpose(2, 0, 1), dtype=np.float32)[None]
    pred = session.run(None, {session.get_inputs()[0].name: feed})[0]
    cells, steps = [], []
    for s in _STRIDES:
        n = _DET_SIZE // s
        xv, yv = np.meshgrid(np.arange(n), np.arange(n))
        cells.append(np.stack((xv, yv), 2).reshape(1, -1, 2))
        steps.append(np.full((1, n * n, 1), s))
    grid, step = np.concatenate(cells, 1), np.concatenate(steps, 1)
    pred[..., :2] = (pred[..., :2] + grid) * step
    pred[..., 2:4] = np.exp(pred[..., 2:4]) * step
    pred = pred[0]
    cx, cy, bw, bh = pred[:, 0], pred[:, 1], pred[:, 2], pred[:, 3]
    boxes = np.ones_like(pred[:, :4])
    boxes[:, 0], boxes[:, 1] = cx - bw / 2.0, cy - bh / 2.0
    boxes[:, 2], boxes[:, 3] = cx + bw / 2.0, cy + bh / 2.0
    boxes /= r
    person = pred[:, 4] * pred[:, 5]  # objectness x class 0 (suppression is per class)
    valid = person > 0.1
    if not valid.any():
        return np.array([])
    kept_boxes, kept = boxes[valid], person[valid]
    keep = _iou_filter(kept_boxes, kept, 0.45)
    kept_boxes, kept = kept_boxes[keep], kept[keep]
    return kept_boxes[kept > 0.3]


def _warp(centre: np.ndarray, size: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
    """Affine map of the box (centre, size) onto the model input, by three point pairs: the
    centre, the point half a width above it, and that offset turned a quarter left."""
    import cv2

    def third(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d = a - b
        return b + np.r_[-d[1], d[0]]

    src = np.zeros((3, 2), np.float32)
    src[0] = centre
    src[1] = centre + np.array([0.0, size[0] * -0.5])
    src[2] = third(src[0], src[1])
    dst = np.zeros((3, 2), np.float32)
    dst[0] = [out_w * 0.5, out_h * 0.5]
    dst[1] = np.array([out_w * 0.5, out_h * 0.5]) + np.array([0.0, out_w * -0.5])
    dst[2] = third(dst[0], dst[1])
    return cv2.getAffineTransform(np.float32(src), np.float32(dst))


def estimate_pose(session: Any, boxes: np.ndarray, arr: np.ndarray) -> tuple[Any, Any]:
    """(keypoints (n, 133, 2) in pixels, scores (n, 133)) per box (the whole image when none):
    each box grown 1.25 times to the model's aspect, warped in, SimCC decoded (2 bins per
    pixel, score = the smaller of the two maxima)."""
    import cv2

    out_h, out_w = session.get_inputs()[0].shape[2:]
    if len(boxes) == 0:
        boxes = [[0, 0, arr.shape[1], arr.shape[0]]]
    names = [o.name for o in session.get_outputs()]
    all_k, all_s = [], []
    for box in boxes:
        x0, y0, x1, y1 = np.array(box[:4])
        centre = np.array([x0 + x1, y0 + y1]) * 0.5
        size = np.array([x1 - x0, y1 - y0]) * 1.25
        aspect = out_w / out_h
        bw, bh = size
        size = np.array([bw, bw / aspect]) if bw > bh * aspect else np.array([bh * aspect, bh])
        crop = cv2.warpAffine(
            arr, _warp(centre, size, out_w, out_h), (int(out_w), int(out_h)), flags=cv2.INTER_LINEAR
        )
        feed = ((crop - _MEAN) / _STD).transpose(2, 0, 1)[None].astype(np.float32)
        simcc_x, simcc_y = session.run(names, {session.get_inputs()[0].name: feed})
        sx, sy = simcc_x.reshape(simcc_x.shape[1], -1), simcc_y.reshape(simcc_y.shape[1], -1)
        locs = np.stack((np.argmax(sx, 1), np.argmax(sy, 1)), -1).astype(np.float32)
        vals = np.minimum(np.amax(sx, 1), np.amax(sy, 1))
        locs[vals <= 0.0] = -1
        locs /= 2.0
        all_k.append(locs / (out_w, out_h) * size + centre - size / 2)
        all_s.append(vals)
    return np.array(all_k), np.array(all_s)


def _draw_body(canvas: np.ndarray, points: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Limbs as filled ellipses (4 px half-width) dimmed to 60%, then joints as dots."""
    import cv2

    h, w = canvas.shape[:2]
    for i, limb in enumerate(_LIMBS):
        for person in index:
            ends = person[np.array(limb) - 1]
            if -1 in ends:
                continue
            xs = points[ends.astype(int), 0] * float(w)
            ys = points[ends.astype(int), 1] * float(h)
            length = ((ys[0] - ys[1]) ** 2 + (xs[0] - xs[1]) ** 2) ** 0.5
            angle = math.degrees(math.atan2(ys[0] - ys[1], xs[0] - xs[1]))
            poly = cv2.ellipse2Poly(
                (int(np.mean(xs)), int(np.mean(ys))), (int(length / 2), 4), int(angle), 0, 360, 1
            )
            cv2.fillConvexPoly(canvas, poly, _COLOURS[i])
    canvas = (canvas * 0.6).astype(np.uint8)
    for i in range(18):
        for person in index:
            k = int(person[i])
            if k == -1:
                continue
            x, y = points[k][0:2]
            cv2.circle(canvas, (int(x * w), int(y * h)), 4, _COLOURS[i], thickness=-1)
    return canvas


def _draw_hands(canvas: np.ndarray, hands: np.ndarray) -> np.ndarray:
    import cv2

    h, w = canvas.shape[:2]
    for peaks in hands:
        for e, (a, b) in enumerate(_HAND):
            x1, y1, x2, y2 = (
                int(peaks[a][0] * w),
                int(peaks[a][1] * h),
                int(peaks[b][0] * w),
                int(peaks[b][1] * h),
            )
            if min(x1, y1, x2, y2) > _EPS:
                hsv = np.array([[[e / float(len(_HAND)) * 180, 255, 255]]], dtype=np.uint8)
                rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]
                cv2.line(canvas, (x1, y1), (x2, y2), rgb.tolist(), thickness=2)
        for x, y in peaks:
            x, y = int(x * w), int(y * h)
            if x > _EPS and y > _EPS:
                cv2.circle(canvas, (x, y), 4, (0, 0, 255), thickness=-1)
    return canvas


def _draw_faces(canvas: np.ndarray, faces: np.ndarray) -> np.ndarray:
    import cv2

    h, w = canvas.shape[:2]
    for marks in faces:
        for x, y in marks:
            x, y = int(x * w), int(y * h)
            if x > _EPS and y > _EPS:
                cv2.circle(canvas, (x, y), 3, (255, 255, 255), thickness=-1)
    return canvas


def draw_pose(
    image: Image.Image, detector: Any, pose: Any, body: bool, face: bool, hands: bool
) -> Image.Image:
    """Detect, estimate, convert to OpenPose's 18-point body order (a neck between the
    shoulders), hide points scoring 0.3 or less, and draw on black at the image's size."""
    arr = np.array(image.convert("RGB"))
    h, w = arr.shape[:2]
    keypoints, scores = estimate_pose(pose, detect_people(detector, arr), arr)
    info = np.concatenate((keypoints, scores[..., None]), axis=-1)
    neck = np.mean(info[:, [5, 6]], axis=1)
    neck[:, 2:4] = np.logical_and(info[:, 5, 2:4] > 0.3, info[:, 6, 2:4] > 0.3).astype(int)
    info = np.insert(info, 17, neck, axis=1)
    info[:, _TO] = info[:, _FROM]
    points, seen = info[..., :2], info[..., 2]
    n = points.shape[0]
    points[..., 0] /= float(w)
    points[..., 1] /= float(h)
    body_points = points[:, :18].copy().reshape(n * 18, 2)
    index = seen[:, :18]  # a view: InvokeAI overwrites these scores with point indices
    for i in range(len(index)):
        for j in range(len(index[i])):
            index[i][j] = int(18 * i + j) if index[i][j] > 0.3 else -1
    points[seen < 0.3] = -1
    canvas = np.zeros((h, w, 3), np.uint8)
    if body:
        canvas = _draw_body(canvas, body_points, index)
    if hands:
        canvas = _draw_hands(canvas, np.vstack([points[:, 92:113], points[:, 113:]]))
    if face:
        canvas = _draw_faces(canvas, points[:, 24:92])
    return Image.fromarray(canvas)


@node(
    "dw_openpose_detection",
    title="DW Openpose Detection",
    category="controlnet",
    tags=["controlnet", "dwpose", "openpose"],
    version="1.1.1",
)
class DwOpenposeDetectionNode(ImageSavingNode):
    """Generates an openpose pose from an image using DWPose"""

    image: ImageField = InputField(description="The image to process")
    draw_body: bool = InputField(default=True)
    draw_face: bool = InputField(default=False)
    draw_hands: bool = InputField(default=False)

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image, mode="RGB")
        det, est = (
            preprocessor_file(ctx, self.id, "dw_openpose_detection", DWPOSE_REPO, f, "dw_openpose")
            for f in (DETECTOR_FILE, POSE_FILE)
        )
        with ctx.models.load(det) as detector, ctx.models.load(est) as pose:
            drawn = draw_pose(
                image, detector, pose, self.draw_body, self.draw_face, self.draw_hands
            )
        return self.save_image(ctx, drawn)
