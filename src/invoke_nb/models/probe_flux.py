"""Identify FLUX.1 models and their encoders without loading weights (InvokeAI's rules).

- Transformers in BFL's single-file layout: ``double_blocks.0.img_attn.norm.key_norm.scale``
  (optionally under ``model.diffusion_model.``); dev has ``guidance_in``, dev fill also has
  384 input channels (``img_in.weight``), schnell has no guidance embedder.
- Diffusers folders (``FluxPipeline``/``FluxFillPipeline``/``FluxTransformer2DModel``): the
  variant from ``transformer/config.json`` (``in_channels`` 384 -> dev_fill, then
  ``guidance_embeds``).
- GGUF files: tensor names and shapes from the GGUF header, same rules, format
  ``gguf_quantized``; bitsandbytes NF4 files (``*.quant_state.bitsandbytes__nf4`` keys):
  ``bnb_quantized_nf4b``.
- T5 encoder folders (``text_encoder_2/`` of class ``T5EncoderModel`` with its
  ``model.safetensors.index.json``): type ``t5_encoder``, format ``t5_encoder`` (or
  ``bnb_quantized_int8b`` when the weights carry LLM.int8 ``SCB`` keys), base ``any``.
- CLIP-L folders (``text_encoder/`` of class ``CLIPTextModel``, width 768): ``clip_embed``.
- 16-channel VAEs with FLUX's scaling factor 0.3611: base ``flux``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from invoke_nb.models.errors import CorruptModelError

__all__ = ["checkpoint", "folder", "gguf", "gguf_shapes"]

_PREFIX = "model.diffusion_model."


def _variant(shapes: dict[str, tuple[int, ...]]) -> str | None:
    img_in = shapes.get("img_in.weight") or shapes.get(_PREFIX + "img_in.weight")
    if img_in is None or len(img_in) < 2:
        return None
    dev = "guidance_in.out_layer.weight" in shapes or (
        _PREFIX + "guidance_in.out_layer.weight" in shapes
    )
    if dev and img_in[1] == 384:
        return "dev_fill"
    return "dev" if dev else "schnell"


def is_flux1(shapes: dict[str, tuple[int, ...]]) -> bool:
    """A FLUX.1 transformer (not FLUX.2, whose double blocks share one modulation)."""
    key = "double_blocks.0.img_attn.norm.key_norm.scale"
    has = key in shapes or _PREFIX + key in shapes
    flux2 = any(k.endswith("double_stream_modulation_img.lin.weight") for k in shapes)
    return has and not flux2


def is_flux_lora(shapes: dict[str, tuple[int, ...]]) -> bool:
    """LoRA keys naming FLUX.1 transformer layers, in any layout InvokeAI reads (kohya and
    XLabs/AI-Toolkit BFL names, diffusers/PEFT and OneTrainer diffusers names)."""
    return any(
        "double_blocks" in k
        or "single_blocks" in k
        or "single_transformer_blocks" in k
        or k.startswith(("transformer.transformer_blocks.", "lora_transformer_transformer_blocks_"))
        or k.startswith(("lora_unet_final_layer_", "lora_te2_encoder_block_"))  # kohya: T5
        for k in shapes
    )


def checkpoint(shapes: dict[str, tuple[int, ...]]) -> Any | None:
    """A :class:`ProbeResult` for a BFL-layout FLUX.1 transformer, else None."""
    from invoke_nb.models.probe import ProbeResult, _unknown

    if not is_flux1(shapes):
        return None
    variant = _variant(shapes)
    if variant is None:
        return _unknown("FLUX transformer without img_in.weight: variant unknown", "checkpoint")
    if any("bitsandbytes__nf4" in k for k in shapes):
        return ProbeResult("main", "flux", "bnb_quantized_nf4b", variant=variant)
    return ProbeResult("main", "flux", "checkpoint", variant=variant)


def gguf_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and (torch-order) shapes of a GGUF file, from its header."""
    try:
        from gguf import GGUFReader
    except ImportError as e:  # the optional extra
        raise CorruptModelError(
            f"{path.name}: reading GGUF files needs the 'gguf' package "
            "(pip install 'invoke-nb[gguf]')"
        ) from e
    try:
        reader = GGUFReader(str(path))
    except Exception as e:
        raise CorruptModelError(f"{path.name}: not a readable GGUF file ({e})") from e
    return {t.name: tuple(int(d) for d in reversed(t.shape.tolist())) for t in reader.tensors}


