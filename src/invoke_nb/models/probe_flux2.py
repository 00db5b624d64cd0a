"""Identify FLUX.2 (Klein) models from headers and configs, as InvokeAI 6.11 names them.

FLUX.2 differs from FLUX.1 where a probe can see it without loading weights: its
transformer reads 32-channel latents packed 2x2 (128 input channels, FLUX.1 has 64) and a
Qwen3 text embedding three hidden states wide (7680 for Klein 4B, 12288 for Klein 9B; T5
gives FLUX.1 4096). Its VAE has 32 latent channels and a batch-norm over the packed
latents. Records get base ``flux2``; main-model variants are InvokeAI's ``klein_4b``,
``klein_9b`` and ``klein_9b_base`` (9B with a guidance embedding).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from invoke_nb.models.probe import ProbeResult, Shapes

__all__ = ["flux2_folder", "flux2_state_dict", "flux_controlnet_state_dict", "klein_variant"]

_KLEIN_4B_TEXT = 7680
_KLEIN_9B_TEXT = 12288
_FLUX1_TEXT = 4096

_TEXT_KEYS = ("context_embedder.weight", "txt_in.weight")
_IMG_KEYS = ("x_embedder.weight", "img_in.weight")
_PREFIX = "model.diffusion_model."


def klein_variant(text_width: int | None, guidance: bool = False) -> str:
    """InvokeAI's Klein variant for a transformer's text width (unknown widths: 4B)."""
    if text_width == _KLEIN_9B_TEXT:
        return "klein_9b_base" if guidance else "klein_9b"
    return "klein_4b"


def _shape(sd: Shapes, names: tuple[str, ...]) -> tuple[int, ...] | None:
    for name in names:
        for key in (name, _PREFIX + name):
            if key in sd:
                return sd[key]
    return None


def flux_controlnet_state_dict(sd: Shapes) -> ProbeResult | None:
    """A FLUX.1 ControlNet checkpoint (InstantX or XLabs layout), else ``None``."""
    if any(k.startswith("controlnet_x_embedder.") for k in sd):
        return ProbeResult("controlnet", "flux", "checkpoint", extra={"layout": "instantx"})
    if any(k.startswith("input_hint_block.") for k in sd) and any(
        k.startswith("controlnet_blocks.") for k in sd
    ):
        return ProbeResult("controlnet", "flux", "checkpoint", extra={"layout": "xlabs"})
    return None


def flux2_state_dict(sd: Shapes) -> ProbeResult | None:
    """A FLUX.2 transformer or VAE checkpoint, or ``None`` when the tensors are not FLUX.2."""
    if (found := flux_controlnet_state_dict(sd)) is not None:
        return found
    if "ip_adapter_proj_model.proj.weight" in sd and any(
        ".ip_adapter_double_stream_" in k for k in sd
    ):
        return ProbeResult("ip_adapter", "flux", "checkpoint")  # XLabs FLUX IP-Adapter
    img_in = sd.get("img_in.lora_A.weight")
    if img_in is not None and len(img_in) == 2 and img_in[1] == 128 and "img_in.lora_B.bias" in sd:
        return ProbeResult("control_lora", "flux", "lycoris")  # FLUX.1 control LoRA (BFL)
    if "redux_up.weight" in sd and "redux_down.weight" in sd:  # FLUX.1 Redux projector
        return ProbeResult("flux_redux", "flux", "checkpoint")
    if any(k.startswith(("encoder.conv_in", "decoder.conv_in")) for k in sd):
        conv = sd.get("decoder.conv_in.weight")
        if "bn.running_mean" in sd or (conv is not None and len(conv) == 4 and conv[1] == 32):
            return ProbeResult("vae", "flux2", "checkpoint")
        return None
    text = _shape(sd, _TEXT_KEYS)
    img = _shape(sd, _IMG_KEYS)
    text_width = text[1] if text and len(text) >= 2 else None
    if (text_width or 0) > _FLUX1_TEXT or (img and len(img) >= 2 and img[1] == 128):
        guidance = any("guidance_in" in k or "guidance_embedder" in k for k in sd)
        return ProbeResult(
            "main", "flux2", "checkpoint", variant=klein_variant(text_width, guidance)
        )
    return None


def flux2_folder(p: Path, cls: str, read_json: Any) -> ProbeResult | None:
    """A FLUX.2 diffusers folder (main pipeline or VAE), or ``None`` for anything else."""
    if cls.startswith("Flux2"):  # Flux2KleinPipeline (Flux2Pipeline is FLUX.2 [dev])
        cfg = read_json(p / "transformer" / "config.json") or {}
        variant = klein_variant(cfg.get("joint_attention_dim"), bool(cfg.get("guidance_embeds")))
        missing = [
            c
            for c in ("transformer", "text_encoder", "tokenizer", "vae", "scheduler")
            if not (p / c).is_dir()
        ]
        extra: dict[str, Any] = {"missing_components": missing} if missing else {}
        return ProbeResult("main", "flux2", "diffusers", variant=variant, extra=extra)
    if cls == "AutoencoderKLFlux2":
        return ProbeResult("vae", "flux2", "diffusers")
    if cls == "FluxControlNetModel":
        return ProbeResult("controlnet", "flux", "diffusers")
    if cls == "SiglipVisionModel":  # FLUX Redux's image encoder
        return ProbeResult("siglip", "any", "diffusers")
    return None
