"""FLUX.1's extras: Fill, Kontext (and the conditioning nodes of the other extras).

Each node here only packages its inputs (as InvokeAI's do); ``flux_denoise`` reads them.
"""

from invoke_nb.nodes.diffusion.flux_extras import controlnet, fill, kontext, redux

__all__ = ["controlnet", "fill", "kontext", "redux"]
