"""Identify Stable Diffusion 3 / 3.5 models (base ``sd-3``) from configs and tensor names.

A diffusers folder is SD3 when its ``model_index.json`` names ``StableDiffusion3Pipeline``
or its ``config.json`` names ``SD3Transformer2DModel`` (InvokeAI's rule); which parts the
folder holds is recorded, so a folder without ``text_encoder_3`` (T5) is known before a
node asks for it. A single file is SD3 when it holds MMDiT ``joint_blocks`` (InvokeAI 6.11
has no single-file SD3 config: we read Stability's SD3/SD3.5 files as ``checkpoint``).
Medium (MMDiT-X, a second attention in some blocks) and large are told apart for the
record's description only: InvokeAI gives SD3 main models no variant.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["SD3_PARTS", "probe_sd3_checkpoint", "probe_sd3_folder"]

SD3_PARTS = (
    "transformer",
    "vae",
    "scheduler",
    "text_encoder",
    "text_encoder_2",
    "text_encoder_3",
    "tokenizer",
    "tokenizer_2",
    "tokenizer_3",
)
_CLASSES = ("StableDiffusion3Pipeline", "StableDiffusion3Img2ImgPipeline", "SD3Transformer2DModel")


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def probe_sd3_folder(p: Path) -> Any | None:
    """A ``ProbeResult`` for an SD3 diffusers folder, or None when ``p`` is not one."""
    from invoke_nb.models.probe import ProbeResult

    index = _read(p / "model_index.json")
    config = _read(p / "config.json")
    cls = index.get("_class_name") or config.get("_class_name")
    if cls not in _CLASSES:
        return None
    if cls == "SD3Transformer2DModel":
        layers = config.get("dual_attention_layers") or []
        return ProbeResult(
            "main", "sd-3", "diffusers", extra={"layout": "medium" if layers else "large"}
        )
    present = [c for c in SD3_PARTS if (p / c).is_dir()]
    missing = [
        c for c in ("transformer", "vae", "text_encoder", "text_encoder_2") if c not in present
    ]
    tcfg = _read(p / "transformer" / "config.json")
    extra: dict[str, Any] = {
        "submodels": present,
        "layout": "medium" if tcfg.get("dual_attention_layers") else "large",
    }
    if missing:
        extra["missing_components"] = missing
    return ProbeResult("main", "sd-3", "diffusers", extra=extra)


def probe_sd3_checkpoint(sd: dict[str, tuple[int, ...]]) -> Any | None:
    """A ``ProbeResult`` for a single-file SD3/SD3.5 checkpoint (MMDiT keys), or None."""
    from invoke_nb.models.probe import ProbeResult

    prefixes = ("model.diffusion_model.joint_blocks.", "joint_blocks.")
    if not any(k.startswith(prefixes) for k in sd):
        return None
    encoders = [
        name
        for name in ("clip_l", "clip_g", "t5xxl")
        if any(k.startswith(f"text_encoders.{name}.") for k in sd)
    ]
    dual = any(".x_block.attn2." in k for k in sd)
    extra = {"encoders": encoders, "layout": "medium" if dual else "large"}
    return ProbeResult("main", "sd-3", "checkpoint", extra=extra)
