"""Noise and denoise: ``noise`` and ``denoise_latents`` (VAE nodes in ``vae``, latent ops in
``latent_ops``, inpaint masks in ``masks``, UNet patches in ``patches``).

Type ids, fields and versions are InvokeAI 6.14.2's. Noise is drawn on the CPU from
``torch.Generator("cpu").manual_seed(seed)`` as ``randn(1, 4, H/8, W/8)`` float32, so a seed
gives the same image on every machine (and the same as InvokeAI). ``denoise_latents`` adds
one field of ours, ``seeding`` ("invokeai" default, or "diffusers" to reproduce diffusers'
pipelines; see :mod:`invoke_nb.nodes.diffusion.sd.denoise`).
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    import torch
from PIL import Image
from pydantic import field_validator

from invoke_nb.nodes.base import Input, InputField, Node, node
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.control.fields import ControlField, IPAdapterField, T2IAdapterField
from invoke_nb.nodes.diffusion.devices import execution_device
from invoke_nb.nodes.diffusion.fields import (
    LATENT_SCALE_FACTOR,
    LatentsOutput,
    NoiseOutput,
    UNetField,
)
from invoke_nb.nodes.diffusion.lora import patched
from invoke_nb.nodes.diffusion.preview import LatentPreviews
from invoke_nb.nodes.diffusion.schedulers import SchedulerName, make_scheduler
from invoke_nb.nodes.diffusion.sd.control import build_controls
from invoke_nb.nodes.diffusion.sd.denoise import DenoiseInputs, denoise, resize_mask
from invoke_nb.nodes.diffusion.sd.patches import freeu, seamless
from invoke_nb.nodes.diffusion.sd.prompts import SDXLConditioning
from invoke_nb.nodes.diffusion.sd.regional import Regions, concat_regional, regional_attention
from invoke_nb.nodes.types import (
    ConditioningField,
    DenoiseMaskField,
    LatentsField,
)

__all__ = [
    "DenoiseLatentsNode",
    "DiffusionInputError",
    "NoiseNode",
    "image_to_tensor",
    "make_noise",
]

SEED_MAX = 0xFFFFFFFF
log = logging.getLogger("invoke_nb.nodes.latents")


class DiffusionInputError(ValueError):
    """Inputs of a diffusion node do not fit together (shapes, missing parts)."""


def make_noise(seed: int, width: int, height: int) -> torch.Tensor:
    """InvokeAI's SD noise: CPU generator, float32, (1, 4, height/8, width/8)."""
    import torch

    gen = torch.Generator("cpu").manual_seed(seed)
    shape = (1, 4, height // LATENT_SCALE_FACTOR, width // LATENT_SCALE_FACTOR)
    return torch.randn(shape, generator=gen, dtype=torch.float32)


def image_to_tensor(image: Image.Image, *, normalize: bool = True) -> torch.Tensor:
    """(C, H, W) float tensor, size trimmed down to multiples of 8; [-1, 1] when ``normalize``."""
    import torch

    w = image.width - image.width % LATENT_SCALE_FACTOR
    h = image.height - image.height % LATENT_SCALE_FACTOR
    if (w, h) != image.size:
        image = image.resize((w, h), Image.Resampling.BICUBIC)
    arr = np.asarray(image, dtype=np.float32) / 255.0
    t = torch.from_numpy(arr.copy())
    t = t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1)
    return t * 2.0 - 1.0 if normalize else t


# ---------------------------------------------------------------------------------------
# Seamless tiling: circular padding on the chosen axes of every padded conv.


