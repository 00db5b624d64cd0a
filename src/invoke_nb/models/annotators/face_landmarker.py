"""MediaPipe's face landmarker (a ``face_landmarker.task`` bundle: a BlazeFace detector and
the 478-point face mesh) run through the ``mediapipe`` package's Tasks API.

InvokeAI 6.11.1 calls the legacy ``mediapipe.solutions.face_mesh`` with the models inside
mediapipe 0.10.x wheels; those need protobuf < 5 and numpy < 2, which cannot live beside our
stack. mediapipe >= 0.10.30 keeps only the Tasks API, whose official bundle holds the same
networks (on a real photo its points lie within ~2 px of the legacy ones), so the bundle is
installed as a model and a landmarker is made per call (its options are fixed at creation).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FaceLandmarkerModel", "MediaPipeMissingError", "import_mediapipe"]


class MediaPipeMissingError(ImportError):
    """The optional ``mediapipe`` package is not installed."""


def import_mediapipe() -> Any:
    """The ``mediapipe`` module, or an error that says how to install it."""
    try:
        import mediapipe
        from mediapipe.tasks.python.vision import face_landmarker  # noqa: F401
    except ImportError as e:
        raise MediaPipeMissingError(
            f"the face nodes need the 'mediapipe' package ({e}); install it with "
            "pip install --no-deps 'mediapipe>=0.10.30' absl-py matplotlib "
            "(or `pip install invoke-nb[faces]` where opencv-contrib-python may replace "
            "the headless OpenCV)"
        ) from e
    return mediapipe


class FaceLandmarkerModel:
    """A loaded ``face_landmarker.task``: its bytes, and :meth:`landmarks` to run it."""

    def __init__(self, path: Path) -> None:
        import_mediapipe()
        self.path = Path(path)
        self.data = self.path.read_bytes()
        self._check_bundle()

    def _check_bundle(self) -> None:
        import io
        import zipfile

        try:
            names = set(zipfile.ZipFile(io.BytesIO(self.data)).namelist())
        except zipfile.BadZipFile as e:
            raise ValueError(f"{self.path}: not a MediaPipe .task bundle (not a zip)") from e
        need = {"face_detector.tflite", "face_landmarks_detector.tflite"}
        if not need <= names:
            raise ValueError(
                f"{self.path}: not a face landmarker bundle (missing {sorted(need - names)})"
            )

    def landmarks(
        self, rgb: np.ndarray, max_faces: int, detection: float, presence: float
    ) -> list[np.ndarray]:
        """Normalised (x, y) of the 478 points of each face found in an RGB uint8 array.
        Confidences are clamped to [0, 1] (the legacy API took any number: below 0 acts as
        0, above 1 finds nothing)."""
        mp = import_mediapipe()
        from mediapipe.tasks.python.core.base_options import BaseOptions
        from mediapipe.tasks.python.vision import face_landmarker as fl
        from mediapipe.tasks.python.vision.core.vision_task_running_mode import (
            VisionTaskRunningMode,
        )

        if detection > 1 or presence > 1:
            return []
        options = fl.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=self.data),
            running_mode=VisionTaskRunningMode.IMAGE,
            num_faces=max_faces,
            min_face_detection_confidence=max(0.0, float(detection)),
            min_face_presence_confidence=max(0.0, float(presence)),
        )
        frame = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        with fl.FaceLandmarker.create_from_options(options) as landmarker:
            found = landmarker.detect(frame)
        return [np.array([(p.x, p.y) for p in face], np.float64) for face in found.face_landmarks]
