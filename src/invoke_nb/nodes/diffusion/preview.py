"""Cheap latent -> RGB previews for progress events (no VAE: one 4x3 linear map per family).

The factors are the widely published least-squares fits of each family's latent channels to
RGB; a preview of a 64x64 latent costs microseconds, so every step can show one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
from PIL import Image

__all__ = ["latents_preview"]

_SD1 = (
    [
        [0.3444, 0.1385, 0.0670],
        [0.1247, 0.4027, 0.1494],
        [-0.3192, 0.2513, 0.2103],
        [-0.1307, -0.1874, -0.7445],
    ],
    [0.0, 0.0, 0.0],
)
_SDXL = (
    [
        [0.3651, 0.4232, 0.4341],
        [-0.2533, -0.0042, 0.1068],
        [0.1076, 0.1111, -0.0362],
        [-0.3165, -0.2492, -0.2188],
    ],
    [0.1084, -0.0175, -0.0011],
)
_FACTORS = {"sd-1": _SD1, "sd-2": _SD1, "sdxl": _SDXL, "sdxl-refiner": _SDXL}


def latents_preview(latents: torch.Tensor, base: str = "sd-1") -> Image.Image:
    """An RGB image (latent size, i.e. 1/8 of the output) from the first latent of a batch."""
    import torch

    weights, bias = _FACTORS.get(base, _SD1)
    w = torch.tensor(weights, dtype=torch.float32)
    b = torch.tensor(bias, dtype=torch.float32)
    lat = latents[0].detach().to("cpu", torch.float32)  # (4, h, w)
    rgb = torch.einsum("chw,cr->hwr", lat, w) + b
    rgb = ((rgb + 1.0) * 127.5).clamp(0, 255).to(torch.uint8).numpy()
    return Image.fromarray(rgb, mode="RGB")
