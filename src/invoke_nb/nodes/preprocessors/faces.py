"""``mediapipe_face_detection``: the face mesh's contours (oval, eyes, brows, lips) and
pupils drawn on black, the ControlNet "mediapipe face" map, as InvokeAI 6.11.1 draws it.

The landmarks come from MediaPipe's face landmarker (:mod:`invoke_nb.models.annotators.
face_landmarker`): its ``.task`` bundle installs through the model manager on first use from
MediaPipe's model storage (``MEDIAPIPE_MODELS_ENDPOINT`` replaces the address, as
``HF_ENDPOINT`` does for the Hub). The face tools (``face_off``, ...) share :func:`find_faces`.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from invoke_nb.nodes.base import InputField, node
from invoke_nb.nodes.preprocessors.weights import PreprocessorWeightsError
from invoke_nb.nodes.primitives import ImageOutput, ImageSavingNode
from invoke_nb.nodes.types import ImageField

if TYPE_CHECKING:
    from invoke_nb.nodes.context import Context

__all__ = [
    "FACE_LANDMARKER_PATH",
    "draw_face_contours",
    "face_landmarker_url",
    "find_faces",
    "installed_face_landmarker",
]

FACE_LANDMARKER_PATH = "face_landmarker/face_landmarker/float16/1/face_landmarker.task"
MODEL_TYPE = "face_landmarker"
MIN_FACE_PIXELS = 64  # smaller faces are left out of the map
# colours in RGB (InvokeAI states them for a BGR canvas and flips the channels at the end)
_OVAL, _MOUTH = (10, 200, 10), (10, 180, 10)
_LEFT_EYE, _LEFT_BROW = (10, 200, 180), (10, 220, 180)
_RIGHT_EYE, _RIGHT_BROW = (180, 200, 10), (180, 220, 10)
_PUPILS = {468: (250, 200, 10), 473: (10, 200, 250)}  # right, left iris centres
_THICKNESS = 2


def face_landmarker_url() -> str:
    """Where the face landmarker bundle is downloaded from (``MEDIAPIPE_MODELS_ENDPOINT``
    honoured)."""
    default = "https://storage.googleapis.com/mediapipe-models"
    endpoint = (os.environ.get("MEDIAPIPE_MODELS_ENDPOINT") or default).rstrip("/")
    return f"{endpoint}/{FACE_LANDMARKER_PATH}"


def installed_face_landmarker(ctx: Context, node_id: str, node_type: str) -> Any:
    """The identifier of the installed face landmarker bundle, installing it on first use."""
    from invoke_nb.models.annotators.face_landmarker import MediaPipeMissingError, import_mediapipe
    from invoke_nb.models.local import identifier

    try:
        import_mediapipe()
    except ImportError as e:
        raise MediaPipeMissingError(f"node {node_id!r} ({node_type}): {e}") from e
    models = ctx.models
    if models is None:
        raise PreprocessorWeightsError(
            f"node {node_id!r} ({node_type}): no model service to find the face landmarker"
        )
    lister = getattr(models, "list", None) or models.store.list
    for rec in lister():
        if rec.type == MODEL_TYPE:
            return identifier(rec)
    install = getattr(models, "install", None)
    url = face_landmarker_url()
    if install is None:
        raise PreprocessorWeightsError(
            f"node {node_id!r} ({node_type}): the face landmarker ({url}) is not installed"
        )
    ctx.progress(message="Installing MediaPipe's face landmarker (first use)")
    config = {"type": MODEL_TYPE, "base": "any", "format": "checkpoint"}
    try:
        rec = install(url, name="mediapipe-face-landmarker", config=config)
    except Exception as e:
        raise PreprocessorWeightsError(
            f"node {node_id!r} ({node_type}): the face landmarker is not installed and could "
            f"not be downloaded ({type(e).__name__}: {e}); install it with "
            f"studio.models.install({url!r}, config={config!r}) where it is reachable"
        ) from e
    return identifier(rec)


def find_faces(
    ctx: Context,
    node_id: str,
    node_type: str,
    rgb: np.ndarray,
    max_faces: int,
    detection: float,
    presence: float,
) -> list[np.ndarray]:
    """Normalised (478, 2) landmark arrays of the faces in an RGB uint8 array."""
    ident = installed_face_landmarker(ctx, node_id, node_type)
    with ctx.models.load(ident) as landmarker:
        return landmarker.landmarks(rgb, max_faces, detection, presence)


def _contour_styles() -> list[tuple[list[tuple[int, int]], tuple[int, int, int]]]:
    from mediapipe.tasks.python.vision.face_landmarker import FaceLandmarksConnections as C

    sets = [
        (C.FACE_LANDMARKS_FACE_OVAL, _OVAL),
        (C.FACE_LANDMARKS_LEFT_EYE, _LEFT_EYE),
        (C.FACE_LANDMARKS_LEFT_EYEBROW, _LEFT_BROW),
        (C.FACE_LANDMARKS_RIGHT_EYE, _RIGHT_EYE),
        (C.FACE_LANDMARKS_RIGHT_EYEBROW, _RIGHT_BROW),
        (C.FACE_LANDMARKS_LIPS, _MOUTH),
    ]
    return [([(c.start, c.end) for c in edges], colour) for edges, colour in sets]


def _pixel(v: float, size: int) -> int | None:
    """A normalised coordinate in pixels; None outside [0, 1] (ends at 0 and 1 included)."""
    if (v < 0 and not math.isclose(v, 0)) or (v > 1 and not math.isclose(v, 1)):
        return None
    return min(math.floor(v * size), size - 1)


def draw_face_contours(size: tuple[int, int], faces: list[np.ndarray]) -> Image.Image:
    """The contour map of ``faces`` (normalised landmarks) on black: 2 px lines between
    points inside the image, 4x4 pupils, faces under 64 px on their short side left out."""
    import cv2

    w, h = size
    canvas = np.zeros((h, w, 3), np.uint8)
    styles = _contour_styles()
    for face in faces:
        span = face.max(axis=0) - face.min(axis=0)
        if min(span[0] * w, span[1] * h) < MIN_FACE_PIXELS:
            continue
        points = {}
        for i, (x, y) in enumerate(face):
            px, py = _pixel(float(x), w), _pixel(float(y), h)
            if px is not None and py is not None:
                points[i] = (px, py)
        for edges, colour in styles:
            for a, b in edges:
                if a in points and b in points:
                    cv2.line(canvas, points[a], points[b], colour, _THICKNESS)
        for i, colour in _PUPILS.items():
            x, y = face[i]
            if 0 <= x < 1 and 0 <= y < 1:
                cx, cy = int(w * x), int(h * y)
                canvas[cy - 2 : cy + 2, cx - 2 : cx + 2, :] = colour
    return Image.fromarray(canvas)


@node(
    "mediapipe_face_detection",
    title="MediaPipe Face Detection",
    category="controlnet",
    tags=["controlnet", "face"],
    version="1.0.0",
)
class MediapipeFaceDetectionNode(ImageSavingNode):
    """Detects faces using MediaPipe."""

    image: ImageField = InputField(description="The image to process")
    max_faces: int = InputField(default=1, ge=1, description="Maximum number of faces to detect")
    min_confidence: float = InputField(
        default=0.5, ge=0, le=1, description="Minimum confidence for face detection"
    )

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image, mode="RGB")
        faces = find_faces(
            ctx,
            self.id,
            "mediapipe_face_detection",
            np.asarray(image),
            self.max_faces,
            self.min_confidence,
            0.5,
        )
        if not faces:
            ctx.log.info("no face found: the map is black")
        return self.save_image(ctx, draw_face_contours(image.size, faces))
