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

__all__ = [
    "flux2_folder",
    "flux2_state_dict",
    "flux_controlnet_state_dict",
    "is_flux2_lora",
    "klein_variant",
]

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


# layer names only FLUX.2 has: diffusers' Flux2Transformer2DModel and BFL's shared modulations
_FLUX2_NAMES = (
    "to_qkv_mlp_proj",
    "ff.linear_in",
    "ff_context.linear_in",
    "double_stream_modulation",
    "single_stream_modulation",
    "time_guidance_embed",
)
_FLUX2_TEXT_WIDTHS = {7680, 12288, 15360}  # Qwen3 4B / 8B, Mistral (FLUX.2 [dev])
_FLUX2_VEC_WIDTHS = {2560, 4096, 5120}
_DOWN_SUFFIXES = (".lora_down.weight", ".lora_A.weight", ".lora.down.weight")
_UP_SUFFIXES = (".lora_up.weight", ".lora_B.weight", ".lora.up.weight")


def _lora_dim(sd: Shapes, module: str, up: bool) -> int | None:
    """Output (``up``) or input width of a LoRA layer on a BFL ``module``, any prefix."""
    suffixes = tuple(s.replace("_", ".") for s in (_UP_SUFFIXES if up else _DOWN_SUFFIXES))
    for key, shape in sd.items():
        norm = key.replace("_", ".")  # kohya underscores and dotted names alike
        if norm.endswith(suffixes):
            stem = norm.rsplit(".lora", 1)[0]
            if stem.endswith("." + module.replace("_", ".")) and len(shape) >= 2:
                return shape[0] if up else shape[1]
    return None


def is_flux2_lora(sd: Shapes) -> bool:
    """Whether a FLUX-family LoRA targets FLUX.2 rather than FLUX.1 (InvokeAI 6.14's rules).

    Diffusers' FLUX.2 names and BFL's shared modulations say so directly; otherwise the
    widths do: a Qwen3/Mistral text input or vector, or the SwiGLU feed-forward of FLUX.2
    whose input layer is twice as wide as its output layer's input (FLUX.1's are equal).
    A LoRA on attention layers only, at FLUX.1's widths, stays FLUX.1 (as in InvokeAI).
    """
    if any(n in k or n.replace(".", "_") in k for k in sd for n in _FLUX2_NAMES):
        return True
    text = _lora_dim(sd, "txt_in", up=False) or _lora_dim(sd, "context_embedder", up=False)
    if text is not None:
        return text in _FLUX2_TEXT_WIDTHS
    vec = _lora_dim(sd, "vector_in.in_layer", up=False)
    if vec is not None:
        return vec in _FLUX2_VEC_WIDTHS
    for mlp_in, mlp_out in (("img_mlp.0", "img_mlp.2"), ("txt_mlp.0", "txt_mlp.2")):
        wide, narrow = _lora_dim(sd, mlp_in, up=True), _lora_dim(sd, mlp_out, up=False)
        if wide is not None and narrow is not None:
            return wide == 2 * narrow
    return False


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
