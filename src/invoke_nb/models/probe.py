"""Identify a model file or folder without loading its weights.

A safetensors file starts with an 8-byte length and a JSON header naming every tensor with
its dtype and shape: key names and shapes are enough to tell a main model from a LoRA, a VAE
or an embedding, and widths such as the cross-attention dimension tell the base (768 sd-1,
1024 sd-2, 1280 sdxl-refiner, 2048 sdxl), as InvokeAI's probe does. Diffusers folders are
identified from their JSON configs. Anything we cannot place becomes a result of type
``unknown`` with the reason, never an exception; only a broken file (bad or truncated
header) raises :class:`CorruptModelError`, because registering it would fail later.

Type, base, format and variant values are InvokeAI's strings, so records move between the
two tools unchanged.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from invoke_nb.models import probe_flux
from invoke_nb.models.errors import CorruptModelError
from invoke_nb.models.probe_sd3 import probe_sd3_checkpoint, probe_sd3_folder

__all__ = [
    "PICKLE_SUFFIXES",
    "CorruptModelError",
    "ProbeResult",
    "probe",
    "read_safetensors_header",
]

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
_MAX_HEADER = 100 * 1024 * 1024

Shapes = dict[str, tuple[int, ...]]


@dataclass
class ProbeResult:
    """What the probe found: InvokeAI's type/base/format/variant/prediction_type strings."""

    type: str
    base: str
    format: str
    variant: str | None = None
    prediction_type: str | None = None
    unknown_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _unknown(reason: str, fmt: str = "unknown") -> ProbeResult:
    return ProbeResult(type="unknown", base="unknown", format=fmt, unknown_reason=reason)


# -- safetensors header ------------------------------------------------------------------


