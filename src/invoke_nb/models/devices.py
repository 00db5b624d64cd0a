"""Which device runs the models and in which precision: InvokeAI's rules, one override.

InvokeAI 6.x picks ``cuda``, then ``mps``, then ``cpu``; on CUDA and MPS it runs UNets, text
encoders and VAEs in float16 unless told otherwise (float32 on GTX 1650/1660 cards, whose
half precision is broken), and always float32 on the CPU, where half precision is slow.
A single setting (``precision``: ``auto``, ``float16``, ``bfloat16``, ``float32``, or the
short names ``fp16``/``bf16``/``fp32``) overrides the choice on every device, so the GPU's
dtype plumbing can be exercised on a CPU with ``bfloat16``.

torch is imported inside the functions: importing this module stays light.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEVICES",
    "PRECISIONS",
    "choose_device",
    "device_memory",
    "empty_cache",
    "enable_tf32",
    "normalize_precision",
    "precision_name",
    "resolve_dtype",
]

DEVICES = ("cuda", "mps", "cpu")
PRECISIONS = ("auto", "float16", "bfloat16", "float32")
_ALIASES = {"fp16": "float16", "half": "float16", "bf16": "bfloat16", "fp32": "float32"}
_HALF_BROKEN = ("GeForce GTX 1650", "GeForce GTX 1660")


def _torch() -> Any:
    return sys.modules.get("torch") or __import__("torch")


def normalize_precision(precision: str | None) -> str:
    """The canonical precision name; a clear error for anything else."""
    name = "auto" if precision is None else str(precision).lower()
    name = _ALIASES.get(name, name.removeprefix("torch."))
    if name not in PRECISIONS:
        raise ValueError(
            f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)} "
            f"(or {', '.join(_ALIASES)})"
        )
    return name


def choose_device(device: str | None = None) -> str:
    """``device`` checked (``cuda``, ``cuda:N``, ``mps``, ``cpu``), or the best one present."""
    torch = _torch()
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    kind = str(device).split(":", 1)[0]
    if kind not in DEVICES:
        raise ValueError(f"unknown device {device!r}; expected one of {', '.join(DEVICES)}")
    return str(device)


def resolve_dtype(device: str, precision: str | None = "auto") -> torch.dtype:
    """The dtype models run in on ``device`` for ``precision`` (InvokeAI's choice for auto)."""
    torch = _torch()
    name = normalize_precision(precision)
    kind = device.split(":", 1)[0]
    if name == "auto":
        name = "float32"
        if kind == "cuda" and torch.cuda.is_available():
            card = torch.cuda.get_device_name(torch.device(device))
            name = "float32" if any(c in card for c in _HALF_BROKEN) else "float16"
        elif kind == "mps":
            name = "float16"
    return getattr(torch, name)


def precision_name(dtype: Any) -> str:
    """``torch.bfloat16`` -> ``"bfloat16"`` (for metadata and stats)."""
    return str(dtype).removeprefix("torch.")


def enable_tf32() -> None:
    """Let float32 matmuls and convolutions use TF32 on Ampere+ GPUs (a no-op elsewhere)."""
    torch = _torch()
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


def device_memory(device: str) -> tuple[int, int] | None:
    """``(free, total)`` bytes on an accelerator, or ``None`` for the CPU."""
    torch = _torch()
    kind = device.split(":", 1)[0]
    if kind == "cuda" and torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info(torch.device(device))
        return int(free), int(total)
    if kind == "mps" and hasattr(torch, "mps"):
        total = int(torch.mps.recommended_max_memory())
        used = int(torch.mps.driver_allocated_memory())
        return max(total - used, 0), total
    return None


def empty_cache(device: str) -> None:
    """Give the allocator's unused blocks back to the device (after an offload)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return
    kind = device.split(":", 1)[0]
    if kind == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif kind == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()
