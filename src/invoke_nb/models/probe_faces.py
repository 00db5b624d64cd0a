"""Recognising MediaPipe ``.task`` bundles: a face landmarker (an uncompressed zip holding
the face detector and the face mesh networks) is a ``face_landmarker`` model of any base."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from invoke_nb.models.probe import ProbeResult

__all__ = ["probe_task_bundle"]

_FACE_LANDMARKER = {"face_detector.tflite", "face_landmarks_detector.tflite"}


def probe_task_bundle(p: Path) -> ProbeResult:
    """A face landmarker bundle's type, or unknown (with the reason) for other files."""
    from invoke_nb.models.probe import ProbeResult, _unknown

    try:
        names = set(zipfile.ZipFile(p).namelist())
    except (zipfile.BadZipFile, OSError) as e:
        return _unknown(f"{p.name}: not a MediaPipe .task bundle ({e})")
    if not _FACE_LANDMARKER.issubset(names):
        return _unknown(f"{p.name}: a MediaPipe bundle, not a face landmarker ({sorted(names)})")
    return ProbeResult(type="face_landmarker", base="any", format="checkpoint")
