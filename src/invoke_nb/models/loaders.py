"""Load one part of an installed model from local files (diffusers folders or single files).

The model manager's cache calls :func:`load_submodel` and keeps what it returns; the nodes
never touch files. Everything is offline: single-file checkpoints are read with diffusers'
``from_single_file`` against a local diffusers config folder (``record.config_path``).
Submodel names are InvokeAI's SubModelType values.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from invoke_nb.models import load_flux
from invoke_nb.models.errors import MissingComponentError, ModelLoadError, UnsafeModelError
from invoke_nb.models.load_sd3 import load_sd3_part
from invoke_nb.models.records import ModelRecord

__all__ = ["SUBMODELS", "ModelLoadError", "load_submodel"]

SUBMODELS = (
    "unet",
    "text_encoder",
    "text_encoder_2",
    "tokenizer",
    "tokenizer_2",
    "vae",
    "scheduler",
)


def _fail(
    record: ModelRecord, path: Path, problem: str, kind: type[Exception] = ModelLoadError
) -> Exception:
    """An error naming the model, the file and what is wrong with it."""
    return kind(f"model {record.name!r} ({record.key}): {path}: {problem}")


def load_submodel(
    record: ModelRecord, submodel: str | None, *, dtype: torch.dtype | None = None
) -> Any:
    """Load ``submodel`` of the model described by ``record``.

    Main models need a submodel; ``vae`` models load whole (``submodel`` None or "vae");
    ``lora`` returns its state dict; ``embedding`` returns its tensors. ``"scheduler"``
    returns the scheduler config dict (a scheduler is built per run from it). ``dtype``
    defaults to float32.
    """
    # Loaded weights must be ordinary tensors even when a caller holds inference mode.
    import torch

    with torch.inference_mode(False):
        return _load(record, submodel, torch.float32 if dtype is None else dtype)


def _load(record: ModelRecord, submodel: str | None, dtype: torch.dtype) -> Any:
    path = Path(record.path).expanduser()
    if not path.exists():
        raise _fail(record, path, "file or folder does not exist")
    kind = record.type
    if kind == "main" and record.base == "cogview4":
        from invoke_nb.models.load_cogview4 import load_cogview4

        return load_cogview4(record, submodel, dtype)
    if (kind in ("main", "controlnet") and record.base == "z-image") or kind == "qwen3_encoder":
        from invoke_nb.models.load_z_image import load_z_image

        return load_z_image(record, submodel, dtype)
    if record.base == "flux2" and kind != "lora":  # LoRAs: tensors, read below
        from invoke_nb.models.load_flux2 import load_flux2

        return load_flux2(record, submodel, dtype)
    from invoke_nb.models import load_flux_extras

    if load_flux_extras.handles(record):
        return load_flux_extras.load_flux_extra(record, submodel, dtype)
    if load_flux.handles(record):
        return load_flux.load_flux_part(record, submodel, dtype)
    if record.base == "sd-3" and kind == "main":
        return load_sd3_part(record, path, submodel, dtype)
    if kind == "main":
        if submodel not in SUBMODELS:
            raise _fail(record, path, f"unknown submodel {submodel!r}; expected one of {SUBMODELS}")
        if record.format == "checkpoint" or path.is_file():
            return _load_checkpoint_part(record, path, submodel, dtype)
        return _load_folder_part(record, path, submodel, dtype)
    if kind == "vae":
        if submodel not in (None, "vae"):
            raise _fail(record, path, f"a VAE has no submodel {submodel!r}")
        return _load_vae(record, path, dtype)
    if kind in ("lora", "embedding", "control_lora"):
        return _load_tensors(record, path)
    if kind == "safety_checker":
        return _load_safety_checker(path)
    if kind == "llava_onevision":
        from invoke_nb.models.load_llava import load_llava_onevision

        return load_llava_onevision(path, dtype)
    from invoke_nb.models.load_control import CONTROL_TYPES, load_control

    if kind in CONTROL_TYPES:
        try:
            return load_control(record, path, dtype)
        except Exception as exc:
            raise _fail(record, path, f"cannot load {kind}: {type(exc).__name__}: {exc}") from exc
    if kind == "depth_anything":
        from invoke_nb.models.load_preprocessors import load_depth_anything

        return load_depth_anything(record, path)
    if kind == "grounding_dino":
        from invoke_nb.models.load_preprocessors import load_grounding_dino

        return load_grounding_dino(record, path)
    if kind == "segment_anything":
        from invoke_nb.models.load_preprocessors import load_segment_anything

        return load_segment_anything(record, path)
    from invoke_nb.models.annotators import ANNOTATOR_TYPES

    if kind in ANNOTATOR_TYPES:
        from invoke_nb.models.load_annotators import load_annotator

        return load_annotator(record, path)
    if kind == "spandrel_image_to_image":
        from invoke_nb.models.load_spandrel import load_spandrel

        return load_spandrel(record, path)
    raise _fail(record, path, f"model type {kind!r} is not loadable here")


def _load_safety_checker(path: Path) -> tuple[Any, Any]:
    """diffusers' Stable Diffusion safety checker and the CLIP image processor beside it."""
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPImageProcessor

    checker = StableDiffusionSafetyChecker.from_pretrained(path, local_files_only=True).eval()
    return checker, CLIPImageProcessor.from_pretrained(path, local_files_only=True)


