"""Tiles, upscaling and infill nodes with InvokeAI 6.11.1's ids."""

from invoke_nb.nodes.upscale import infill, multidiffusion, spandrel, tiles

__all__ = ["infill", "multidiffusion", "spandrel", "tiles"]
