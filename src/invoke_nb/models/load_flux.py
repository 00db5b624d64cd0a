"""Load the parts of FLUX.1 models: transformer, T5 encoder, CLIP-L, VAE (local files only).

Each part is its own model-cache entry (the cache keys by record and submodel): a new
prompt reloads nothing, a new seed runs no encoder. Submodel names are InvokeAI's:
``transformer`` of a main model; ``text_encoder_2``/``tokenizer_2`` of a T5 encoder
folder; ``text_encoder``/``tokenizer`` of a CLIP embed folder; a FLUX VAE loads whole.
A BFL single-file transformer is converted to diffusers' key names in memory; a GGUF
transformer keeps its quantized tensors and dequantizes one layer at a time as it runs
(:mod:`invoke_nb.models.gguf_flux`); bitsandbytes NF4 transformers and LLM.int8 T5
encoders keep theirs too (:mod:`invoke_nb.models.bnb_quant`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from invoke_nb.models.errors import MissingComponentError, ModelLoadError
from invoke_nb.models.records import ModelRecord

__all__ = ["handles", "load_flux_part"]


def handles(record: ModelRecord) -> bool:
    """Whether this module loads ``record`` (FLUX main/VAE models and the T5/CLIP encoders)."""
    if record.type in ("t5_encoder", "clip_embed"):
        return True
    return record.base == "flux" and record.type in ("main", "vae")


def _fail(record: ModelRecord, path: Path, problem: str, kind: type[Exception] = ModelLoadError):
    return kind(f"model {record.name!r} ({record.key}): {path}: {problem}")


def load_flux_part(record: ModelRecord, submodel: str | None, dtype: torch.dtype) -> Any:
    """The loaded ``submodel`` of ``record`` (see the module docstring for the names)."""
    path = Path(record.path).expanduser()
    if not path.exists():
        raise _fail(record, path, "file or folder does not exist")
    try:
        if record.type == "t5_encoder" and record.format == "bnb_quantized_int8b":
            return _int8_t5_part(record, path, submodel, dtype)
        if record.type == "t5_encoder":
            return _encoder_part(record, path, submodel, "text_encoder_2", "tokenizer_2", dtype)
        if record.type == "clip_embed":
            return _encoder_part(record, path, submodel, "text_encoder", "tokenizer", dtype)
        if record.type == "vae":
            return _vae(record, path, dtype)
        return _main_part(record, path, submodel, dtype)
    except (ModelLoadError, MemoryError):
        raise
    except Exception as exc:  # corrupt weights, bad configs: name the file
        raise _fail(
            record, path, f"cannot load {submodel or record.type}: {type(exc).__name__}: {exc}"
        ) from exc


def _encoder_part(
    record: ModelRecord, root: Path, submodel: str | None, model_dir: str, tok_dir: str, dtype: Any
) -> Any:
    # T5 and CLIP folders answer to either spelling of their submodel
    wanted = submodel or model_dir
    is_tokenizer = wanted.startswith("tokenizer")
    sub = root / (tok_dir if is_tokenizer else model_dir)
    if not sub.is_dir():
        if (root / "config.json").is_file() and not is_tokenizer:
            sub = root  # a bare encoder folder
        else:
            raise _fail(record, sub, f"missing {sub.name!r} folder", MissingComponentError)
    if is_tokenizer:
        if model_dir == "text_encoder_2":
            from transformers import T5TokenizerFast

            return T5TokenizerFast.from_pretrained(sub, local_files_only=True)
        from transformers import CLIPTokenizer

        return CLIPTokenizer.from_pretrained(sub, local_files_only=True)
    if model_dir == "text_encoder_2":
        from transformers import T5EncoderModel

        return T5EncoderModel.from_pretrained(sub, local_files_only=True, dtype=dtype).eval()
    from invoke_nb.models.loaders import text_encoder_class

    # CLIPTextModel (FLUX's pooled output) or ...WithProjection (SD3's), as the config says
    return text_encoder_class(sub).from_pretrained(sub, local_files_only=True, dtype=dtype).eval()


def _int8_t5_part(record: ModelRecord, root: Path, submodel: str | None, dtype: Any) -> Any:
    """InvokeAI's LLM.int8 T5 folder: the tokenizer as usual, the encoder's linear layers
    kept in int8 (bitsandbytes' matmul; :mod:`invoke_nb.models.bnb_quant`)."""
    if (submodel or "").startswith("tokenizer"):
        return _encoder_part(record, root, submodel, "text_encoder_2", "tokenizer_2", dtype)
    folder = root / "text_encoder_2"
    if not folder.is_dir():
        raise _fail(record, folder, "missing 'text_encoder_2' folder", MissingComponentError)
    from invoke_nb.models.bnb_quant import load_int8_t5

    return load_int8_t5(folder, dtype)


def _vae(record: ModelRecord, path: Path, dtype: Any) -> Any:
    from diffusers import AutoencoderKL

    if path.is_dir():
        folder = path / "vae" if (path / "vae").is_dir() else path
        return AutoencoderKL.from_pretrained(
            folder, local_files_only=True, torch_dtype=dtype
        ).eval()
    return _vae_from_file(path, dtype)


# FLUX.1's autoencoder (BFL's ae.safetensors) in diffusers' config terms
_FLUX_VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "latent_channels": 16,
    "norm_num_groups": 32,
    "sample_size": 1024,
    "scaling_factor": 0.3611,
    "shift_factor": 0.1159,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
    "force_upcast": True,
}


