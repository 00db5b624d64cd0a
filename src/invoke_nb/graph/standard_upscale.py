"""The upscale graph behind ``studio.upscale``: one ``spandrel_image_to_image_autoscale``
node (the model runs as many times as needed, then the result is resized to the scale),
as InvokeAI's upscaling tab does before its optional diffusion pass."""

from __future__ import annotations

from typing import Any

from invoke_nb.graph.model import Graph

__all__ = ["UPSCALE_OUTPUT", "upscale"]

UPSCALE_OUTPUT = "upscale"


def upscale(model: Any, image: Any, *, scale: float = 4.0, tile_size: int = 512) -> Graph:
    """A graph upscaling ``image`` (a PIL image or image field) ``scale`` times with the
    image-to-image ``model`` (an identifier)."""
    g = Graph()
    g.add(
        "spandrel_image_to_image_autoscale",
        id=UPSCALE_OUTPUT,
        image=image,
        image_to_image_model=model,
        scale=scale,
        tile_size=tile_size,
        is_intermediate=False,
    )
    return g
