"""Loading preprocessor weights (depth estimators, ...) installed as models."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from invoke_nb.models.errors import ModelLoadError

if TYPE_CHECKING:
    from invoke_nb.models.records import ModelRecord

__all__ = ["load_depth_anything", "load_grounding_dino", "load_segment_anything"]


def load_depth_anything(record: ModelRecord, path: Path) -> Any:
    """transformers' depth-estimation pipeline on the folder (local files only), as InvokeAI
    runs Depth Anything."""
    from transformers import pipeline

    try:
        return pipeline(task="depth-estimation", model=str(path), local_files_only=True)
    except Exception as e:
        raise ModelLoadError(
            f"model {record.name!r} ({record.key}): {path}: cannot load Depth Anything: {e}"
        ) from e


def load_segment_anything(record: ModelRecord, path: Path) -> tuple[Any, Any]:
    """(SamModel, SamProcessor) from the folder, local files only."""
    from transformers import SamModel, SamProcessor

    try:
        model = SamModel.from_pretrained(str(path), local_files_only=True).eval()
        return model, SamProcessor.from_pretrained(str(path), local_files_only=True)
    except Exception as e:
        raise ModelLoadError(
            f"model {record.name!r} ({record.key}): {path}: cannot load Segment Anything: {e}"
        ) from e


def load_grounding_dino(record: ModelRecord, path: Path) -> Any:
    """transformers' zero-shot object detection pipeline on the folder (local files only)."""
    from transformers import pipeline

    try:
        return pipeline(task="zero-shot-object-detection", model=str(path), local_files_only=True)
    except Exception as e:
        raise ModelLoadError(
            f"model {record.name!r} ({record.key}): {path}: cannot load Grounding DINO: {e}"
        ) from e
