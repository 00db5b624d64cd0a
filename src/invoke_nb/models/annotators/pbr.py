"""PBR material-map networks (``InvokeAI/pbr-material-maps``): 1x ESRGAN (RRDB) models in
the old ESRGAN key layout, which spandrel recognises and builds."""

from __future__ import annotations

from typing import Any

__all__ = ["from_state_dict"]


def from_state_dict(sd: dict[str, Any]) -> Any:
    """The RRDB network; anything but a 1x, 3-channel ESRGAN is refused."""
    from invoke_nb.models.load_spandrel import import_spandrel

    import_spandrel()
    import spandrel

    desc = spandrel.ModelLoader().load_from_state_dict(sd)
    if desc.architecture.name != "ESRGAN" or desc.scale != 1 or desc.input_channels != 3:
        raise ValueError(
            f"expected a 1x ESRGAN with 3 input channels, got {desc.architecture.name} "
            f"x{desc.scale} with {desc.input_channels}"
        )
    return desc.model
