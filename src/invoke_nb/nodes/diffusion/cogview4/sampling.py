"""CogView4's flow-matching schedule and starting noise, two ways.

``"invokeai"`` (default), InvokeAI 6.11's rule: noise is ``randn`` in float16 on the CPU
from ``manual_seed(seed)``, then cast, as torch 2.7 (InvokeAI 6.11.1's) draws it (FLUX's
:func:`~invoke_nb.nodes.diffusion.torch27_noise.randn_float16_torch27`; newer torch differs); the schedule is ``linspace(1, 0, steps + 1)`` cut
to [1 - denoising_start, 1 - denoising_end] (the cut points inserted exactly), each ``t``
mapped to ``sigma = mu / (mu + (1/t - 1))`` with ``mu = sqrt(seq_len / 256) * 0.75 + 0.25``
(``seq_len`` = latent patches); the transformer sees the unshifted ``1000 * t``.

``"diffusers"``, ``CogView4Pipeline``'s: float32 CPU noise from the same seed, integer
timesteps ``linspace(1000, 1, steps)`` turned into sigmas and shifted by diffusers'
``FlowMatchEulerDiscreteScheduler`` (from the model's scheduler config).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = [
    "clip_schedule",
    "diffusers_schedule",
    "invokeai_schedule",
    "make_noise",
    "shift_mu",
]


def make_noise(seed: int, channels: int, height: int, width: int, seeding: str) -> torch.Tensor:
    """Starting noise (1, channels, height/8, width/8), float32 on the CPU."""
    import torch

    shape = (1, channels, height // 8, width // 8)
    if seeding == "invokeai":
        from invoke_nb.nodes.diffusion.torch27_noise import randn_float16_torch27

        return randn_float16_torch27(seed, shape).float()
    gen = torch.Generator("cpu").manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=torch.float32)


def shift_mu(
    seq_len: int, base_seq_len: int = 256, base_shift: float = 0.25, max_shift: float = 0.75
) -> float:
    """CogView4's resolution-dependent shift (linear in the square root of the length)."""
    return (seq_len / base_seq_len) ** 0.5 * max_shift + base_shift


def clip_schedule(timesteps: list[float], start: float, end: float) -> list[float]:
    """``timesteps`` (1 -> 0) limited to [1 - start, 1 - end], both ends present exactly."""
    if not 0.0 <= start <= end <= 1.0:
        raise ValueError(f"need 0 <= denoising_start <= denoising_end <= 1, got {start}, {end}")
    eps = 1e-6
    hi, lo = 1.0 - start, 1.0 - end
    first = sum(1 for t in timesteps if t >= hi - eps) - 1
    last = sum(1 for t in timesteps if t >= lo - eps) - 1
    kept = list(timesteps[first : last + 1])
    kept[0] = hi
    if kept[-1] > lo + eps:
        kept.append(lo)
    return kept


def invokeai_schedule(
    steps: int, start: float, end: float, seq_len: int
) -> tuple[list[float], list[float]]:
    """(timesteps in [0, 1], sigmas) under InvokeAI's rule; one more entry than steps run."""
    import torch

    ts = clip_schedule(torch.linspace(1, 0, steps + 1).tolist(), start, end)
    mu = shift_mu(seq_len)
    t = torch.tensor(ts)
    sigmas = (mu / (mu + (1 / t - 1) ** 1.0)).tolist()
    return ts, sigmas


def diffusers_schedule(
    scheduler_config: dict[str, Any], steps: int, seq_len: int
) -> tuple[Any, torch.Tensor]:
    """The pipeline's scheduler, set for ``steps``, and its timesteps."""
    import numpy as np
    from diffusers import FlowMatchEulerDiscreteScheduler

    sched = FlowMatchEulerDiscreteScheduler.from_config(scheduler_config)
    n_train = sched.config.num_train_timesteps
    ts = np.linspace(n_train, 1.0, steps).astype(np.int64).astype(np.float32)
    mu = shift_mu(
        seq_len,
        sched.config.get("base_image_seq_len", 256),
        sched.config.get("base_shift", 0.25),
        sched.config.get("max_shift", 0.75),
    )
    sched.set_timesteps(timesteps=ts, sigmas=ts / n_train, device="cpu", mu=mu)
    return sched, sched.timesteps
