"""Load control models: ControlNets, T2I-Adapters, IP-Adapters and CLIP vision encoders.

ControlNets and T2I-Adapters are diffusers folders (or, for ControlNets, single files in LDM
or diffusers key names: :mod:`invoke_nb.models.load_controlnet_file`); CLIP vision encoders
are transformers folders; an IP-Adapter is its state dict split as h94's files are (``{"image_proj": ..., "ip_adapter": ...}``), which
the denoise node turns into attention processors on the UNet for one run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from invoke_nb.models.records import ModelRecord

__all__ = ["CONTROL_TYPES", "ClipVision", "load_control"]

CONTROL_TYPES = ("controlnet", "t2i_adapter", "ip_adapter", "clip_vision")


@dataclass
class ClipVision:
    """A CLIP vision encoder with the image processor saved beside it."""

    model: Any
    processor: Any

    def parameters(self) -> Any:  # the cache sizes and moves models by their parameters
        return self.model.parameters()

    def to(self, *args: Any, **kwargs: Any) -> ClipVision:
        self.model.to(*args, **kwargs)
        return self


def load_control(record: ModelRecord, path: Path, dtype: torch.dtype) -> Any:
    """The loaded model of a control ``record`` (type in :data:`CONTROL_TYPES`)."""
    kind = record.type
    if kind == "controlnet":
        from diffusers import ControlNetModel

        if path.is_dir():
            return ControlNetModel.from_pretrained(
                path, local_files_only=True, torch_dtype=dtype
            ).eval()
        from invoke_nb.models.load_controlnet_file import load_controlnet_file

        return load_controlnet_file(record, path, dtype)
    if kind == "t2i_adapter":
        from diffusers import T2IAdapter

        return T2IAdapter.from_pretrained(path, local_files_only=True, torch_dtype=dtype).eval()
    if kind == "clip_vision":
        from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

        model = CLIPVisionModelWithProjection.from_pretrained(
            path, local_files_only=True, dtype=dtype
        ).eval()
        try:
            processor = CLIPImageProcessor.from_pretrained(path, local_files_only=True)
        except OSError:  # InvokeAI's encoder folders carry no processor: CLIP's defaults
            processor = CLIPImageProcessor()
        return ClipVision(model, processor)
    return load_ip_adapter_state(path, dtype)


def ip_adapter_file(path: Path) -> Path:
    """The weights file of an IP-Adapter (InvokeAI's folder or a single file)."""
    if path.is_file():
        return path
    for name in ("ip_adapter.safetensors", "ip_adapter.bin"):
        if (path / name).is_file():
            return path / name
    raise FileNotFoundError(f"{path}: no ip_adapter.safetensors in the IP-Adapter folder")


def load_ip_adapter_state(path: Path, dtype: torch.dtype) -> dict[str, dict[str, Any]]:
    """``{"image_proj": {...}, "ip_adapter": {...}}`` from a safetensors IP-Adapter."""
    from safetensors.torch import load_file

    file = ip_adapter_file(path)
    if file.suffix != ".safetensors":
        raise ValueError(f"{file}: only .safetensors IP-Adapters are loaded (pickle refused)")
    out: dict[str, dict[str, Any]] = {"image_proj": {}, "ip_adapter": {}}
    for key, value in load_file(str(file)).items():
        head, _, rest = key.partition(".")
        if head in out:
            out[head][rest] = value.to(dtype)
    if not out["image_proj"] or not out["ip_adapter"]:
        raise ValueError(f"{file}: not an IP-Adapter (no image_proj.* / ip_adapter.* tensors)")
    return out
