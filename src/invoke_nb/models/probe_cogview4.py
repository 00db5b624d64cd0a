"""CogView4 identification: a diffusers folder whose ``model_index.json`` names
``CogView4Pipeline`` is a main model of base ``cogview4``, format ``diffusers``.

InvokeAI 6.11 knows CogView4 only as such a folder (no single-file or GGUF form), decides
on the pipeline class name alone and records no variant; we do the same.
"""

from __future__ import annotations

from pathlib import Path

from invoke_nb.models.probe import ProbeResult

__all__ = ["BASE", "probe_cogview4_folder"]

BASE = "cogview4"
PIPELINES = {"CogView4Pipeline"}
PARTS = ("transformer", "text_encoder", "tokenizer", "vae")


def probe_cogview4_folder(folder: Path, pipeline_class: str | None) -> ProbeResult | None:
    """The record fields for a CogView4 pipeline folder, or ``None`` if it is not one."""
    if pipeline_class not in PIPELINES:
        return None
    missing = [c for c in PARTS if not (folder / c).is_dir()]
    extra = {"missing_components": missing} if missing else {}
    return ProbeResult("main", BASE, "diffusers", extra=extra)
