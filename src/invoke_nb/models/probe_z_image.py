"""Z-Image identification, with InvokeAI 6.11's names.

- a folder whose ``model_index.json`` names ``ZImagePipeline``: main / ``z-image`` /
  ``diffusers``;
- a single file holding the S3-DiT transformer (``cap_embedder``, ``context_refiner`` or
  ``cap_pad_token`` keys, no LoRA suffixes): main / ``z-image`` / ``checkpoint``;
- a LoRA on ``diffusion_model.layers.`` / ``transformer.layers.``: lora / ``z-image`` /
  ``lycoris`` (InvokeAI's LyCORIS-or-PEFT single-file config);
- a Qwen3 text-encoder folder: ``qwen3_encoder`` / ``any`` / ``qwen3_encoder``;
- a GGUF file holding that transformer: main / ``z-image`` / ``gguf_quantized``;
- a Z-Image ControlNet (``control_all_x_embedder`` keys; VideoX-Fun's layout):
  controlnet / ``z-image`` / ``checkpoint``, or a ``ZImageControlNetModel`` folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from invoke_nb.models.probe import ProbeResult, Shapes

__all__ = ["BASE", "probe_z_image_folder", "probe_z_image_gguf", "probe_z_image_state_dict"]

BASE = "z-image"
PARTS = ("transformer", "text_encoder", "tokenizer", "vae")
_MARKERS = ("cap_embedder", "context_refiner", "cap_pad_token")
_LORA_SUFFIXES = (
    ".lora_down.weight",
    ".lora_up.weight",
    ".lora_A.weight",
    ".lora_B.weight",
    ".dora_scale",
)
_LORA_PREFIXES = (
    "diffusion_model.layers.",
    "transformer.layers.",
    "base_model.model.transformer.layers.",
)


def probe_z_image_state_dict(sd: Shapes) -> ProbeResult | None:
    """Z-Image transformer checkpoints and LoRAs, from tensor names only."""
    keys = list(sd)
    if any(k.startswith("control_all_x_embedder.") for k in keys):
        return ProbeResult("controlnet", BASE, "checkpoint")
    lora = any(k.endswith(_LORA_SUFFIXES) for k in keys)
    if lora and any(k.startswith(_LORA_PREFIXES) for k in keys):
        return ProbeResult("lora", BASE, "lycoris")
    if not lora:
        stripped = (
            k.removeprefix("model.diffusion_model.").removeprefix("diffusion_model.") for k in keys
        )
        if any(k.startswith(_MARKERS) for k in stripped):
            return ProbeResult("main", BASE, "checkpoint")
    return None


def probe_z_image_gguf(path: Path) -> ProbeResult | None:
    """A GGUF-quantized Z-Image transformer (InvokeAI: main / z-image / gguf_quantized)."""
    from invoke_nb.models.probe_flux import gguf_shapes

    found = probe_z_image_state_dict(gguf_shapes(path))
    if found is None or found.type != "main":
        return None
    return ProbeResult("main", BASE, "gguf_quantized")


def probe_z_image_folder(
    folder: Path, pipeline_class: str | None, config: dict[str, Any] | None
) -> ProbeResult | None:
    """A Z-Image pipeline folder or a standalone Qwen3 encoder folder, else ``None``."""
    if pipeline_class == "ZImagePipeline":
        missing = [c for c in PARTS if not (folder / c).is_dir()]
        extra = {"missing_components": missing} if missing else {}
        return ProbeResult("main", BASE, "diffusers", extra=extra)
    if (config or {}).get("_class_name") == "ZImageControlNetModel":
        return ProbeResult("controlnet", BASE, "diffusers")
    archs = (config or {}).get("architectures") or []
    if pipeline_class is None and archs and archs[0] in ("Qwen3Model", "Qwen3ForCausalLM"):
        return ProbeResult("qwen3_encoder", "any", "qwen3_encoder")
    return None
