"""FLUX.1's extras: Fill, Kontext, ControlNet, Redux, the control-LoRA loader and the
XLabs IP-Adapter.

Each node here only packages its inputs (as InvokeAI's do); ``flux_denoise`` reads them.
"""

from invoke_nb.nodes.diffusion.flux_extras import (
    control_lora,
    controlnet,
    fill,
    ip_adapter,
    kontext,
    redux,
)

__all__ = ["control_lora", "controlnet", "fill", "ip_adapter", "kontext", "redux"]