def read_safetensors_header(path: str | Path) -> tuple[Shapes, dict[str, str]]:
    """Tensor shapes and ``__metadata__`` of a safetensors file, read from its header only.

    Raises :class:`CorruptModelError` when the header is unreadable or the data it announces
    does not fit in the file (a truncated download).
    """
    p = Path(path)
    size = p.stat().st_size
    with p.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CorruptModelError(f"{p.name}: not a safetensors file ({size} bytes, no header)")
        (n,) = struct.unpack("<Q", head)
        if n == 0 or n > _MAX_HEADER or n > size - 8:
            raise CorruptModelError(
                f"{p.name}: safetensors header length {n} does not fit a {size}-byte file"
            )
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptModelError(f"{p.name}: safetensors header is not valid JSON ({e})") from e
    if not isinstance(header, dict):
        raise CorruptModelError(f"{p.name}: safetensors header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    shapes: Shapes = {}
    end = 0
    for key, info in header.items():
        try:
            shapes[key] = tuple(int(d) for d in info["shape"])
            end = max(end, int(info["data_offsets"][1]))
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise CorruptModelError(f"{p.name}: bad header entry for tensor {key!r}") from e
    if 8 + n + end > size:
        raise CorruptModelError(
            f"{p.name}: truncated: the header announces {8 + n + end} bytes, the file has {size}"
        )
    return shapes, {str(k): str(v) for k, v in metadata.items()}


def _pickle_shapes(path: Path) -> Shapes:
    """Shapes from a pickle checkpoint (only called after the caller allowed and scanned it)."""
    import torch

    try:
        sd = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    return _flatten_shapes(sd)


def _flatten_shapes(obj: Any, prefix: str = "") -> Shapes:
    out: Shapes = {}
    if isinstance(obj, dict):
        if not prefix and isinstance(obj.get("state_dict"), dict):
            obj = obj["state_dict"]
        for k, v in obj.items():
            name = f"{prefix}{k}"
            shape = getattr(v, "shape", None)
            if shape is not None:
                out[name] = tuple(int(d) for d in shape)
            elif isinstance(v, dict):
                out[name] = ()  # keep the key itself visible (e.g. "string_to_param")
                out.update(_flatten_shapes(v, f"{name}."))
    return out


# -- single files ------------------------------------------------------------------------

_WIDTH_TO_BASE = {768: "sd-1", 1024: "sd-2", 1280: "sdxl-refiner", 2048: "sdxl"}


def _starts(sd: Shapes, *prefixes: str) -> bool:
    return any(k.startswith(prefixes) for k in sd)


def _ends(sd: Shapes, *suffixes: str) -> bool:
    return any(k.endswith(suffixes) for k in sd)


def _width(sd: Shapes, key: str) -> int | None:
    shape = sd.get(key)
    return shape[-1] if shape else None


def _main_checkpoint(sd: Shapes) -> ProbeResult | None:
    if (flux := probe_flux.checkpoint(sd)) is not None:
        return flux
    if (found := probe_sd3_checkpoint(sd)) is not None:
        return found
    if not _starts(sd, "model.diffusion_model."):
        return None
    base = None
    w = _width(sd, "model.diffusion_model.input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight")
    if w in (768, 1024):
        base = _WIDTH_TO_BASE[w]
    w = _width(sd, "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight")
    if base is None and w in (1280, 2048):
        base = _WIDTH_TO_BASE[w]
    if base is None:  # smaller UNets: the first cross-attention key found gives the width
        widths = [
            s[-1]
            for k, s in sd.items()
            if k.startswith("model.diffusion_model.") and "attn2.to_k" in k
        ]
        base = _WIDTH_TO_BASE.get(widths[0]) if widths else None
    if base is None:
        return _unknown("main checkpoint: no cross-attention width matches a known base")
    conv_in = sd.get("model.diffusion_model.input_blocks.0.0.weight")
    variant = {4: "normal", 9: "inpaint", 5: "depth"}.get(conv_in[1] if conv_in else 4)
    if variant is None:
        return _unknown(f"main checkpoint: unrecognized UNet in_channels {conv_in[1]}")
    prediction = "v_prediction" if base == "sd-2" else "epsilon"
    return ProbeResult("main", base, "checkpoint", variant=variant, prediction_type=prediction)


_LORA_PREFIXES = ("lora_te_", "lora_unet_", "lora_te1_", "lora_te2_", "lora_transformer_")
_LORA_SUFFIXES = (
    "to_k_lora.up.weight",
    "to_q_lora.down.weight",
    "lora_A.weight",
    "lora_B.weight",
    "lora.down.weight",
    "lora_down.weight",
    "lokr_w1",
    "lokr_w2",
    "hada_w1_a",
    "hada_w2_a",
)
_DOWN = ("lora_down.weight", "lora_A.weight", "lora.down.weight", "hada_w1_b", "hada_w2_b")


def _lora_width(sd: Shapes) -> int | None:
    """The text-token width a LoRA was trained against (InvokeAI's rule, for our key sets)."""
    te1 = te2 = None
    for key, shape in sd.items():
        if key.endswith(("lokr_w2", "lokr_w2_b")) and "attn2_to_k" in key and len(shape) >= 2:
            w1 = sd.get(key.rsplit(".", 1)[0] + ".lokr_w1")  # LoKr: kron widths multiply
            if w1 is not None and len(w1) == 2:
                return w1[1] * shape[1]
        if len(shape) < 2 or not key.endswith(_DOWN):
            continue
        is_unet = key.startswith(("lora_unet_", "unet.")) or ".unet." in key
        if is_unet and ("attn2_to_k" in key or "attn2.to_k" in key or "attn2_to_v" in key):
            return shape[1]
        if is_unet and "time_emb_proj" in key and key.startswith("lora_unet_"):
            return shape[1]
        if "self_attn" in key:
            if key.startswith(("lora_te1_", "text_encoder.")):
                te1 = shape[1]
            elif key.startswith(("lora_te2_", "text_encoder_2.")):
                te2 = shape[1]
            elif key.startswith("lora_te_"):
                return shape[1]
    if te1 is not None and te2 is not None:
        return te1 + te2
    return te1


def _lora(sd: Shapes) -> ProbeResult | None:
    if not (_starts(sd, *_LORA_PREFIXES) or _ends(sd, *_LORA_SUFFIXES)):
        return None
    if probe_flux.is_flux_lora(sd):
        from invoke_nb.models.probe_flux2 import is_flux2_lora

        return ProbeResult("lora", "flux2" if is_flux2_lora(sd) else "flux", "lycoris")
    width = _lora_width(sd)
    base = {768: "sd-1", 1024: "sd-2", 1280: "sdxl", 2048: "sdxl"}.get(width or 0)
    if base is None:
        return _unknown(f"LoRA: unrecognized token vector length {width}", "lycoris")
    return ProbeResult("lora", base, "lycoris")


def _vae(sd: Shapes, name: str) -> ProbeResult | None:
    if not _starts(sd, "encoder.conv_in", "decoder.conv_in"):
        return None
    conv = sd.get("decoder.conv_in.weight")
    latent = conv[1] if conv and len(conv) == 4 else None
    if latent == 16:
        return ProbeResult("vae", "flux", "checkpoint")
    if latent not in (4, None):
        return _unknown(f"VAE with {latent} latent channels is not supported")
    # SD1, SD2 and SDXL VAEs have the same shapes: InvokeAI goes by the file name.
    for pattern, base in ((r"xl", "sdxl"), (r"sd2", "sd-2")):
        if re.search(pattern, name, re.IGNORECASE):
            return ProbeResult("vae", base, "checkpoint")
    return ProbeResult("vae", "sd-1", "checkpoint")


def _controlnet(sd: Shapes) -> ProbeResult | None:
    # v1.0 files: control_model.*; lllyasviel's v1.1 files: bare input_blocks/zero_convs/
    # input_hint_block; diffusers names saved as one file: controlnet_cond_embedding.*
    if not _starts(
        sd, "control_model.", "zero_convs.", "controlnet_cond_embedding", "controlnet_down_blocks"
    ):
        return None
    prefixes = ("control_model.", "zero_convs.", "input_", "middle_", "down_blocks.", "mid_")
    for key in sorted(sd):
        if key.startswith(prefixes) and key.endswith("attn2.to_k.weight"):
            w = _width(sd, key)
            if w in _WIDTH_TO_BASE:
                base = _WIDTH_TO_BASE[w].replace("-refiner", "")
                return ProbeResult("controlnet", base, "checkpoint")
    return _unknown("ControlNet: no cross-attention width found", "checkpoint")


def _ip_adapter(sd: Shapes) -> ProbeResult | None:
    if not _starts(sd, "image_proj.", "ip_adapter."):
        return None
    w = _width(sd, "ip_adapter.1.to_k_ip.weight")
    base = {768: "sd-1", 1024: "sd-2", 2048: "sdxl"}.get(w or 0)
    if base is None:
        return _unknown(f"IP-Adapter: unrecognized cross-attention width {w}", "checkpoint")
    return ProbeResult("ip_adapter", base, "checkpoint")


def _embedding(sd: Shapes) -> ProbeResult | None:
    width = None
    if "clip_g" in sd:
        width = sd["clip_g"][-1]
    elif "emb_params" in sd:
        width = sd["emb_params"][-1]
    elif any(k.startswith("string_to_param.") for k in sd):
        width = next(s for k, s in sd.items() if k.startswith("string_to_param.") and s)[-1]
    elif 0 < len(sd) < 10 and all(len(s) in (1, 2) for s in sd.values()):
        width = next(iter(sd.values()))[-1]
    if width is None:
        return None
    base = {768: "sd-1", 1024: "sd-2", 1280: "sdxl"}.get(width)
    if base is None:
        return _unknown(f"embedding: unrecognized token width {width}", "embedding_file")
    return ProbeResult("embedding", base, "embedding_file")


def _encoders(sd: Shapes) -> ProbeResult | None:
    if _starts(sd, "vision_model.", "visual_projection."):
        return ProbeResult("clip_vision", "any", "checkpoint")
    if _starts(sd, "text_model.encoder.", "text_model.embeddings."):
        w = _width(sd, "text_model.embeddings.token_embedding.weight")
        return ProbeResult(
            "clip_embed", "any", "checkpoint", variant={1280: "gigantic"}.get(w or 0, "large")
        )
    if _starts(sd, "encoder.block.0.layer.0.SelfAttention"):
        return ProbeResult("t5_encoder", "any", "checkpoint")
    return None


def _upscaler(sd: Shapes) -> ProbeResult | None:
    """ESRGAN / SwinIR / similar image-to-image nets that spandrel loads."""
    keys = set(sd)
    rrdb = "conv_first.weight" in keys and any(k.startswith(("body.", "RRDB_trunk.")) for k in keys)
    old_esrgan = "model.0.weight" in keys and any(".sub." in k for k in keys)
    swin = any("layers.0.residual_group" in k for k in keys)
    lama = (
        "model.model.1.ffc.convl2l.weight" in keys or "generator.model.1.ffc.convl2l.weight" in keys
    )
    if rrdb or old_esrgan or swin or lama:
        return ProbeResult("spandrel_image_to_image", "any", "checkpoint")
    return None


def probe_state_dict(sd: Shapes, name: str) -> ProbeResult:
    """Identify a model from its tensor names and shapes (``name`` breaks VAE ties)."""
    if not sd:
        return _unknown("the file holds no tensors")
    from invoke_nb.models.probe_z_image import probe_z_image_state_dict

    if (found := probe_z_image_state_dict(sd)) is not None:
        return found
    from invoke_nb.models.probe_flux2 import flux2_state_dict

    if (found := flux2_state_dict(sd)) is not None:
        return found
    for check in (_main_checkpoint, _lora, _controlnet, _ip_adapter):
        found = check(sd)
        if found is not None:
            return found
    found = _vae(sd, name) or _encoders(sd) or _upscaler(sd) or _embedding(sd)
    if found is not None:
        return found
    sample = ", ".join(sorted(sd)[:3])
    return _unknown(f"no known model matches its {len(sd)} tensors (e.g. {sample})")


def _probe_file(p: Path, allow_pickle: bool) -> ProbeResult:
    if p.suffix == ".safetensors" or p.suffix == ".sft":
        shapes, _meta = read_safetensors_header(p)
    elif p.suffix in PICKLE_SUFFIXES:
        if not allow_pickle:
            return _unknown(f"{p.suffix} is a pickle file; not opened without allow_unsafe")
        try:
            shapes = _pickle_shapes(p)
        except Exception as e:
            raise CorruptModelError(f"{p.name}: cannot read checkpoint ({e})") from e
    elif p.suffix == ".gguf":
        from invoke_nb.models.probe_z_image import probe_z_image_gguf

        return probe_z_image_gguf(p) or probe_flux.gguf(p)
    elif p.suffix == ".task":
        from invoke_nb.models.probe_faces import probe_task_bundle

        return probe_task_bundle(p)
    else:
        return _unknown(f"unrecognized file type {p.suffix!r}")
    result = probe_state_dict(shapes, p.name)
    if result.type == "embedding" and p.suffix != ".safetensors":
        result.format = "embedding_file"
    return result


# -- diffusers / transformers folders ----------------------------------------------------

_SD_PIPELINES = {
    "StableDiffusionPipeline",
    "StableDiffusionInpaintPipeline",
    "StableDiffusionXLPipeline",
    "StableDiffusionXLInpaintPipeline",
    "StableDiffusionXLImg2ImgPipeline",
    "LatentConsistencyModelPipeline",
}


def _json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptModelError(f"{path}: unreadable JSON config ({e})") from e
    return data if isinstance(data, dict) else None


def _class_name(cfg: dict[str, Any]) -> str | None:
    if "_class_name" in cfg:
        return str(cfg["_class_name"])
    archs = cfg.get("architectures")
    return str(archs[0]) if isinstance(archs, list) and archs else None


def _main_diffusers(p: Path, cls: str) -> ProbeResult:
    if cls.startswith("StableDiffusion3"):
        return ProbeResult("main", "sd-3", "diffusers")
    if cls.startswith("Flux"):
        return ProbeResult("main", "flux", "diffusers")
    unet = _json(p / "unet" / "config.json")
    if unet is None:
        return _unknown(f"{cls} folder without unet/config.json", "diffusers")
    dim = unet.get("cross_attention_dim")
    if isinstance(dim, list):
        dim = dim[0] if dim else None
    base = _WIDTH_TO_BASE.get(dim or 0)
    if base is None:
        return _unknown(f"unrecognized UNet cross_attention_dim {dim}", "diffusers")
    in_ch = unet.get("in_channels", 4)
    variant = {4: "normal", 9: "inpaint", 5: "depth"}.get(in_ch)
    if variant is None:
        return _unknown(f"unrecognized UNet in_channels {in_ch}", "diffusers")
    sched = _json(p / "scheduler" / "scheduler_config.json") or {}
    prediction = sched.get("prediction_type", "epsilon")
    if prediction not in ("epsilon", "v_prediction", "sample"):
        return _unknown(f"unrecognized scheduler prediction_type {prediction!r}", "diffusers")
    missing = [c for c in ("unet", "vae", "text_encoder", "scheduler") if not (p / c).is_dir()]
    extra: dict[str, Any] = {"missing_components": missing} if missing else {}
    return ProbeResult("main", base, "diffusers", variant, prediction, extra=extra)


def _vae_diffusers(p: Path, cfg: dict[str, Any]) -> ProbeResult:
    sdxl = cfg.get("scaling_factor") == 0.13025 and cfg.get("sample_size") in (512, 1024)
    if sdxl or re.search(r"xl\b", p.name, re.IGNORECASE):
        return ProbeResult("vae", "sdxl", "diffusers")
    return ProbeResult("vae", "sd-1", "diffusers")


def _probe_folder(p: Path) -> ProbeResult:
    if (flux := probe_flux.folder(p)) is not None:
        return flux
    if (found := probe_sd3_folder(p)) is not None:
        return found
    index = _json(p / "model_index.json")
    config = _json(p / "config.json")
    cls = _class_name(index) if index else None
    from invoke_nb.models.probe_cogview4 import probe_cogview4_folder

    if (found := probe_cogview4_folder(p, cls)) is not None:
        return found
    from invoke_nb.models.probe_z_image import probe_z_image_folder

    if (found := probe_z_image_folder(p, cls, config)) is not None:
        return found
    from invoke_nb.models.probe_flux2 import flux2_folder

    if (found := flux2_folder(p, _class_name(index or config or {}) or "", _json)) is not None:
        return found
    if cls in _SD_PIPELINES or (cls or "").startswith(("StableDiffusion3", "Flux")):
        return _main_diffusers(p, cls or "")
    if config is not None:
        from invoke_nb.models.probe_preprocessors import probe_preprocessor

        if (found := probe_preprocessor(config)) is not None:
            return ProbeResult(*found)
        cls = _class_name(config)
        if cls in ("AutoencoderKL", "AutoencoderTiny"):
            return _vae_diffusers(p, config)
        if cls == "ControlNetModel":
            base = _WIDTH_TO_BASE.get(config.get("cross_attention_dim") or 0)
            if base is None:
                return _unknown("ControlNet: unrecognized cross_attention_dim", "diffusers")
            return ProbeResult("controlnet", base.replace("-refiner", ""), "diffusers")
        if cls == "T2IAdapter":
            kind = config.get("adapter_type")
            base = {"full_adapter_xl": "sdxl", "full_adapter": "sd-1", "light_adapter": "sd-1"}
            if kind not in base:
                return _unknown(f"T2I-Adapter: unrecognized adapter_type {kind!r}", "diffusers")
            return ProbeResult("t2i_adapter", base[kind], "diffusers")
        if cls == "CLIPVisionModelWithProjection" or (
            cls == "CLIPModel" and "vision_config" in config
        ):
            return ProbeResult("clip_vision", "any", "diffusers")
        if cls in ("CLIPTextModel", "CLIPTextModelWithProjection"):
            width = config.get("hidden_size")
            variant = "gigantic" if width == 1280 else "large"
            return ProbeResult("clip_embed", "any", "diffusers", variant=variant)
        if cls == "T5EncoderModel":
            return ProbeResult("t5_encoder", "any", "t5_encoder")
        if cls == "StableDiffusionSafetyChecker":  # the img_nsfw node's checker
            return ProbeResult("safety_checker", "any", "diffusers")
        if cls == "LlavaOnevisionForConditionalGeneration":
            return ProbeResult("llava_onevision", "any", "diffusers")
    for name in ("pytorch_lora_weights.safetensors", "pytorch_lora_weights.bin"):
        if (p / name).is_file():
            found = _probe_file(p / name, allow_pickle=False)
            if found.type == "lora":
                found.format = "diffusers"
            return found
    for name in ("learned_embeds.safetensors", "learned_embeds.bin"):
        if (p / name).is_file() and name.endswith(".safetensors"):
            found = _probe_file(p / name, allow_pickle=False)
            if found.type == "embedding":
                found.format = "embedding_folder"
            return found
    if (p / "ip_adapter.bin").is_file() or (p / "ip_adapter.safetensors").is_file():
        from invoke_nb.models.probe_control import probe_ip_adapter_folder

        return probe_ip_adapter_folder(p)
    if cls:
        return _unknown(f"folder with unsupported class {cls!r}", "diffusers")
    return _unknown("folder has no model_index.json or config.json that names a model class")


def probe(path: str | Path, *, allow_pickle: bool = False) -> ProbeResult:
    """Identify the model at ``path`` (file or folder) from headers and configs only.

    ``allow_pickle`` lets the probe open a pickle checkpoint (with torch's weights-only
    loader); call it only after the file passed a pickle scan.
    Raises :class:`CorruptModelError` for damaged files and FileNotFoundError for missing paths.
    """
    p = Path(path)
    if p.is_dir():
        return _probe_folder(p)
    if p.is_file():
        return _probe_file(p, allow_pickle)
    raise FileNotFoundError(f"no model file or folder at {str(p)!r}")
