"""Load Z-Image parts: ``ZImageTransformer2DModel`` (diffusers folder or one file), the
Qwen3 text encoder and tokenizer (from a Z-Image folder or a standalone encoder folder),
the 16-channel VAE and the scheduler config.

Precision: InvokeAI runs Z-Image in bfloat16 where the device supports it; the CPU keeps
the cache's float32.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from invoke_nb.models.errors import MissingComponentError, ModelLoadError
from invoke_nb.models.load_cogview4 import family_dtype
from invoke_nb.models.records import ModelRecord

__all__ = ["SUBMODELS", "load_z_image"]

SUBMODELS = ("transformer", "text_encoder", "tokenizer", "vae", "scheduler")


def _fail(record: ModelRecord, path: Path, problem: str, kind: type[Exception] = ModelLoadError):
    return kind(f"model {record.name!r} ({record.key}): {path}: {problem}")


def load_z_image(record: ModelRecord, submodel: str | None, dtype: torch.dtype) -> Any:
    """Load ``submodel`` of a Z-Image main model or a Qwen3 encoder record."""
    root = Path(record.path).expanduser()
    dtype = family_dtype(dtype)
    if record.type == "controlnet":
        return _control(record, root, dtype)
    if record.type == "qwen3_encoder":
        if submodel not in ("text_encoder", "tokenizer"):
            raise _fail(record, root, f"a Qwen3 encoder has no submodel {submodel!r}")
        folder = root / submodel if (root / submodel).is_dir() else root
        return _part(record, folder, submodel, dtype)
    if submodel not in SUBMODELS:
        raise _fail(record, root, f"unknown Z-Image submodel {submodel!r}; expected {SUBMODELS}")
    if root.is_file():
        if submodel != "transformer":
            raise _fail(
                record,
                root,
                f"a single-file Z-Image model holds only the transformer, not {submodel!r}: "
                "give the loader a Qwen3 encoder and a VAE (or a Qwen3 source folder)",
                MissingComponentError,
            )
        if record.format == "gguf_quantized" or root.suffix == ".gguf":
            return _transformer_gguf(record, root, dtype)
        return _transformer_file(record, root, dtype)
    folder = root / submodel
    if not folder.is_dir():
        raise _fail(
            record,
            folder,
            f"missing component {submodel!r} in the Z-Image folder",
            MissingComponentError,
        )
    return _part(record, folder, submodel, dtype)


def _part(record: ModelRecord, folder: Path, submodel: str, dtype: torch.dtype) -> Any:
    try:
        if submodel == "scheduler":
            return json.loads((folder / "scheduler_config.json").read_text(encoding="utf-8"))
        if submodel == "tokenizer":
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(folder, local_files_only=True)
        if submodel == "text_encoder":
            from transformers import AutoModel

            return AutoModel.from_pretrained(folder, local_files_only=True, dtype=dtype).eval()
        if submodel == "transformer":
            from diffusers import ZImageTransformer2DModel

            return ZImageTransformer2DModel.from_pretrained(
                folder, local_files_only=True, torch_dtype=dtype
            ).eval()
        from diffusers import AutoencoderKL

        return AutoencoderKL.from_pretrained(
            folder, local_files_only=True, torch_dtype=dtype
        ).eval()
    except Exception as exc:
        raise _fail(record, folder, f"cannot load {submodel}: {type(exc).__name__}: {exc}") from exc


def _transformer_file(record: ModelRecord, path: Path, dtype: torch.dtype) -> Any:
    """A single-file transformer in diffusers key layout, configured from its shapes."""
    from diffusers import ZImageTransformer2DModel
    from safetensors.torch import load_file

    try:
        sd = from_original_layout(load_file(str(path)))
        config = _config_from_shapes({k: tuple(v.shape) for k, v in sd.items()})
        import torch

        with torch.device("meta"):
            model = ZImageTransformer2DModel(**config)
        model.load_state_dict(sd, strict=True, assign=True)
        return model.to(dtype).eval()
    except Exception as exc:
        raise _fail(record, path, f"cannot load transformer: {type(exc).__name__}: {exc}") from exc


def from_original_layout(sd: dict[str, Any]) -> dict[str, Any]:
    """Tongyi's original Z-Image key layout (also ComfyUI's and the GGUF files') renamed to
    diffusers': ``x_embedder``/``final_layer`` gain the ``2-1`` patch key, fused ``qkv``
    splits into ``to_q``/``to_k``/``to_v``, ``q_norm``/``k_norm``/``out`` become
    ``norm_q``/``norm_k``/``to_out.0``; the final norm has no weights in diffusers. A file
    already in diffusers' layout comes back unchanged (bar a ``diffusion_model.`` prefix).
    """
    out: dict[str, Any] = {}
    for key, value in sd.items():
        key = key.removeprefix("model.diffusion_model.").removeprefix("diffusion_model.")
        if key.startswith("norm_final."):
            continue
        if key.startswith("x_embedder."):
            key = "all_x_embedder.2-1." + key.removeprefix("x_embedder.")
        elif key.startswith("final_layer."):
            key = "all_final_layer.2-1." + key.removeprefix("final_layer.")
        if ".attention.qkv." in key:
            head, tail = key.split(".attention.qkv.")
            for name, part in zip(("to_q", "to_k", "to_v"), value.chunk(3, dim=0), strict=True):
                out[f"{head}.attention.{name}.{tail}"] = part.contiguous()
            continue
        if ".attention." in key:
            key = key.replace(".q_norm.", ".norm_q.").replace(".k_norm.", ".norm_k.")
            key = key.replace(".attention.out.", ".attention.to_out.0.")
        out[key] = value
    return out


def _transformer_gguf(record: ModelRecord, path: Path, dtype: torch.dtype) -> Any:
    """A GGUF transformer whose linear weights stay quantized (FLUX's GGUF layers, dequantized
    per call); the file's original key layout is renamed as for single files, the fused
    ``qkv`` rows split alike (quantization blocks run along a row)."""
    import torch
    from diffusers import ZImageTransformer2DModel

    from invoke_nb.models.gguf_flux import dequantize, linear_class, read_gguf

    try:
        tensors, quant = read_gguf(path)
        kinds = from_original_layout(
            {
                k: torch.full((max(1, v.shape[0]),), quant[k][0] if k in quant else -1)
                for k, v in tensors.items()
            }
        )
        shapes = from_original_layout(
            {
                k: torch.zeros(quant[k][1] if k in quant else tuple(v.shape), device="meta")
                for k, v in tensors.items()
            }
        )
        data = from_original_layout(tensors)
        with torch.device("meta"):
            model = ZImageTransformer2DModel(
                **_config_from_shapes({k: tuple(v.shape) for k, v in shapes.items()})
            )
        modules = dict(model.named_modules())
        linear = linear_class()
        floats = {}
        for name, value in data.items():
            qtype = int(kinds[name][0])
            if qtype < 0:
                floats[name] = value.to(dtype)
                continue
            mod_name = name.rsplit(".", 1)[0]
            old = modules.get(mod_name)
            in_blocks = name.startswith(("layers.", "noise_refiner.", "context_refiner."))
            if not (in_blocks and isinstance(old, torch.nn.Linear) and name.endswith(".weight")):
                # pad tokens and the small embedders (diffusers reads the timestep MLP's
                # weight dtype) are dequantized once; the blocks' linears stay quantized
                floats[name] = dequantize(value, qtype, tuple(shapes[name].shape)).to(dtype)
                continue
            bias = data.get(mod_name + ".bias")
            new = linear(
                value,
                qtype,
                old.out_features,
                old.in_features,
                None if bias is None else bias.to(dtype),
            )
            parent, _, child = mod_name.rpartition(".")
            setattr(modules[parent] if parent else model, child, new)
        quantized = {n.rsplit(".", 1)[0] for n in data if n not in floats and int(kinds[n][0]) >= 0}
        model.load_state_dict(
            {k: v for k, v in floats.items() if not (k.endswith(".bias") and k[:-5] in quantized)},
            strict=False,
            assign=True,
        )
        left = [n for n, p in model.named_parameters() if p.device.type == "meta"]
        if left:
            raise ValueError(f"the file lacks tensors for {left[:3]}")
        return model.eval()
    except Exception as exc:
        raise _fail(
            record, path, f"cannot load GGUF transformer: {type(exc).__name__}: {exc}"
        ) from exc


def _config_from_shapes(sd: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    """ZImageTransformer2DModel arguments read off the checkpoint's tensor shapes."""
    dim = sd["cap_embedder.1.weight"][0]
    cap = sd["cap_embedder.1.weight"][1]
    layers = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("layers."))
    refiners = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("context_refiner."))
    head_dim = sd["layers.0.attention.norm_q.weight"][0]
    in_ch = sd["all_x_embedder.2-1.weight"][1] // 4
    config: dict[str, Any] = {
        "in_channels": in_ch,
        "dim": dim,
        "n_layers": layers,
        "n_refiner_layers": refiners,
        "n_heads": dim // head_dim,
        "n_kv_heads": dim // head_dim,
        "cap_feat_dim": cap,
    }
    if head_dim != 128:  # not Z-Image's real width: split the rotary axes like ours
        third = head_dim // 8 * 2
        config["axes_dims"] = [
            head_dim - 2 * (head_dim - third) // 2,
            *[(head_dim - third) // 2] * 2,
        ]
    return config


def _control(record: ModelRecord, path: Path, dtype: torch.dtype) -> Any:
    """A ``ZImageControlNetModel``: a diffusers folder, or one file in VideoX-Fun's layout
    (the layer places come from the file's metadata, else Z-Image-Turbo's 30 layers)."""
    from diffusers import ZImageControlNetModel

    try:
        if path.is_dir():
            return ZImageControlNetModel.from_pretrained(
                path, local_files_only=True, torch_dtype=dtype
            ).eval()
        import torch
        from safetensors import safe_open
        from safetensors.torch import load_file

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        sd = load_file(str(path))
        n = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("control_layers."))
        places = (
            json.loads(meta["control_layers_places"])
            if "control_layers_places" in meta
            else [i * (30 // n) for i in range(n)]
        )
        refiner = sorted(
            {int(k.split(".")[1]) for k in sd if k.startswith("control_noise_refiner.")}
        )
        head_dim = sd["control_layers.0.attention.norm_q.weight"].shape[0]
        dim = sd["control_all_x_embedder.2-1.weight"].shape[0]
        config = {
            "control_layers_places": places,
            "control_refiner_layers_places": refiner or [0, 1],
            "control_in_dim": sd["control_all_x_embedder.2-1.weight"].shape[1] // 4,
            "dim": dim,
            "n_refiner_layers": len(refiner) or 2,
            "n_heads": dim // head_dim,
            "n_kv_heads": dim // head_dim,
        }
        if not refiner:
            config["add_control_noise_refiner"] = "control_layers"
        elif any(k.startswith("control_noise_refiner.0.after_proj") for k in sd):
            config["add_control_noise_refiner"] = "control_noise_refiner"
        with torch.device("meta"):
            model = ZImageControlNetModel(**config)
        model.load_state_dict(sd, strict=True, assign=True)
        return model.to(dtype).eval()
    except Exception as exc:
        raise _fail(
            record, path, f"cannot load Z-Image ControlNet: {type(exc).__name__}: {exc}"
        ) from exc