@node(
    "noise",
    title="Create Latent Noise",
    category="latents",
    tags=["latents", "noise"],
    version="1.1.0",
)
class NoiseNode(Node):
    """Generates latent noise for supported denoiser architectures."""

    noise_type: Literal["SD"] = InputField(
        default="SD", description="Architecture-specific noise type.", extension=True
    )
    seed: int = InputField(
        default=0, ge=0, le=SEED_MAX, description="Seed for random number generation"
    )
    width: int = InputField(default=512, multiple_of=8, gt=0, description="Width of output (px)")
    height: int = InputField(default=512, multiple_of=8, gt=0, description="Height of output (px)")
    use_cpu: bool = InputField(
        default=True,
        description="Use CPU for noise generation (for reproducible results across platforms)",
    )

    @field_validator("seed", mode="before")
    @classmethod
    def _wrap_seed(cls, v: Any) -> Any:
        # InvokeAI takes any integer seed modulo 2**32 (so -1 is 4294967295).
        return v % (SEED_MAX + 1) if isinstance(v, int) and not isinstance(v, bool) else v

    def invoke(self, ctx: Context) -> NoiseOutput:
        seed = self.seed % (SEED_MAX + 1)
        noise = make_noise(seed, self.width, self.height)
        name = ctx.tensors.save(noise)
        return NoiseOutput(
            noise=LatentsField(latents_name=name, seed=seed),
            width=noise.shape[-1] * LATENT_SCALE_FACTOR,
            height=noise.shape[-2] * LATENT_SCALE_FACTOR,
        )


def _load_conditioning(
    ctx: Context,
    field: ConditioningField | list[ConditioningField],
    what: str,
    latent_size: tuple[int, int],
) -> tuple[Any, Regions | None]:
    """One side's conditioning (several are concatenated) and its prompt regions, if any."""
    items = field if isinstance(field, list) else [field]
    if not items:
        raise DiffusionInputError(f"node {ctx.node_id!r}: {what} is an empty list")
    conds = [ctx.conditioning.load(item) for item in items]
    masks = [ctx.tensors.load(i.mask) if i.mask is not None else None for i in items]
    if len(conds) == 1 and masks[0] is None:
        return conds[0], None
    if len({type(c) for c in conds}) > 1:
        raise DiffusionInputError(
            f"node {ctx.node_id!r}: {what} mixes conditionings of different model families"
        )
    return concat_regional(conds, masks, *latent_size)


