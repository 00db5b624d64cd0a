"""Networks of the ControlNet annotators InvokeAI vendors (HED, PiDiNet, lineart, ...),
written here from the published models: the same state-dict key names, so the weight files
of ``lllyasviel/Annotators`` load unchanged, and every width is read off the tensors, so
small test networks of the same layout load alike."""

from __future__ import annotations

from typing import Any

__all__ = ["ANNOTATOR_TYPES", "build_annotator"]

# model type of an installed annotator file -> module that builds its network
ANNOTATOR_TYPES = {
    "hed": "hed",
    "pidi": "pidi",
    "lineart": "lineart",
    "lineart_anime": "lineart_anime",
    "mlsd": "mlsd",
    "normal_bae": "normal_bae",
    "pbr_maps": "pbr",
    "dw_openpose": "onnx",  # ONNX files run by onnxruntime, not built here
    "face_landmarker": "mediapipe",  # a MediaPipe .task bundle run by the mediapipe package
}


def build_annotator(kind: str, state_dict: dict[str, Any], label: str) -> Any:
    """The network of model type ``kind`` with ``state_dict`` loaded, in eval mode."""
    import importlib

    from invoke_nb.models.errors import ModelLoadError

    module = importlib.import_module(f"invoke_nb.models.annotators.{ANNOTATOR_TYPES[kind]}")
    try:
        net = module.from_state_dict(state_dict)
    except (KeyError, RuntimeError, ValueError) as e:
        raise ModelLoadError(f"{label}: not a {kind} annotator state dict ({e})") from e
    return net.float().eval()
