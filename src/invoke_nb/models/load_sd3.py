"""Load one part of an SD3 / SD3.5 model (base ``sd-3``) from local files.

Parts are InvokeAI's submodel names: ``transformer``, ``vae``, ``scheduler`` (its config
dict), ``text_encoder`` (CLIP-L), ``text_encoder_2`` (CLIP-G), ``text_encoder_3`` (T5) and
their ``tokenizer``s. Each is its own model-cache entry, so a prompt encoded once frees the
encoders for the transformer. A single file (Stability's layout) is read against a local
diffusers config folder (``record.config_path``): the transformer and VAE with diffusers'
``from_single_file``; encoders from the file when it holds them, else from that folder;
tokenizers and the scheduler always from the folder.

Standalone encoders (types ``clip_embed`` and ``t5_encoder``) load through
:mod:`invoke_nb.models.load_flux`, which serves every family (the CLIP class is the one the
folder's config names, so SD3 gets ``CLIPTextModelWithProjection``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from invoke_nb.models.errors import MissingComponentError, ModelLoadError
from invoke_nb.models.probe_sd3 import SD3_PARTS
from invoke_nb.models.records import ModelRecord

__all__ = ["load_sd3_part"]

_FILE_ENCODERS = {
    "text_encoder": "text_encoders.clip_l.",
    "text_encoder_2": "text_encoders.clip_g.",
    "text_encoder_3": "text_encoders.t5xxl.",
}


def _fail(record: ModelRecord, path: Path, problem: str, kind: type[Exception] = ModelLoadError):
    return kind(f"model {record.name!r} ({record.key}): {path}: {problem}")


def load_sd3_part(record: ModelRecord, path: Path, submodel: str | None, dtype: torch.dtype) -> Any:
    """Load ``submodel`` of the SD3 main model at ``path`` in ``dtype``."""
    if submodel not in SD3_PARTS:
        raise _fail(record, path, f"unknown submodel {submodel!r}; SD3 has {SD3_PARTS}")
    try:
        if path.is_file():
            return _from_file(record, path, submodel, dtype)
        return _from_folder(record, path, submodel, dtype)
    except ModelLoadError:
        raise
    except Exception as exc:  # corrupt weights, bad configs: name the model and the part
        raise _fail(record, path, f"cannot load {submodel}: {type(exc).__name__}: {exc}") from exc


def _from_folder(record: ModelRecord, root: Path, submodel: str, dtype: torch.dtype) -> Any:
    folder = root / submodel
    if not folder.is_dir():
        hint = " (SD3 folders may leave T5 out: disconnect t5_encoder or pick a T5 model)"
        raise _fail(
            record,
            folder,
            f"missing component {submodel!r} in the diffusers folder"
            + (hint if submodel.endswith("_3") else ""),
            MissingComponentError,
        )
    if submodel == "scheduler":
        return json.loads((folder / "scheduler_config.json").read_text(encoding="utf-8"))
    if submodel.startswith("tokenizer"):
        return _tokenizer(folder)
    if submodel == "text_encoder_3":
        from transformers import T5EncoderModel

        return T5EncoderModel.from_pretrained(folder, local_files_only=True, dtype=dtype).eval()
    if submodel.startswith("text_encoder"):
        from transformers import CLIPTextModelWithProjection

        return CLIPTextModelWithProjection.from_pretrained(
            folder, local_files_only=True, dtype=dtype
        ).eval()
    if submodel == "transformer":
        from diffusers import SD3Transformer2DModel

        return SD3Transformer2DModel.from_pretrained(
            folder, local_files_only=True, torch_dtype=dtype
        ).eval()
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_pretrained(folder, local_files_only=True, torch_dtype=dtype).eval()


def _tokenizer(folder: Path) -> Any:
    if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        from transformers import CLIPTokenizer

        return CLIPTokenizer.from_pretrained(folder, local_files_only=True)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder, local_files_only=True)


def _from_file(record: ModelRecord, path: Path, submodel: str, dtype: torch.dtype) -> Any:
    if not record.config_path or not Path(record.config_path).is_dir():
        raise _fail(
            record,
            path,
            "a single-file SD3 model needs config_path, a local SD3 diffusers folder "
            "(install with config=<folder>)",
        )
    cfg = Path(record.config_path)
    if submodel in ("scheduler",) or submodel.startswith("tokenizer"):
        return _from_folder(record, cfg, submodel, dtype)
    if submodel == "transformer":
        from diffusers import SD3Transformer2DModel

        return SD3Transformer2DModel.from_single_file(
            str(path),
            config=str(cfg),
            subfolder="transformer",
            local_files_only=True,
            torch_dtype=dtype,
        ).eval()
    if submodel == "vae":
        from diffusers import AutoencoderKL

        return AutoencoderKL.from_single_file(
            str(path), config=str(cfg), subfolder="vae", local_files_only=True, torch_dtype=dtype
        ).eval()
    from invoke_nb.models.probe import read_safetensors_header

    shapes, _ = read_safetensors_header(path)
    if not any(k.startswith(_FILE_ENCODERS[submodel]) for k in shapes):
        return _from_folder(record, cfg, submodel, dtype)  # e.g. sd3.5_large.safetensors
    from diffusers.loaders.single_file_utils import (
        create_diffusers_clip_model_from_ldm,
        create_diffusers_t5_model_from_checkpoint,
        load_single_file_checkpoint,
    )

    checkpoint = load_single_file_checkpoint(str(path), local_files_only=True)
    if submodel == "text_encoder_3":
        from transformers import T5EncoderModel

        make = create_diffusers_t5_model_from_checkpoint
        cls: Any = T5EncoderModel
    else:
        from transformers import CLIPTextModelWithProjection

        make, cls = create_diffusers_clip_model_from_ldm, CLIPTextModelWithProjection
    model = make(
        cls,
        checkpoint,
        subfolder=submodel,
        config=str(cfg),
        torch_dtype=dtype,
        local_files_only=True,
    )
    if submodel == "text_encoder_3" and model.encoder.embed_tokens.weight.is_meta:
        model.encoder.embed_tokens = model.shared  # tied in T5; the file holds `shared` only
    return model.eval()
