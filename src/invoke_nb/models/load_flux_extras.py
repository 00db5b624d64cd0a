"""Load FLUX.1's extra models: ControlNets (diffusers/InstantX folders), the Redux
projector (BFL's file) and its SigLIP image encoder (a transformers folder, with processor).

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
    return (record.base == "flux" and record.type in ("controlnet", "flux_redux")) or (
        record.type == "siglip"
    )


def load_flux_extra(record: ModelRecord, submodel: str | None, dtype: torch.dtype) -> Any:
    """The loaded model of ``record`` (a ControlNet has no submodels)."""
    path = Path(record.path).expanduser()
    where = f"model {record.name!r} ({record.key}): {path}"
    try:
        if record.type == "siglip":
            from transformers import SiglipImageProcessor, SiglipVisionModel

            model = SiglipVisionModel.from_pretrained(path, local_files_only=True, dtype=dtype)
            return model.eval(), SiglipImageProcessor.from_pretrained(path, local_files_only=True)
        if record.type == "flux_redux":
            return _redux(path, dtype)
    except Exception as exc:
        raise ModelLoadError(f"{where}: cannot load the {record.type} model: {exc}") from exc
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


def _redux(path: Path, dtype: torch.dtype) -> Any:
    """BFL's Redux projector file as diffusers' ``ReduxImageEncoder`` (same tensor names)."""
    from diffusers.pipelines.flux.modeling_flux import ReduxImageEncoder
    from safetensors.torch import load_file

    file = path if path.is_file() else next(iter(sorted(path.glob("*.safetensors"))))
    sd = load_file(str(file))
    up, down = sd["redux_up.weight"], sd["redux_down.weight"]
    model = ReduxImageEncoder(redux_dim=up.shape[1], txt_in_features=down.shape[0])
    model.load_state_dict(sd)
    return model.to(dtype).eval()
