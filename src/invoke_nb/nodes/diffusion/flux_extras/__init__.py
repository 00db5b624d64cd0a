"""FLUX.1's extras: Fill, Kontext, ControlNet, Redux and the control-LoRA loader.

Each node here only packages its inputs (as InvokeAI's do); ``flux_denoise`` reads them.
"""

from invoke_nb.nodes.diffusion.flux_extras import control_lora, controlnet, fill, kontext, redux

__all__ = ["control_lora", "controlnet", "fill", "kontext", "redux"]
