"""FLUX sampling arithmetic: noise, the shifted schedule, packing, position ids, CFG steps.

Two seeding conventions, as for SD:

``"invokeai"`` (default) follows InvokeAI 6.11.1 so its FLUX images re-generate: the noise is
  drawn on the CPU in float16 from ``torch.Generator("cpu").manual_seed(seed)`` in shape
  (1, 16, 2*ceil(h/16), 2*ceil(w/16)) and then cast; img2img starts exactly at
  ``t = 1 - denoising_start`` (the schedule's first step is replaced by that value).
  InvokeAI 6.11.1 runs torch 2.7, whose CPU float16 ``randn`` is its own algorithm (11-bit
  uniforms from the Mersenne Twister, Box-Muller in float16 arithmetic per 16 values); newer
  torch casts float32 draws instead. :func:`~invoke_nb.nodes.diffusion.torch27_noise.randn_float16_torch27` reproduces torch 2.7's, so the
  noise is InvokeAI 6.11.1's on any torch.
``"diffusers"`` follows diffusers' Flux pipelines: float32 noise from the same CPU
  generator; img2img/inpaint pipelines first draw the VAE's latent sample from it (so the
  noise is the second draw), and start at step ``int(n - n * strength)`` of the schedule.

The schedule is rectified flow's ``linspace(1, 0, n + 1)`` shifted by
``exp(mu) / (exp(mu) + 1/t - 1)`` with ``mu`` linear in the packed sequence length (0.5 at
256 tokens, 1.15 at 4096); schnell is not shifted.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = [
    "clip_schedule",
    "diffusers_img2img_schedule",
    "get_noise",
    "image_ids",
    "pack",
    "schedule",
    "step_cfg_scales",
    "unpack",
]


def noise_shape(width: int, height: int) -> tuple[int, int, int, int]:
    """Latent noise shape for an image size (a multiple of 2 so it packs into 2x2 patches)."""
    return (1, 16, 2 * math.ceil(height / 16), 2 * math.ceil(width / 16))


def get_noise(
    seed: int, width: int, height: int, seeding: str = "invokeai", draws_before: int = 0
) -> torch.Tensor:
    """The starting noise (float32, CPU) for ``seed`` under a seeding convention.

    ``draws_before`` same-shaped float32 draws are discarded first (diffusers' img2img
    pipelines sample the encoded image from the generator before drawing the noise).
    """
    import torch

    shape = noise_shape(width, height)
    if seeding == "invokeai":
        from invoke_nb.nodes.diffusion.torch27_noise import randn_float16_torch27

        return randn_float16_torch27(seed, shape).float()
    gen = torch.Generator("cpu").manual_seed(seed)
    for _ in range(draws_before):
        torch.randn(shape, generator=gen, dtype=torch.float32)
    return torch.randn(shape, generator=gen, dtype=torch.float32)


def schedule(steps: int, seq_len: int, shift: bool = True) -> list[float]:
    """``steps + 1`` times from 1 to 0, shifted toward 1 for longer sequences."""
    import torch

    ts = torch.linspace(1, 0, steps + 1)
    if shift:
        slope = (1.15 - 0.5) / (4096 - 256)
        mu = slope * seq_len + (0.5 - slope * 256)
        em = math.exp(mu)
        # t = 0 maps to 0 (1/t is inf); float32 arithmetic as torch does it
        ts = em / (em + (1 / ts - 1))
    return ts.tolist()


def _last_at_least(ts: list[float], value: float, eps: float = 1e-6) -> int:
    return sum(1 for t in ts if t >= value - eps) - 1


def clip_schedule(ts: list[float], start: float, end: float) -> list[float]:
    """The part of ``ts`` between ``1 - start`` and ``1 - end``, both ends exact."""
    t0, t1 = 1.0 - start, 1.0 - end
    out = ts[_last_at_least(ts, t0) : _last_at_least(ts, t1) + 1]
    out[0] = t0
    if out[-1] > t1 + 1e-6:
        out.append(t1)
    return out


def diffusers_img2img_schedule(ts: list[float], strength: float, end: float) -> list[float]:
    """diffusers' img2img rule: skip ``int(n - n * strength)`` whole steps (end as InvokeAI)."""
    n = len(ts) - 1
    init = min(n * strength, n)
    first = int(max(n - init, 0))
    out = ts[first:]
    if end < 1.0:
        t1 = 1.0 - end
        out = out[: _last_at_least(out, t1) + 1]
        if out[-1] > t1 + 1e-6:
            out.append(t1)
    return out


def pack(x: torch.Tensor) -> torch.Tensor:
    """(b, c, h, w) latents -> (b, h/2 * w/2, c*4) tokens of 2x2 patches."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, (h // 2) * (w // 2), c * 4)


def unpack(x: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Tokens back to (b, c, h, w) latents for an image of ``width`` x ``height``."""
    b, _n, d = x.shape
    h, w = math.ceil(height / 16), math.ceil(width / 16)
    c = d // 4
    x = x.reshape(b, h, w, c, 2, 2).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(b, c, h * 2, w * 2)


def image_ids(latent_h: int, latent_w: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(h/2 * w/2, 3) position ids: 0, patch row, patch column."""
    import torch

    ids = torch.zeros(latent_h // 2, latent_w // 2, 3, device=device)
    ids[..., 1] = torch.arange(latent_h // 2, device=device)[:, None]
    ids[..., 2] = torch.arange(latent_w // 2, device=device)[None, :]
    return ids.reshape(-1, 3)


def step_cfg_scales(cfg: float | list[float], steps: int, start: int, end: int) -> list[float]:
    """Per-step CFG scale: ``cfg`` from step ``start`` to ``end`` (negative counts from the
    end), 1.0 (no CFG) elsewhere. Raises ValueError naming the bad field."""
    scales = list(cfg) if isinstance(cfg, list) else [float(cfg)] * steps
    if len(scales) != steps:
        raise ValueError(f"cfg_scale: {len(scales)} values for {steps} steps")
    first = start + steps if start < 0 else start
    last = end + steps if end < 0 else end
    if not 0 <= first < steps:
        raise ValueError(f"cfg_scale_start_step: {start} is outside the {steps} steps")
    if not 0 <= last < steps:
        raise ValueError(f"cfg_scale_end_step: {end} is outside the {steps} steps")
    if first > last:
        raise ValueError(
            f"cfg_scale_start_step ({start}) must come before cfg_scale_end_step ({end})"
        )
    return [scales[i] if first <= i <= last else 1.0 for i in range(steps)]
