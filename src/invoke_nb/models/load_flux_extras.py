"""Load FLUX.1's extra models: ControlNets (diffusers/InstantX folders).

XLabs ControlNets are identified (their own layout: an input-hint conv stack and double
blocks only) but not loadable yet; the error says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from invoke_nb.models.errors import ModelLoadError
from invoke_nb.models.records import ModelRecord

__all__ = ["handles", "load_flux_extra"]


def handles(record: ModelRecord) -> bool:
    """Whether this module loads ``record``."""
    return record.base == "flux" and record.type == "controlnet"


def load_flux_extra(record: ModelRecord, submodel: str | None, dtype: torch.dtype) -> Any:
    """The loaded model of ``record`` (a ControlNet has no submodels)."""
    path = Path(record.path).expanduser()
    where = f"model {record.name!r} ({record.key}): {path}"
    if submodel not in (None, "controlnet"):
        raise ModelLoadError(f"{where}: a ControlNet has no submodel {submodel!r}")
    if not path.is_dir():
        raise ModelLoadError(
            f"{where}: single-file FLUX ControlNets ({record.format}) are not loadable yet; "
            "install the diffusers folder"
        )
    try:
        from diffusers import FluxControlNetModel

        return FluxControlNetModel.from_pretrained(
            path, local_files_only=True, torch_dtype=dtype
        ).eval()
    except Exception as exc:
        raise ModelLoadError(f"{where}: cannot load the ControlNet: {exc}") from exc