def _match_tokens(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad the shorter embedding with zeros... as InvokeAI does for long/short prompt pairs."""
    import torch

    if a.shape[1] == b.shape[1]:
        return a, b
    n = max(a.shape[1], b.shape[1])

    def pad(x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == n:
            return x
        return torch.cat(
            [x, torch.zeros((x.shape[0], n - x.shape[1], x.shape[2]), dtype=x.dtype)], dim=1
        )

    return pad(a), pad(b)


@node(
    "denoise_latents",
    title="Denoise - SD1.5, SDXL",
    category="latents",
    tags=["latents", "denoise", "txt2img", "t2i", "t2l", "img2img", "i2i", "l2l"],
    version="1.6.0",
)
class DenoiseLatentsNode(Node):
    """Denoises noisy latents to decodable images"""

    positive_conditioning: ConditioningField | list[ConditioningField] = InputField(
        description="Positive conditioning tensor", input=Input.CONNECTION, ui_order=0
    )
    negative_conditioning: ConditioningField | list[ConditioningField] = InputField(
        description="Negative conditioning tensor", input=Input.CONNECTION, ui_order=1
    )
    noise: LatentsField | None = InputField(
        default=None, description="Noise tensor", input=Input.CONNECTION, ui_order=3
    )
    steps: int = InputField(default=10, gt=0, description="Number of steps to run")
    cfg_scale: float | list[float] = InputField(
        default=7.5, description="Classifier-Free Guidance scale", title="CFG Scale"
    )
    denoising_start: float = InputField(
        default=0.0,
        ge=0,
        le=1,
        description="When to start denoising, expressed a percentage of total steps",
    )
    denoising_end: float = InputField(
        default=1.0,
        ge=0,
        le=1,
        description="When to stop denoising, expressed a percentage of total steps",
    )
    scheduler: SchedulerName = InputField(
        default="euler", description="Scheduler to use during inference"
    )
    unet: UNetField = InputField(
        description="UNet (scheduler, LoRAs)", input=Input.CONNECTION, title="UNet", ui_order=2
    )
    control: ControlField | list[ControlField] | None = InputField(
        default=None, input=Input.CONNECTION, ui_order=5
    )
    ip_adapter: IPAdapterField | list[IPAdapterField] | None = InputField(
        default=None,
        description="IP-Adapter to apply",
        title="IP-Adapter",
        input=Input.CONNECTION,
        ui_order=6,
    )
    t2i_adapter: T2IAdapterField | list[T2IAdapterField] | None = InputField(
        default=None,
        description="T2I-Adapter(s) to apply",
        title="T2I-Adapter",
        input=Input.CONNECTION,
        ui_order=7,
    )
    cfg_rescale_multiplier: float = InputField(
        default=0,
        ge=0,
        lt=1,
        title="CFG Rescale Multiplier",
        description="Rescale multiplier for CFG guidance, used for models trained with zero-terminal SNR",
    )
    hidiffusion: bool = InputField(
        default=False,
        description="Use HiDiffusion (not supported here: must stay off)",
        title="HiDiffusion",
        extension=True,
    )
    hidiffusion_raunet: bool = InputField(
        default=True,
        description="HiDiffusion RAU-Net",
        title="HiDiffusion: RAU-Net",
        extension=True,
    )
    hidiffusion_window_attn: bool = InputField(
        default=True,
        description="HiDiffusion window attention",
        title="HiDiffusion: Window Attention",
        extension=True,
    )
    hidiffusion_t1_ratio: float = InputField(
        default=0.4,
        ge=0,
        le=1,
        description="HiDiffusion T1 ratio",
        title="HiDiffusion: T1 Ratio",
        extension=True,
    )
    hidiffusion_t2_ratio: float = InputField(
        default=0.0,
        ge=0,
        le=1,
        description="HiDiffusion T2 ratio",
        title="HiDiffusion: T2 Ratio",
        extension=True,
    )
    latents: LatentsField | None = InputField(
        default=None, description="Latents tensor", input=Input.CONNECTION, ui_order=4
    )
    denoise_mask: DenoiseMaskField | None = InputField(
        default=None,
        description="A mask of the region to apply the denoising process to. Values of 0.0 represent the regions to be fully denoised, and 1.0 represent the regions to be preserved.",
        input=Input.CONNECTION,
        ui_order=8,
    )
    seeding: Literal["invokeai", "diffusers"] = InputField(
        default="invokeai",
        description="invoke-nb: 'invokeai' reproduces InvokeAI's images; 'diffusers' reproduces diffusers' pipelines",
        extension=True,
    )

    def _reject_unsupported(self, ctx: Context) -> None:
        if self.hidiffusion:
            raise DiffusionInputError(f"node {ctx.node_id!r}: hidiffusion is not supported yet")
        scales = self.cfg_scale if isinstance(self.cfg_scale, list) else [self.cfg_scale]
        if any(s < 1 for s in scales):
            raise DiffusionInputError(
                f"node {ctx.node_id!r}: cfg_scale must be >= 1, got {self.cfg_scale}"
            )
        if isinstance(self.cfg_scale, list) and len(self.cfg_scale) != self.steps:
            raise DiffusionInputError(
                f"node {ctx.node_id!r}: cfg_scale list must have one value per step ({self.steps})"
            )

    def invoke(self, ctx: Context) -> LatentsOutput:
        import torch

        self._reject_unsupported(ctx)
        noise = ctx.tensors.load(self.noise) if self.noise is not None else None
        if self.latents is not None:
            latents = ctx.tensors.load(self.latents)
        elif noise is not None:
            latents = torch.zeros_like(noise)
        else:
            raise DiffusionInputError(
                f"node {ctx.node_id!r}: 'latents' or 'noise' must be connected"
            )
        if noise is not None and noise.shape[1:] != latents.shape[1:]:
            raise DiffusionInputError(
                f"node {ctx.node_id!r}: noise {tuple(noise.shape)} and latents {tuple(latents.shape)} differ in shape"
            )
        seed = 0
        if self.noise is not None and self.noise.seed is not None:
            seed = self.noise.seed
        elif self.latents is not None and self.latents.seed is not None:
            seed = self.latents.seed

        size = (latents.shape[-2], latents.shape[-1])
        pos, pos_regions = _load_conditioning(
            ctx, self.positive_conditioning, "positive_conditioning", size
        )
        neg, neg_regions = _load_conditioning(
            ctx, self.negative_conditioning, "negative_conditioning", size
        )
        if type(pos) is not type(neg):
            raise DiffusionInputError(
                f"node {ctx.node_id!r}: positive and negative conditioning are of different model families"
            )
        cond, uncond = _match_tokens(pos.embeds, neg.embeds)
        added = None
        if isinstance(pos, SDXLConditioning):
            added = {
                "text_embeds": torch.cat([neg.pooled_embeds, pos.pooled_embeds]),
                "time_ids": torch.cat([neg.add_time_ids, pos.add_time_ids]),
            }
        mask = masked = None
        gradient = False
        if self.denoise_mask is not None:
            mask = resize_mask(
                ctx.tensors.load(self.denoise_mask.mask_name), tuple(latents.shape[-2:])
            )
            if self.denoise_mask.masked_latents_name:
                masked = ctx.tensors.load(self.denoise_mask.masked_latents_name)
            gradient = self.denoise_mask.gradient

        models = ctx.models
        record = models.record(self.unet.unet)
        base = record.base
        loras = []
        for lora in self.unet.loras:
            with models.load(lora.lora) as sd:
                loras.append((sd, lora.weight))
        with models.load(self.unet.scheduler) as sched_cfg:
            scheduler = make_scheduler(
                self.scheduler, sched_cfg, seed=seed, prediction_type=record.prediction_type
            )

        device = execution_device(ctx)
        every = getattr(ctx.services, "preview_every", 0) if ctx.services.emit else 0
        previews = LatentPreviews(base, device, every) if every else None

        where = [0, 0]

        def on_step(step: int, total: int, _latents: torch.Tensor) -> None:
            where[:] = [step, total]
            image = previews.take() if previews is not None else None
            ctx.progress(step=step, total=total, message="Denoising", image=image)

        with torch.inference_mode(), ExitStack() as stack:
            unet = stack.enter_context(models.load(self.unet.unet))
            stack.enter_context(patched(unet, loras, "unet", cache=getattr(models, "cache", None)))
            stack.enter_context(seamless(unet, self.unet.seamless_axes))
            stack.enter_context(freeu(unet, self.unet.freeu_config))
            controls = build_controls(
                ctx,
                stack,
                unet,
                base,
                latents,
                control=self.control,
                t2i_adapter=self.t2i_adapter,
                ip_adapter=self.ip_adapter,
                device=device,
                dtype=next(unet.parameters()).dtype,
            )
            # after the IP-Adapter processors: the regional bias wraps them
            stack.enter_context(
                regional_attention(
                    unet,
                    neg_regions,
                    pos_regions,
                    neg.embeds.shape[1],
                    pos.embeds.shape[1],
                    cond.shape[1],
                    device,
                )
            )
            result = denoise(
                unet,
                scheduler,
                DenoiseInputs(
                    latents=latents,
                    noise=noise,
                    seed=seed,
                    cond=cond,
                    uncond=uncond,
                    cfg_scale=self.cfg_scale,
                    cfg_rescale=self.cfg_rescale_multiplier,
                    denoising_start=self.denoising_start,
                    denoising_end=self.denoising_end,
                    steps=self.steps,
                    seeding=self.seeding,
                    txt2img=self.latents is None,
                    added_cond=added,
                    mask=mask,
                    masked_latents=masked,
                    gradient_mask=gradient,
                    controls=controls,
                ),
                on_step=on_step,
                before_step=ctx.check_cancelled,
                device=device,
                previews=previews,
            )
        last = previews.take(wait=True) if previews is not None else None
        if last is not None:  # the last step's picture, once its copy has landed
            ctx.progress(step=where[0], total=where[1], message="Denoising", image=last)
        name = ctx.tensors.save(result)
        return LatentsOutput.of(name, result)