def _vae_from_file(path: Path, dtype: Any) -> Any:
    """BFL's ``ae.safetensors`` (LDM key names) as a diffusers AutoencoderKL."""
    from diffusers import AutoencoderKL
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
    from safetensors.torch import load_file

    sd = load_file(str(path))
    widths = [sd[f"encoder.down.{i}.block.0.conv1.weight"].shape[0] for i in range(4)]
    layers = 1 + max(int(k.split(".")[4]) for k in sd if k.startswith("encoder.down.0.block."))
    cfg = {**_FLUX_VAE, "block_out_channels": widths, "layers_per_block": layers}
    cfg["norm_num_groups"] = 32 if widths[0] % 32 == 0 else 4
    vae = AutoencoderKL(**cfg)
    vae.load_state_dict(convert_ldm_vae_checkpoint(sd, vae.config), strict=True)
    return vae.to(dtype).eval()


def _main_part(record: ModelRecord, path: Path, submodel: str | None, dtype: Any) -> Any:
    sub = submodel or "transformer"
    if record.format == "bnb_quantized_nf4b":
        if sub != "transformer":
            raise _fail(record, path, f"an NF4 FLUX model has no {sub!r} part")
        from invoke_nb.models.bnb_quant import load_nf4_transformer

        return load_nf4_transformer(path, dtype)
    if record.format == "gguf_quantized" or path.suffix == ".gguf":
        if sub != "transformer":
            raise _fail(record, path, f"a GGUF FLUX model has no {sub!r} part")
        from invoke_nb.models.gguf_flux import load_gguf_transformer

        return load_gguf_transformer(path, dtype)
    if path.is_file():
        if sub != "transformer":
            raise _fail(
                record,
                path,
                f"a single-file FLUX transformer has no {sub!r}; pick a T5 encoder, CLIP "
                "and VAE model in the FLUX model loader",
                MissingComponentError,
            )
        return _transformer_from_file(path, dtype)
    folder = path / sub
    if sub == "transformer" and not folder.is_dir() and (path / "config.json").is_file():
        folder = path  # a bare transformer folder
    if not folder.is_dir():
        raise _fail(record, folder, f"missing component {sub!r}", MissingComponentError)
    if sub == "transformer":
        from diffusers import FluxTransformer2DModel

        return FluxTransformer2DModel.from_pretrained(
            folder, local_files_only=True, torch_dtype=dtype
        ).eval()
    if sub == "vae":
        return _vae(record, folder, dtype)
    if sub == "scheduler":
        return json.loads((folder / "scheduler_config.json").read_text(encoding="utf-8"))
    if sub in ("text_encoder_2", "tokenizer_2"):
        return _encoder_part(record, path, sub, "text_encoder_2", "tokenizer_2", dtype)
    return _encoder_part(record, path, sub, "text_encoder", "tokenizer", dtype)


def _transformer_from_file(path: Path, dtype: Any) -> Any:
    import torch
    from diffusers import FluxTransformer2DModel
    from safetensors.torch import load_file

    from invoke_nb.models.flux_keys import bfl_to_diffusers, flux_config_from_bfl

    sd = load_file(str(path))
    cfg = flux_config_from_bfl({k: tuple(v.shape) for k, v in sd.items()})
    cfg.pop("_class_name")
    with torch.device("meta"):
        model = FluxTransformer2DModel(**cfg)
    converted = {k: v.to(dtype) for k, v in bfl_to_diffusers(sd).items()}
    model.load_state_dict(converted, strict=True, assign=True)
    return model.eval()
