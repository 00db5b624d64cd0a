"""Rectified-flow sampling pieces for SD3: noise, timestep schedules, inpaint blending.

Two conventions, picked by ``seeding``:

``"invokeai"`` (default) is InvokeAI 6.11's SD3 sampler, so its images re-generate: noise is
  ``randn`` in float16 on the CPU from ``Generator("cpu").manual_seed(seed)`` as torch 2.7
  (InvokeAI's) draws it, then cast;
  the schedule is ``linspace(1, 0, steps + 1)`` (no shift), cut to
  [denoising_start, denoising_end] with the cut points inserted exactly; each step is an
  Euler step in float32.
``"diffusers"`` is ``StableDiffusion3Pipeline``/``Img2ImgPipeline``: noise is ``randn`` in
  the model's dtype from the same CPU generator, the schedule and steps are the model's
  ``FlowMatchEulerDiscreteScheduler`` (shift 3), img2img starts at diffusers' strength
  index, and latents live in diffusers' space (``(z - shift_factor) * scaling_factor``).
  InvokeAI's VAE nodes use ``z * scaling_factor`` (no shift), so the denoiser converts at
  its edges and ``sd3_l2i``/``sd3_i2l`` stay InvokeAI's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = [
    "clip_schedule",
    "diffusers_noise",
    "diffusers_start_index",
    "invokeai_noise",
    "merge_inpaint",
]

LATENT_SCALE = 8


def invokeai_noise(seed: int, channels: int, height: int, width: int) -> torch.Tensor:
    """InvokeAI's SD3 noise: float16 on the CPU from ``seed`` with torch 2.7's algorithm
    (the torch InvokeAI 6.11 runs on; see :mod:`invoke_nb.nodes.diffusion.torch27_noise`),
    cast by the caller."""
    from invoke_nb.nodes.diffusion.torch27_noise import randn_float16_torch27

    shape = (1, channels, height // LATENT_SCALE, width // LATENT_SCALE)
    return randn_float16_torch27(seed, shape)


def diffusers_noise(seed: int, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """diffusers' ``randn_tensor`` with a CPU generator: drawn on the CPU in ``dtype``."""
    import torch

    return torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed), dtype=dtype)


def clip_schedule(steps: int, start: float, end: float) -> list[float]:
    """``linspace(1, 0, steps + 1)`` cut to [1 - start, 1 - end], the cut points inserted."""
    import torch

    ts: list[float] = torch.linspace(1, 0, steps + 1).tolist()
    eps = 1e-6

    def last_at_least(v: float) -> int:
        return sum(1 for t in ts if t >= v - eps) - 1

    hi, lo = 1.0 - start, 1.0 - end
    cut = ts[last_at_least(hi) : last_at_least(lo) + 1]
    cut[0] = hi
    if cut[-1] > lo + eps:
        cut.append(lo)
    return cut


def diffusers_start_index(steps: int, denoising_start: float) -> int:
    """The Img2Img pipeline's first step for ``strength = 1 - denoising_start``."""
    init = min(steps * (1.0 - denoising_start), steps)
    return int(max(steps - init, 0))


def merge_inpaint(
    latents: torch.Tensor,
    init: torch.Tensor,
    noise: torch.Tensor,
    repaint: torch.Tensor,
    t_prev: float,
) -> torch.Tensor:
    """Keep the unmasked area on the noised-input trajectory at ``t_prev`` (rectified flow).

    ``repaint`` is 1 where the image is regenerated; a gradient mask repaints an element
    once ``t_prev`` falls below its value (InvokeAI's rule).
    """
    import torch

    mask = torch.where(repaint >= t_prev + 1e-4, 1.0, 0.0).to(repaint.dtype)
    noised = noise * t_prev + (1.0 - t_prev) * init
    return latents * mask + noised * (1.0 - mask)


def flow_scheduler(config: dict[str, Any], steps: int, seq_len: int, device: Any) -> Any:
    """The model's FlowMatchEulerDiscreteScheduler set for ``steps`` as the pipeline sets it."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    sched = FlowMatchEulerDiscreteScheduler.from_config(config)
    kwargs: dict[str, Any] = {}
    if sched.config.get("use_dynamic_shifting"):
        from diffusers.pipelines.stable_diffusion_3.pipeline_stable_diffusion_3 import (
            calculate_shift,
        )

        c = sched.config
        kwargs["mu"] = calculate_shift(
            seq_len,
            c.get("base_image_seq_len", 256),
            c.get("max_image_seq_len", 4096),
            c.get("base_shift", 0.5),
            c.get("max_shift", 1.16),
        )
    sched.set_timesteps(steps, device=device, **kwargs)
    return sched
