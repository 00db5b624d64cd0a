"""Diffusion nodes, one sub-package per model family, and the pieces every family shares.

Shared here: schedulers (``schedulers``, ``er_sde``), devices and precision (``devices``),
step previews (``preview``), model/LoRA field types (``fields``) and LoRA patching
(``lora``). Each family lives in its own folder (``sd`` for SD1/SD2/SDXL; FLUX, SD3,
CogView4, Z-Image beside it) and registers its nodes when imported. Importing this package
imports every family folder, so a new family is a new folder and nothing else.
"""

import importlib
import pkgutil

from invoke_nb.nodes.diffusion.fields import CLIPField, LoRAField, UNetField, VAEField
from invoke_nb.nodes.diffusion.schedulers import SCHEDULER_NAMES

FAMILIES: list[str] = sorted(
    m.name for m in pkgutil.iter_modules(__path__) if m.ispkg and not m.name.startswith("_")
)
"""Family sub-packages found beside this file (``sd`` first by name is not assumed)."""

for _family in FAMILIES:
    importlib.import_module(f"{__name__}.{_family}")

__all__ = [
    "FAMILIES",
    "SCHEDULER_NAMES",
    "CLIPField",
    "LoRAField",
    "UNetField",
    "VAEField",
]
