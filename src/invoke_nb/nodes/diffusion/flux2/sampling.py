"""FLUX.2 latent arithmetic: noise, 2x2 packing, position ids, the sigma schedule.

FLUX.2 latents have 32 channels at 1/8 of the image size; the transformer sees them as
2x2 patches (128 channels per token), normalized by the VAE's batch-norm statistics.
Two seeding conventions give the starting noise:

- ``invokeai`` (default): InvokeAI 6.11.1's rule, a float16 draw on the CPU of shape
  (1, 32, 2*ceil(h/16), 2*ceil(w/16)) from ``torch.Generator().manual_seed(seed)``, cast,
  then packed; the sigma schedule is shifted with a fixed mu of 2.02. The float16 draw is
  torch 2.7's (InvokeAI 6.11.1's torch; newer torch draws other values), reproduced by
  ``torch27_noise.randn_float16_torch27`` on any torch.
- ``diffusers``: diffusers' Klein pipeline, a float32 draw of the packed shape
  (1, 128, h/16, w/16) with the same generator, and its empirical mu from the image
  token count and the step count.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = [
    "INVOKEAI_MU",
    "clip_schedule",
    "diffusers_mu",
    "image_ids",
    "linear_sigmas",
    "noise",
    "pack",
    "text_ids",
    "unpack",
]

INVOKEAI_MU = 2.02
"""InvokeAI's fixed schedule shift for FLUX.2 (diffusers computes one per size and steps)."""


def latent_size(height: int, width: int) -> tuple[int, int]:
    """Unpacked latent (h, w) for an image size (even, so 2x2 patches tile it)."""
    return 2 * math.ceil(height / 16), 2 * math.ceil(width / 16)


def noise(seed: int, height: int, width: int, seeding: str) -> torch.Tensor:
    """Packed starting noise (1, tokens, 128), float32 on the CPU, for one seeding rule."""
    import torch

    gen = torch.Generator("cpu").manual_seed(seed)
    if seeding == "diffusers":
        shape = (1, 128, height // 16, width // 16)
        x = torch.randn(shape, generator=gen, dtype=torch.float32)
        return x.reshape(1, 128, -1).permute(0, 2, 1)
    from invoke_nb.nodes.diffusion.torch27_noise import randn_float16_torch27

    h, w = latent_size(height, width)
    return pack(randn_float16_torch27(seed, (1, 32, h, w)).float())


def pack(x: torch.Tensor) -> torch.Tensor:
    """(b, 32, h, w) -> (b, h/2 * w/2, 128): 2x2 patches into channels, channel-major."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, (h // 2) * (w // 2), c * 4)


def unpack(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The inverse of :func:`pack` for an image of ``height`` x ``width`` pixels."""
    h, w = latent_size(height, width)
    b, _, ch = x.shape
    x = x.reshape(b, h // 2, w // 2, ch // 4, 2, 2).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(b, ch // 4, h, w)


def image_ids(height: int, width: int, device: torch.device | str) -> torch.Tensor:
    """Token positions (1, tokens, 4) as (t, row, col, layer), int64."""
    import torch

    h, w = latent_size(height, width)
    ids = torch.zeros(h // 2, w // 2, 4, dtype=torch.long, device=device)
    ids[..., 1] = torch.arange(h // 2, device=device)[:, None]
    ids[..., 2] = torch.arange(w // 2, device=device)[None, :]
    return ids.reshape(1, -1, 4)


def text_ids(length: int, device: torch.device | str) -> torch.Tensor:
    """Text token positions (1, length, 4): only the last coordinate counts up."""
    import torch

    ids = torch.zeros(1, length, 4, dtype=torch.long, device=device)
    ids[..., 3] = torch.arange(length, device=device)
    return ids


def linear_sigmas(steps: int) -> list[float]:
    """Klein's unshifted schedule: ``steps`` sigmas from 1 to 1/steps, then 0."""
    import numpy as np

    return [float(s) for s in np.linspace(1.0, 1.0 / steps, steps)] + [0.0]


def diffusers_mu(image_seq_len: int, steps: int) -> float:
    """diffusers' empirical FLUX.2 shift (a fit over token count and step count)."""
    a1, b1 = 8.73809524e-05, 1.89833333
    a2, b2 = 0.00016927, 0.45666666
    if image_seq_len > 4300:
        return float(a2 * image_seq_len + b2)
    m_200 = a2 * image_seq_len + b2
    m_10 = a1 * image_seq_len + b1
    a = (m_200 - m_10) / 190.0
    return float(a * steps + (m_200 - 200.0 * a))


def clip_schedule(sigmas: list[float], start: float, end: float) -> list[float]:
    """Keep the part of a 1 -> 0 schedule between fractions ``start`` and ``end`` of the
    run, with exact end points inserted (InvokeAI's fractional clipping)."""
    eps = 1e-6
    t_start, t_end = 1.0 - start, 1.0 - end

    def last_at_least(v: float) -> int:
        return sum(1 for s in sigmas if s >= v - eps) - 1

    out = sigmas[last_at_least(t_start) : last_at_least(t_end) + 1]
    out[0] = t_start
    if out[-1] > t_end + eps:
        out.append(t_end)
    return out
