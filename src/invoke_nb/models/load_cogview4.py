"""Load the parts of a CogView4 diffusers folder: GLM text encoder and its fast tokenizer,
``CogView4Transformer2DModel``, the 16-channel ``AutoencoderKL`` and the scheduler config.

Precision follows InvokeAI: CogView4 runs in bfloat16 on accelerators because float16
gives black images; the CPU keeps float32 (the cache's dtype there).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from invoke_nb.models.errors import MissingComponentError, ModelLoadError
from invoke_nb.models.records import ModelRecord

__all__ = ["SUBMODELS", "load_cogview4"]

SUBMODELS = ("transformer", "text_encoder", "tokenizer", "vae", "scheduler")


def _fail(record: ModelRecord, path: Path, problem: str, kind: type[Exception] = ModelLoadError):
    return kind(f"model {record.name!r} ({record.key}): {path}: {problem}")


def family_dtype(dtype: torch.dtype) -> torch.dtype:
    """bfloat16 where the cache would use float16 (InvokeAI's rule for CogView4)."""
    import torch

    return torch.bfloat16 if dtype == torch.float16 else dtype


def load_cogview4(record: ModelRecord, submodel: str | None, dtype: torch.dtype) -> Any:
    """Load ``submodel`` of the CogView4 main model ``record``."""
    root = Path(record.path).expanduser()
    if submodel not in SUBMODELS:
        raise _fail(record, root, f"unknown CogView4 submodel {submodel!r}; expected {SUBMODELS}")
    if not root.is_dir():
        raise _fail(record, root, "CogView4 models are diffusers folders; this is not a folder")
    folder = root / submodel
    if not folder.is_dir():
        raise _fail(
            record,
            folder,
            f"missing component {submodel!r} in the CogView4 folder",
            MissingComponentError,
        )
    dtype = family_dtype(dtype)
    try:
        if submodel == "scheduler":
            return json.loads((folder / "scheduler_config.json").read_text(encoding="utf-8"))
        if submodel == "tokenizer":
            from transformers import PreTrainedTokenizerFast

            return PreTrainedTokenizerFast.from_pretrained(folder, local_files_only=True)
        if submodel == "text_encoder":
            from transformers import GlmModel

            return GlmModel.from_pretrained(folder, local_files_only=True, dtype=dtype).eval()
        if submodel == "transformer":
            from diffusers import CogView4Transformer2DModel

            return CogView4Transformer2DModel.from_pretrained(
                folder, local_files_only=True, torch_dtype=dtype
            ).eval()
        from diffusers import AutoencoderKL

        return AutoencoderKL.from_pretrained(
            folder, local_files_only=True, torch_dtype=dtype
        ).eval()
    except Exception as exc:
        raise _fail(record, folder, f"cannot load {submodel}: {type(exc).__name__}: {exc}") from exc
