"""The denoising loop shared by ``denoise_latents``: timesteps, noise, CFG, inpaint masking.

Written on diffusers' UNet2DConditionModel and scheduler API. Two seeding conventions:

``"invokeai"`` (default) follows InvokeAI 6.x so its images re-generate pixel for pixel:
  txt2img starts from ``scheduler.add_noise(zeros, noise, first_timestep)``; schedulers whose
  ``step`` takes a generator get ``torch.Generator(device).manual_seed(seed ^ 0xFFFFFFFF)`` on
  the UNet's device;
  DPM++ SDE schedulers get ``noise_sampler_seed = seed`` (see ``schedulers.py``).
``"diffusers"`` follows diffusers' pipelines: txt2img starts from ``noise * init_noise_sigma``
  and ``step`` continues the same CPU generator that drew the initial noise.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from invoke_nb.nodes.diffusion.preview import LatentPreviews

__all__ = ["DenoiseInputs", "denoise", "timesteps_for"]


@dataclass
class DenoiseInputs:
    latents: torch.Tensor  # initial latents (zeros for txt2img), float32, (1, 4, h, w)
    noise: torch.Tensor | None
    seed: int
    cond: torch.Tensor
    uncond: torch.Tensor
    cfg_scale: float | list[float]
    cfg_rescale: float = 0.0
    denoising_start: float = 0.0
    denoising_end: float = 1.0
    steps: int = 10
    seeding: str = "invokeai"
    txt2img: bool = False
    added_cond: dict[str, torch.Tensor] | None = None  # SDXL: text_embeds/time_ids, (2, ...)
    mask: torch.Tensor | None = None  # latent size, 1 = keep, 0 = repaint (InvokeAI's)
    masked_latents: torch.Tensor | None = None
    gradient_mask: bool = False
    controls: Any = None  # sd.control.Controls: ControlNet/T2I/IP-Adapter UNet arguments


def timesteps_for(
    scheduler: Any,
    steps: int,
    denoising_start: float,
    denoising_end: float,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The timesteps to run, the first one (which sets the starting noise level) and its
    index in the scheduler's schedule.

    Start and end are fractions of the training schedule, cut on scheduler-order boundaries
    so multistep solvers see whole steps (InvokeAI's rule, so img2img strengths agree). The
    cut is found on the CPU; the schedule is then set on ``device``, where diffusers'
    pipelines keep it, so nothing moves per step.
    """
    import torch

    scheduler.set_timesteps(steps, device="cpu")
    cpu_timesteps = scheduler.timesteps
    if torch.device(device).type != "cpu":
        scheduler.set_timesteps(steps, device=device)
    timesteps = scheduler.timesteps
    order = scheduler.order
    first_of_step = cpu_timesteps[::order]
    n_train = scheduler.config["num_train_timesteps"]
    start_val = round(n_train * (1 - denoising_start))
    start = int((first_of_step >= start_val).sum())
    end_val = round(n_train * (1 - denoising_end))
    end = int((first_of_step[start:] >= end_val).sum())
    start, end = start * order, end * order
    return timesteps[start : start + end], timesteps[start : start + 1], start


def _generator(device: torch.device, seed: int) -> torch.Generator:
    """A generator on ``device`` (InvokeAI's choice); the CPU's where the device has none."""
    import torch

    try:
        return torch.Generator(device).manual_seed(seed)
    except RuntimeError:
        return torch.Generator("cpu").manual_seed(seed)


def _rescale_cfg(guided: torch.Tensor, cond: torch.Tensor, multiplier: float) -> torch.Tensor:
    dims = list(range(1, cond.ndim))
    rescaled = guided * (cond.std(dim=dims, keepdim=True) / guided.std(dim=dims, keepdim=True))
    return multiplier * rescaled + (1 - multiplier) * guided


