"""Loading image-to-image models (ESRGAN, Real-ESRGAN, SwinIR, ...) with ``spandrel``.

spandrel reads a state dict, recognises the architecture from its keys and shapes and
returns an ``ImageModelDescriptor`` (the network, its scale, dtype support). Files are
opened without running code: safetensors directly, pickle checkpoints (which the manager
installs only with ``allow_unsafe``) with torch's weights-only unpickler.

spandrel imports torchvision for two architectures (LaMa's rotation, RestoreFormer's
normalisation). Where torchvision is missing or does not match the installed torch (as with
the CPU-only torch of some machines), spandrel is imported with a stand-in for those two
torchvision functions, so every other architecture still loads; the stand-ins raise if one
of those two models actually calls them.
"""

from __future__ import annotations

import enum
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invoke_nb.models.errors import ModelLoadError

if TYPE_CHECKING:
    from invoke_nb.models.records import ModelRecord

__all__ = ["import_spandrel", "load_spandrel", "load_spandrel_state_dict"]


def _torchvision_stand_in() -> dict[str, types.ModuleType]:
    class InterpolationMode(enum.Enum):
        NEAREST = "nearest"
        BILINEAR = "bilinear"
        BICUBIC = "bicubic"

    def _missing(*_: Any, **__: Any) -> Any:
        raise ModelLoadError("this spandrel architecture needs a working torchvision")

    functional = types.ModuleType("torchvision.transforms.functional")
    functional.InterpolationMode = InterpolationMode  # type: ignore[attr-defined]
    functional.rotate = _missing  # type: ignore[attr-defined]
    functional.normalize = _missing  # type: ignore[attr-defined]
    transforms = types.ModuleType("torchvision.transforms")
    transforms.functional = functional  # type: ignore[attr-defined]
    root = types.ModuleType("torchvision")
    root.transforms = transforms  # type: ignore[attr-defined]
    return {
        "torchvision": root,
        "torchvision.transforms": transforms,
        "torchvision.transforms.functional": functional,
    }


def import_spandrel() -> types.ModuleType:
    """The ``spandrel`` module, imported without torchvision if need be (see above)."""
    if sys.modules.get("spandrel") is not None:
        return sys.modules["spandrel"]
    try:
        import spandrel

        return spandrel
    except ModuleNotFoundError as e:
        if e.name == "spandrel":
            raise ModelLoadError(
                "image-to-image models need the 'spandrel' package: pip install 'invoke-nb[upscale]'"
            ) from None
        if not (e.name or "").startswith("torchvision"):
            raise
    except (RuntimeError, OSError):  # a torchvision built for another torch
        pass
    for name in [m for m in sys.modules if m.split(".")[0] in ("spandrel", "torchvision")]:
        del sys.modules[name]
    stand_in = _torchvision_stand_in()
    sys.modules.update(stand_in)
    try:
        import spandrel
    finally:
        for name in stand_in:
            sys.modules.pop(name, None)
    return spandrel


def load_spandrel_state_dict(state_dict: dict[str, Any], label: str = "model") -> Any:
    """An ``ImageModelDescriptor`` for a state dict, in eval mode; other spandrel model
    kinds (inpainting, restoration with a mask) are refused."""
    spandrel = import_spandrel()
    try:
        model = spandrel.ModelLoader().load_from_state_dict(state_dict)
    except Exception as e:  # spandrel raises UnsupportedModelError and friends
        raise ModelLoadError(f"{label}: spandrel does not recognise it: {e}") from e
    if not isinstance(model, spandrel.ImageModelDescriptor):
        raise ModelLoadError(
            f"{label}: spandrel loaded a {type(model).__name__}; only image-to-image models "
            "(ImageModelDescriptor) are supported"
        )
    return model.eval()


def _read_weights(path: Path) -> dict[str, Any]:
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    sd = torch.load(str(path), map_location="cpu", weights_only=True)
    for key in ("params_ema", "params", "state_dict"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    return sd


def load_spandrel(record: ModelRecord, path: Path) -> Any:
    """Load an installed ``spandrel_image_to_image`` model (float32; the node picks the
    device)."""
    label = f"model {record.name!r} ({record.key}): {path}"
    try:
        sd = _read_weights(path)
    except Exception as e:
        raise ModelLoadError(f"{label}: cannot read weights: {e}") from e
    from invoke_nb.models.load_lama import is_lama, lama_from_state_dict

    if is_lama(sd):  # an inpainting net (infill_lama), of any width
        return lama_from_state_dict(sd, label)
    return load_spandrel_state_dict(sd, label)
