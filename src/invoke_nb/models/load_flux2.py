"""Load the parts of a FLUX.2 Klein model from local files (diffusers folders, single files).

A Klein pipeline folder holds ``transformer`` (``Flux2Transformer2DModel``),
``text_encoder`` (Qwen3), ``tokenizer`` (Qwen2 BPE with a chat template), ``vae``
(``AutoencoderKLFlux2``) and ``scheduler``. A standalone FLUX.2 VAE folder loads whole.
Single files (a BFL-layout transformer, a VAE checkpoint) load through
:mod:`invoke_nb.models.flux2_single_file`. Every load is offline and errors name the model
and the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from invoke_nb.models.errors import MissingComponentError, ModelLoadError
from invoke_nb.models.records import ModelRecord

__all__ = ["FLUX2_SUBMODELS", "load_flux2"]

FLUX2_SUBMODELS = ("transformer", "text_encoder", "tokenizer", "vae", "scheduler")


def _fail(record: ModelRecord, path: Path, problem: str, kind: type[Exception] = ModelLoadError):  # type: ignore[no-untyped-def]
    return kind(f"model {record.name!r} ({record.key}): {path}: {problem}")


def load_flux2(record: ModelRecord, submodel: str | None, dtype: torch.dtype) -> Any:
    """Load ``submodel`` of a FLUX.2 record (``main``: one part; ``vae``: the whole VAE)."""
    path = Path(record.path).expanduser()
    if record.type == "vae":
        if submodel not in (None, "vae"):
            raise _fail(record, path, f"a VAE has no submodel {submodel!r}")
        if path.is_file():
            return _single_file(record, path, "vae", dtype)
        folder = path
        submodel = "vae"
    elif record.type == "main":
        if submodel not in FLUX2_SUBMODELS:
            raise _fail(
                record,
                path,
                f"unknown FLUX.2 submodel {submodel!r}; expected one of {FLUX2_SUBMODELS}",
            )
        if path.is_file():
            if submodel != "transformer":
                raise _fail(
                    record,
                    path,
                    f"a single-file FLUX.2 transformer has no {submodel!r}; pick a Qwen3 "
                    "encoder and VAE (or a Qwen3 Source model) in the Klein model loader",
                    MissingComponentError,
                )
            return _single_file(record, path, "transformer", dtype)
        folder = path / submodel
        if not folder.is_dir():
            raise _fail(record, folder, f"missing component {submodel!r}", MissingComponentError)
    else:
        raise _fail(record, path, f"FLUX.2 model type {record.type!r} is not loadable here")
    if not folder.is_dir():
        raise _fail(record, folder, "no such FLUX.2 model file or folder")
    try:
        return _load_part(folder, submodel, dtype)
    except ModelLoadError:
        raise
    except Exception as exc:
        raise _fail(record, folder, f"cannot load {submodel}: {type(exc).__name__}: {exc}") from exc


def _single_file(record: ModelRecord, path: Path, part: str, dtype: torch.dtype) -> Any:
    from invoke_nb.models import flux2_single_file as single

    load = single.load_flux2_vae_file if part == "vae" else single.load_flux2_transformer_file
    try:
        return load(path, dtype)
    except Exception as exc:
        raise _fail(
            record, path, f"cannot load the FLUX.2 {part} file: {type(exc).__name__}: {exc}"
        ) from exc


def _load_part(folder: Path, submodel: str, dtype: torch.dtype) -> Any:
    if submodel == "scheduler":
        return json.loads((folder / "scheduler_config.json").read_text(encoding="utf-8"))
    if submodel == "tokenizer":
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(folder, local_files_only=True)
    if submodel == "text_encoder":
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(
            folder, local_files_only=True, dtype=dtype
        ).eval()
    if submodel == "transformer":
        from diffusers import Flux2Transformer2DModel

        return Flux2Transformer2DModel.from_pretrained(
            folder, local_files_only=True, torch_dtype=dtype
        ).eval()
    from diffusers import AutoencoderKLFlux2

    return AutoencoderKLFlux2.from_pretrained(
        folder, local_files_only=True, torch_dtype=dtype
    ).eval()