def denoise(
    unet: Any,
    scheduler: Any,
    inp: DenoiseInputs,
    *,
    on_step: Callable[[int, int, torch.Tensor], None] | None = None,
    before_step: Callable[[], None] | None = None,
    device: str | torch.device | None = None,
    previews: LatentPreviews | None = None,
) -> torch.Tensor:
    """Run the loop on ``device`` (the cache's execution device; the UNet's weights may sit
    on ``meta`` under partial loading); returns the final latents (float32, CPU).

    Nothing in a step reads a device value on the host or copies host tensors to the device:
    the timesteps go to the device once, the scheduler starts at a known index (diffusers'
    ``set_begin_index``) instead of searching for it, and previews are computed on the
    device and copied without blocking (``previews``, every N steps, or none).
    ``on_step(step, total, latents)`` gets device latents: it must not read them.
    """
    import torch

    dtype = next(unet.parameters()).dtype  # ModelMixin.dtype/.device walk every parameter
    device = torch.device(device) if device is not None else next(unet.parameters()).device
    timesteps, init_t, begin = timesteps_for(
        scheduler, inp.steps, inp.denoising_start, inp.denoising_end, device
    )
    latents = inp.latents.to(device, torch.float32)
    if init_t.numel() == 0:
        return latents.cpu()
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(begin)
    orig = latents.clone()
    noise = inp.noise.to(device, torch.float32) if inp.noise is not None else None

    step_kwargs: dict[str, Any] = {}
    accepts_generator = "generator" in inspect.signature(scheduler.step).parameters
    if inp.seeding == "diffusers":
        gen = torch.Generator("cpu").manual_seed(inp.seed)
        torch.randn(tuple(latents.shape), generator=gen, dtype=torch.float32)  # the initial draw
        if accepts_generator:
            step_kwargs["generator"] = gen
        if noise is not None and inp.txt2img:
            latents = noise * scheduler.init_noise_sigma
        elif noise is not None:
            latents = scheduler.add_noise(latents, noise, init_t)
    else:
        if accepts_generator:
            # on the compute device, as InvokeAI does (CUDA draws differ from CPU's)
            step_kwargs["generator"] = _generator(device, inp.seed ^ 0xFFFFFFFF)
        if noise is not None:
            latents = scheduler.add_noise(latents, noise, init_t)
    if hasattr(scheduler, "prepare_noise"):  # ours (er_sde): CPU draws, one copy per run
        scheduler.prepare_noise(
            tuple(latents.shape),
            len(timesteps),
            torch.Generator("cpu").manual_seed(inp.seed ^ 0xFFFFFFFF),
            device,
        )
    if type(scheduler).__name__ == "TCDScheduler":
        step_kwargs["eta"] = 1.0

    inpaint_model = unet.config.in_channels == 9
    repaint = None  # 1 = repaint, InvokeAI's backend convention
    if inp.mask is not None:
        repaint = (1.0 - inp.mask.to(device, torch.float32)).expand_as(latents[:, :1])
        if noise is None:
            noise = torch.randn(
                tuple(orig.shape), generator=torch.Generator("cpu").manual_seed(inp.seed)
            ).to(device)
    masked_latents = None
    if inpaint_model:
        if repaint is None:
            repaint = torch.ones_like(latents[:, :1])
        masked_latents = inp.masked_latents
        if masked_latents is None:
            masked_latents = torch.where(repaint > 0.5, 0.0, orig)
        masked_latents = masked_latents.to(device, torch.float32)

    embeds = torch.cat([inp.uncond, inp.cond]).to(device, dtype)
    added = {k: v.to(device, dtype) for k, v in (inp.added_cond or {}).items()} or None
    n_train = scheduler.config.num_train_timesteps
    total = len(timesteps)
    for i, t in enumerate(timesteps):
        if before_step is not None:
            before_step()
        if repaint is not None and not inpaint_model:
            keep = scheduler.add_noise(orig, noise, t.reshape(1))
            if inp.gradient_mask:
                latents = torch.where(repaint > t / n_train, latents, keep)
            else:
                latents = torch.lerp(keep, latents, repaint)
        model_in = scheduler.scale_model_input(latents, t)
        if inpaint_model:
            model_in = torch.cat([model_in, repaint, masked_latents], dim=1)
        model_in = torch.cat([model_in, model_in]).to(dtype)
        extra = (
            inp.controls.unet_kwargs(i, total, model_in[:, :4], t, embeds, added)
            if inp.controls
            else {}
        )
        unet_added = extra.pop("added_cond_kwargs", added)
        pred = unet(
            model_in,
            t,
            encoder_hidden_states=embeds,
            added_cond_kwargs=unet_added,
            return_dict=False,
            **extra,
        )[0]
        uncond_pred, cond_pred = pred.float().chunk(2)
        scale = inp.cfg_scale[i] if isinstance(inp.cfg_scale, list) else inp.cfg_scale
        guided = uncond_pred + scale * (cond_pred - uncond_pred)
        if inp.cfg_rescale > 0:
            guided = _rescale_cfg(guided, cond_pred, inp.cfg_rescale)
        del pred, uncond_pred, cond_pred, model_in
        latents = scheduler.step(guided, t, latents, **step_kwargs, return_dict=False)[0]
        if previews is not None and previews.due(i + 1, total):
            previews.submit(latents)
        if on_step is not None:
            on_step(i + 1, total, latents)
    if repaint is not None and not inpaint_model:
        if inp.gradient_mask:
            latents = torch.where(repaint > 0, latents, orig)
        else:
            latents = torch.lerp(orig, latents, repaint)
    return latents.to("cpu", torch.float32)


def resize_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A (1, 1, H, W) float mask resized bilinearly (no antialias) to latent size."""
    import torch
    import torch.nn.functional as F

    m = mask.to(torch.float32)
    while m.ndim < 4:
        m = m.unsqueeze(0)
    if tuple(m.shape[-2:]) == tuple(size):
        return m
    return F.interpolate(m, size=size, mode="bilinear", align_corners=False, antialias=False)