def _load_folder_part(record: ModelRecord, root: Path, submodel: str, dtype: torch.dtype) -> Any:
    folder = root / submodel
    if not folder.is_dir():
        raise _fail(
            record,
            folder,
            f"missing component {submodel!r} in the diffusers folder",
            MissingComponentError,
        )
    try:
        if submodel == "scheduler":
            cfg_file = folder / "scheduler_config.json"
            return json.loads(cfg_file.read_text(encoding="utf-8"))
        if submodel.startswith("tokenizer"):
            from transformers import CLIPTokenizer

            return CLIPTokenizer.from_pretrained(folder, local_files_only=True)
        if submodel.startswith("text_encoder"):
            return (
                text_encoder_class(folder)
                .from_pretrained(folder, local_files_only=True, dtype=dtype)
                .eval()
            )
        if submodel == "unet":
            from diffusers import UNet2DConditionModel

            return UNet2DConditionModel.from_pretrained(
                folder, local_files_only=True, torch_dtype=dtype
            ).eval()
        from diffusers import AutoencoderKL

        return AutoencoderKL.from_pretrained(
            folder, local_files_only=True, torch_dtype=dtype
        ).eval()
    except ModelLoadError:
        raise
    except Exception as exc:  # corrupt weights, bad configs: name the folder
        raise _fail(record, folder, f"cannot load {submodel}: {type(exc).__name__}: {exc}") from exc


def text_encoder_class(folder: Path) -> Any:
    """The CLIP text encoder class a folder's config names (FLUX pools CLIPTextModel's output;
    SD3 and SDXL's second encoder use ...WithProjection)."""
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    arch = (cfg.get("architectures") or ["CLIPTextModel"])[0]
    return CLIPTextModelWithProjection if arch == "CLIPTextModelWithProjection" else CLIPTextModel


def _config_folder(record: ModelRecord, path: Path) -> Path:
    if not record.config_path:
        why = (record.extra or {}).get("config_error")
        raise _fail(
            record,
            path,
            "single-file checkpoint needs config_path (a local diffusers folder)"
            + (f"; none could be built at install: {why}" if why else ""),
        )
    cfg = Path(record.config_path).expanduser()
    if not cfg.is_dir():
        raise _fail(record, cfg, "config_path is not a folder")
    return cfg


def _load_checkpoint_part(
    record: ModelRecord, path: Path, submodel: str, dtype: torch.dtype
) -> Any:
    cfg = _config_folder(record, path)
    # Tokenizers and the scheduler config are not in a checkpoint: take them from the config.
    if submodel == "scheduler" or submodel.startswith("tokenizer"):
        return _load_folder_part(record, cfg, submodel, dtype)
    try:
        if submodel == "unet":
            from diffusers import UNet2DConditionModel

            return UNet2DConditionModel.from_single_file(
                str(path),
                config=str(cfg),
                subfolder="unet",
                local_files_only=True,
                torch_dtype=dtype,
            ).eval()
        if submodel == "vae":
            from diffusers import AutoencoderKL

            return AutoencoderKL.from_single_file(
                str(path),
                config=str(cfg),
                subfolder="vae",
                local_files_only=True,
                torch_dtype=dtype,
            ).eval()
        return _text_encoder_from_checkpoint(path, cfg / submodel, dtype)
    except ModelLoadError:
        raise
    except Exception as exc:
        raise _fail(record, path, f"cannot load {submodel}: {type(exc).__name__}: {exc}") from exc


def _text_encoder_from_checkpoint(path: Path, config_folder: Path, dtype: torch.dtype) -> Any:
    """Build a text encoder from a checkpoint's CLIP (or SDXL OpenCLIP) tensors.

    diffusers' single-file helper does the key conversion; the config comes from the local
    diffusers folder, so nothing is downloaded.
    """
    from diffusers.loaders.single_file_utils import (
        create_diffusers_clip_model_from_ldm,
        load_single_file_checkpoint,
    )

    checkpoint = load_single_file_checkpoint(str(path), local_files_only=True)
    model = create_diffusers_clip_model_from_ldm(
        text_encoder_class(config_folder),
        checkpoint,
        subfolder=config_folder.name,
        config=str(config_folder.parent),
        torch_dtype=dtype,
        local_files_only=True,
    )
    return model.eval()


def _load_vae(record: ModelRecord, path: Path, dtype: torch.dtype) -> Any:
    from diffusers import AutoencoderKL

    try:
        if path.is_dir():
            return AutoencoderKL.from_pretrained(
                path, local_files_only=True, torch_dtype=dtype
            ).eval()
        cfg = _config_folder(record, path)
        sub = "vae" if (cfg / "vae").is_dir() else None
        kwargs: dict[str, Any] = {"subfolder": sub} if sub else {}
        return AutoencoderKL.from_single_file(
            str(path), config=str(cfg), local_files_only=True, torch_dtype=dtype, **kwargs
        ).eval()
    except ModelLoadError:
        raise
    except Exception as exc:
        raise _fail(record, path, f"cannot load VAE: {type(exc).__name__}: {exc}") from exc


def _load_tensors(record: ModelRecord, path: Path) -> dict[str, torch.Tensor]:
    if path.is_dir():
        files = sorted(path.glob("*.safetensors"))
        if not files:
            raise _fail(record, path, "folder holds no .safetensors file")
        path = files[0]
    if path.suffix != ".safetensors":
        raise _fail(
            record,
            path,
            "only .safetensors files are loaded (pickle files are refused)",
            UnsafeModelError,
        )
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as exc:
        raise _fail(record, path, f"corrupt safetensors file: {exc}") from exc
