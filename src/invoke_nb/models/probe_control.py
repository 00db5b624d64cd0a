"""IP-Adapter folders in InvokeAI's layout: base from the weights, encoder from a text file.

InvokeAI stores an IP-Adapter as a folder holding ``ip_adapter.safetensors`` (or ``.bin``)
and ``image_encoder.txt``, whose one line names the CLIP vision encoder's source
(``InvokeAI/ip_adapter_sd_image_encoder``); the node finds the encoder by the last part of
that name. The probe keeps the line in the record's ``extra["image_encoder_model_id"]``.
"""

from __future__ import annotations

from pathlib import Path

from invoke_nb.models.probe import ProbeResult, _unknown, read_safetensors_header

__all__ = ["probe_ip_adapter_folder"]

_BASES = {768: "sd-1", 1024: "sd-2", 2048: "sdxl"}


def probe_ip_adapter_folder(folder: Path) -> ProbeResult:
    """Identify an InvokeAI-layout IP-Adapter folder."""
    weights = folder / "ip_adapter.safetensors"
    if not weights.is_file():
        return _unknown("IP-Adapter folder with a pickle ip_adapter.bin (not opened)", "invokeai")
    shapes, _ = read_safetensors_header(weights)
    width = shapes.get("ip_adapter.1.to_k_ip.weight", (0,))[-1]
    base = _BASES.get(width)
    if base is None:
        return _unknown(f"IP-Adapter: unrecognized cross-attention width {width}", "invokeai")
    extra = {}
    txt = folder / "image_encoder.txt"
    if txt.is_file():
        extra["image_encoder_model_id"] = txt.read_text(encoding="utf-8").strip()
    return ProbeResult("ip_adapter", base, "invokeai", extra=extra)
