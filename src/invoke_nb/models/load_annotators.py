"""Loading annotator weight files (single ``.pth``/``.safetensors`` checkpoints) installed
as models of the types in :data:`invoke_nb.models.annotators.ANNOTATOR_TYPES`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from invoke_nb.models.errors import ModelLoadError

if TYPE_CHECKING:
    from invoke_nb.models.records import ModelRecord

__all__ = ["load_annotator", "read_state_dict"]


def read_state_dict(path: Path) -> dict[str, Any]:
    """Tensors of a safetensors file, or of a pickle through torch's weights-only loader (the
    install scanned it already); a ``state_dict`` wrapper and ``module.`` prefixes go."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        sd = load_file(str(path))
    else:
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    return {k.removeprefix("module."): v for k, v in sd.items()}


def load_annotator(record: ModelRecord, path: Path) -> Any:
    """The network of the record's type, built from the file's tensors (an onnxruntime
    session for ONNX annotators, a MediaPipe bundle for the face landmarker)."""
    from invoke_nb.models.annotators import ANNOTATOR_TYPES, build_annotator

    label = f"model {record.name!r} ({record.key}): {path}"
    if ANNOTATOR_TYPES[record.type] == "mediapipe":
        from invoke_nb.models.annotators.face_landmarker import FaceLandmarkerModel

        try:
            return FaceLandmarkerModel(path)
        except ValueError as e:
            raise ModelLoadError(f"{label}: {e}") from e
    if ANNOTATOR_TYPES[record.type] == "onnx":
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise ModelLoadError(f"{label}: needs onnxruntime (pip install invoke-nb[pose])") from e
        try:
            return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as e:
            raise ModelLoadError(f"{label}: not a readable ONNX model: {e}") from e
    try:
        sd = read_state_dict(path)
    except Exception as e:
        raise ModelLoadError(f"{label}: cannot read the weights: {e}") from e
    return build_annotator(record.type, sd, label)
