"""Identify the weights of preprocessor nodes (depth estimators, ...) by their config's class.

These are not generation models; InvokeAI fetches them on first use without a record. Here
they are ordinary installed models, so they are hashed, listed and found offline; their type
names say which node uses them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PREPROCESSOR_CLASSES", "probe_preprocessor"]

# transformers class in config.json["architectures"] -> our model type
PREPROCESSOR_CLASSES = {
    "DepthAnythingForDepthEstimation": "depth_anything",
    "SamModel": "segment_anything",
    "GroundingDinoForObjectDetection": "grounding_dino",
}


def probe_preprocessor(config: dict[str, Any]) -> tuple[str, str, str] | None:
    """(type, base, format) for a preprocessor folder's config.json, else None."""
    for cls in config.get("architectures") or []:
        if cls in PREPROCESSOR_CLASSES:
            return PREPROCESSOR_CLASSES[cls], "any", "diffusers"
    return None