def gguf(path: Path) -> Any:
    """A :class:`ProbeResult` for a GGUF-quantized FLUX.1 transformer (or unknown)."""
    from invoke_nb.models.probe import ProbeResult, _unknown

    shapes = gguf_shapes(path)
    if not is_flux1(shapes):
        return _unknown("GGUF file is not a FLUX.1 transformer", "gguf_quantized")
    variant = _variant(shapes)
    if variant is None:
        return _unknown("GGUF FLUX transformer: variant unknown", "gguf_quantized")
    return ProbeResult("main", "flux", "gguf_quantized", variant=variant)


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CorruptModelError(f"{path}: unreadable JSON config ({e})") from e
    return data if isinstance(data, dict) else {}


def _cls(cfg: dict[str, Any]) -> str:
    archs = cfg.get("architectures")
    return str(cfg.get("_class_name") or (archs[0] if isinstance(archs, list) and archs else ""))


def _transformer_variant(cfg: dict[str, Any]) -> str:
    if cfg.get("in_channels", 64) == 384:
        return "dev_fill"
    return "dev" if cfg.get("guidance_embeds", False) else "schnell"


def folder(p: Path) -> Any | None:
    """A :class:`ProbeResult` for a FLUX-family folder, else None (other probes continue)."""
    from invoke_nb.models.probe import ProbeResult, _unknown

    index = p / "model_index.json"
    if index.is_file() and _cls(_json(index)) in ("FluxPipeline", "FluxFillPipeline"):
        cfg = p / "transformer" / "config.json"
        if not cfg.is_file():
            return _unknown("FLUX pipeline folder without transformer/config.json", "diffusers")
        return ProbeResult("main", "flux", "diffusers", variant=_transformer_variant(_json(cfg)))
    config = p / "config.json"
    if config.is_file():
        cfg = _json(config)
        cls = _cls(cfg)
        if cls == "FluxTransformer2DModel":
            return ProbeResult("main", "flux", "diffusers", variant=_transformer_variant(cfg))
        scale = float(cfg.get("scaling_factor") or 0)
        if (
            cls == "AutoencoderKL"
            and cfg.get("latent_channels") == 16
            and abs(scale - 0.3611) < 1e-3
        ):
            return ProbeResult("vae", "flux", "diffusers")
        return None
    t5 = p / "text_encoder_2" / "config.json"
    if t5.is_file() and _cls(_json(t5)) == "T5EncoderModel":
        files = [f.name for f in (p / "text_encoder_2").iterdir()]
        if any("llm_int8" in f for f in files):
            return ProbeResult("t5_encoder", "any", "bnb_quantized_int8b")
        if "model.safetensors.index.json" not in files:
            return _unknown("T5 encoder folder without model.safetensors.index.json", "t5_encoder")
        return ProbeResult("t5_encoder", "any", "t5_encoder")
    clip = p / "text_encoder" / "config.json"
    if clip.is_file() and not (p / "unet").exists() and not (p / "transformer").exists():
        cfg = _json(clip)
        if _cls(cfg) in ("CLIPTextModel", "CLIPTextModelWithProjection", "CLIPModel"):
            width = cfg.get("hidden_size")
            variant = {768: "large", 1280: "gigantic"}.get(width)
            if variant is None:
                return _unknown(f"CLIP text encoder of width {width}", "diffusers")
            return ProbeResult("clip_embed", "any", "diffusers", variant=variant)
    return None
