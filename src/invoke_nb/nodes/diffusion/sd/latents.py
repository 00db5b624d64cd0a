"""Latent-space nodes: noise, denoise, VAE encode/decode, scale, blend, inpaint masks.

Type ids, fields and versions are InvokeAI 6.14.2's. Noise is drawn on the CPU from
``torch.Generator("cpu").manual_seed(seed)`` as ``randn(1, 4, H/8, W/8)`` float32, so a seed
gives the same image on every machine (and the same as InvokeAI). ``denoise_latents`` adds
one field of ours, ``seeding`` ("invokeai" default, or "diffusers" to reproduce diffusers'
pipelines; see :mod:`invoke_nb.nodes.diffusion.sd.denoise`).
"""

from __future__ import annotations

import logging
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    import torch
from PIL import Image
from pydantic import field_validator

from invoke_nb.nodes.base import Input, InputField, Node, node
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.control.fields import ControlField, IPAdapterField, T2IAdapterField
from invoke_nb.nodes.diffusion.devices import execution_device, precision_name
from invoke_nb.nodes.diffusion.fields import (
    LATENT_SCALE_FACTOR,
    DenoiseMaskOutput,
    GradientMaskOutput,
    LatentsOutput,
    NoiseOutput,
    UNetField,
    VAEField,
)
from invoke_nb.nodes.diffusion.lora import patched
from invoke_nb.nodes.diffusion.preview import LatentPreviews
from invoke_nb.nodes.diffusion.schedulers import SchedulerName, make_scheduler
from invoke_nb.nodes.diffusion.sd.control import build_controls
from invoke_nb.nodes.diffusion.sd.denoise import DenoiseInputs, denoise, resize_mask
from invoke_nb.nodes.diffusion.sd.prompts import SDXLConditioning
from invoke_nb.nodes.diffusion.sd.regional import Regions, concat_regional, regional_attention
from invoke_nb.nodes.primitives import ImageOutput
from invoke_nb.nodes.types import (
    BoardField,
    ConditioningField,
    DenoiseMaskField,
    ImageField,
    LatentsField,
)

__all__ = [
    "BlendLatentsNode",
    "CreateDenoiseMaskNode",
    "CreateGradientMaskNode",
    "DenoiseLatentsNode",
    "ImageToLatentsNode",
    "LatentsToImageNode",
    "NoiseNode",
    "ScaleLatentsNode",
    "image_to_tensor",
    "make_noise",
    "seamless",
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


@contextmanager
def seamless(model: torch.nn.Module, axes: list[str]):
    """Make ``model``'s convolutions wrap around on ``axes`` ("x", "y") inside the block.

    Compile-safe: each padded convolution gets, once, a forward that reads its axes from a
    plain attribute; the block only flips that attribute. A compiled UNet therefore sees the
    same code every time (one specialisation per axes setting), never a swapped function.
    """
    import torch

    if not axes:
        yield model
        return
    setting = ("x" in axes, "y" in axes)
    convs = [
        m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and any(p > 0 for p in _pad(m))
    ]
    for mod in convs:
        if not hasattr(mod, "_invoke_nb_wrap"):
            mod._conv_forward = _wrapping_forward(mod, mod._conv_forward)  # type: ignore[method-assign]
        mod._invoke_nb_wrap = setting
    try:
        yield model
    finally:
        for mod in convs:
            mod._invoke_nb_wrap = (False, False)


def _pad(mod: torch.nn.Conv2d) -> tuple[int, int]:
    p = mod.padding
    return (p, p) if isinstance(p, int) else (int(p[0]), int(p[1]))  # type: ignore[arg-type]


def _wrapping_forward(mod: torch.nn.Conv2d, plain: Any) -> Any:
    import torch.nn.functional as F

    ph, pw = _pad(mod)

    def forward(inp: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        x, y = mod._invoke_nb_wrap
        if not (x or y):
            return plain(inp, weight, bias)
        inp = F.pad(inp, (pw, pw, 0, 0), mode="circular" if x else "constant")
        inp = F.pad(inp, (0, 0, ph, ph), mode="circular" if y else "constant")
        return F.conv2d(inp, weight, bias, mod.stride, 0, mod.dilation, mod.groups)

    return forward


@contextmanager
def freeu(unet: Any, config: Any):
    """FreeU's backbone/skip scales on ``unet`` inside the block (diffusers' implementation)."""
    if config is None:
        yield unet
        return
    unet.enable_freeu(s1=config.s1, s2=config.s2, b1=config.b1, b2=config.b2)
    try:
        yield unet
    finally:
        unet.disable_freeu()


# ---------------------------------------------------------------------------------------


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


_UPCAST_BASES = ("sdxl", "sdxl-refiner")


def _vae_dtype(vae: Any, fp32: bool, base: str | None = None) -> torch.dtype:
    """The dtype to run ``vae`` in: its loaded dtype, float32 when asked, or when an SDXL VAE
    in float16 says it overflows (``force_upcast``, as diffusers' SDXL pipelines read it)."""
    import torch

    loaded = next(vae.parameters()).dtype  # meta parameters keep their dtype
    if fp32:
        return torch.float32
    if (
        loaded == torch.float16
        and base in _UPCAST_BASES
        and getattr(vae.config, "force_upcast", False)
    ):
        return torch.float32
    return loaded


@contextmanager
def _vae_in(vae: Any, dtype: torch.dtype):
    """Run ``vae`` in ``dtype`` inside the block; the cached model gets its dtype back."""
    loaded = next(vae.parameters()).dtype
    if loaded == dtype:
        yield vae
        return
    vae.to(dtype)
    try:
        yield vae
    finally:
        vae.to(loaded)


@contextmanager
def _vae_tiling(vae: Any, tiled: bool, tile_size: int):
    if not tiled:
        yield vae
        return
    saved = (
        vae.tile_sample_min_size,
        vae.tile_latent_min_size,
        vae.tile_overlap_factor,
        vae.use_tiling,
    )
    vae.enable_tiling()
    if tile_size > 0:
        vae.tile_sample_min_size = tile_size
        vae.tile_latent_min_size = tile_size // LATENT_SCALE_FACTOR
        vae.tile_overlap_factor = 0.25
    try:
        yield vae
    finally:
        (
            vae.tile_sample_min_size,
            vae.tile_latent_min_size,
            vae.tile_overlap_factor,
            vae.use_tiling,
        ) = saved


def _tiles_on_oom(vae: Any, tiled: bool, tile_size: int, device: str, fn: Any) -> Any:
    """``fn()`` under the node's tiling; on a device out-of-memory, once more in tiles.

    Tiling costs seams only where memory forced it; the failed attempt's tensors are freed
    (and the allocator emptied) before the retry.
    """
    import torch

    with _vae_tiling(vae, tiled, tile_size):
        try:
            return fn()
        except torch.OutOfMemoryError:
            if tiled:
                raise
    from invoke_nb.models.devices import empty_cache

    log.warning("VAE ran out of memory on %s: retrying in tiles", device)
    empty_cache(device)
    with _vae_tiling(vae, True, tile_size):
        return fn()


def decode_latents(
    vae: Any,
    latents: torch.Tensor,
    *,
    fp32: bool = True,
    device: str | torch.device = "cpu",
    base: str | None = None,
) -> Image.Image:
    """VAE-decode latents (already scaled by ``scaling_factor``) to a PIL RGB image."""
    import torch

    dtype = _vae_dtype(vae, fp32, base)
    with torch.inference_mode(), _vae_in(vae, dtype):
        lat = latents.to(device, dtype) / vae.config.scaling_factor
        img = vae.decode(lat, return_dict=False)[0]
        img = (img / 2 + 0.5).clamp(0, 1)
        arr = img[0].permute(1, 2, 0).float().cpu().numpy()
    return Image.fromarray((arr * 255).round().astype(np.uint8))


def encode_image(
    vae: Any,
    image_tensor: torch.Tensor,
    *,
    fp32: bool = True,
    device: str | torch.device = "cpu",
    base: str | None = None,
) -> torch.Tensor:
    """VAE-encode a (1, 3, H, W) [-1, 1] tensor to scaled latents.

    Samples the latent distribution with a fixed CPU generator (seed 0), drawn on the CPU and
    then moved, so the same image gives the same latents on every run and every device
    (InvokeAI samples from torch's global generator).
    """
    import torch

    dtype = _vae_dtype(vae, fp32, base)
    with torch.inference_mode(), _vae_in(vae, dtype):
        dist = vae.encode(image_tensor.to(device, dtype)).latent_dist
        eps = torch.randn(
            tuple(dist.mean.shape), generator=torch.Generator("cpu").manual_seed(0)
        ).to(dist.mean.device, dist.mean.dtype)
        sample = dist.mean + dist.std * eps
        return (sample * vae.config.scaling_factor).to("cpu", torch.float32)


@node(
    "l2i",
    title="Latents to Image - SD1.5, SDXL",
    category="latents",
    tags=["latents", "image", "vae", "l2i"],
    version="1.3.2",
)
class LatentsToImageNode(Node):
    """Generates an image from latents."""

    board: BoardField | None = InputField(
        default=None, description="The board to save the image to", input=Input.DIRECT
    )
    metadata: dict[str, Any] | None = InputField(
        default=None,
        description="Optional metadata to be saved with the image",
        input=Input.CONNECTION,
    )
    latents: LatentsField = InputField(description="Latents tensor", input=Input.CONNECTION)
    vae: VAEField = InputField(description="VAE", input=Input.CONNECTION)
    tiled: bool = InputField(
        default=False, description="Processing using overlapping tiles (reduce memory consumption)"
    )
    tile_size: int = InputField(
        default=0,
        multiple_of=8,
        description="The tile size for VAE tiling in pixels (image space). If set to 0, the default tile size for the model will be used. Larger tile sizes generally produce better results at the cost of higher memory usage.",
    )
    fp32: bool = InputField(
        default=False, description="Whether or not to use full float32 precision"
    )

    def invoke(self, ctx: Context) -> ImageOutput:
        latents = ctx.tensors.load(self.latents)
        ctx.progress(message="Running VAE decoder")
        base = ctx.models.record(self.vae.vae).base
        device = execution_device(ctx)
        with ctx.models.load(self.vae.vae) as vae, seamless(vae, self.vae.seamless_axes):
            image = _tiles_on_oom(
                vae,
                self.tiled,
                self.tile_size,
                device,
                lambda: decode_latents(vae, latents, fp32=self.fp32, device=device, base=base),
            )
        metadata = self.metadata
        precision = precision_name(ctx)
        if metadata is not None and precision is not None:
            metadata = {**metadata, "precision": precision}
        ref = ctx.images.save(
            image,
            metadata=metadata,
            board_id=self.board.board_id if self.board is not None else None,
        )
        return ImageOutput(image=ref, width=image.width, height=image.height)


@node(
    "i2l",
    title="Image to Latents - SD1.5, SDXL",
    category="latents",
    tags=["latents", "image", "vae", "i2l"],
    version="1.2.0",
)
class ImageToLatentsNode(Node):
    """Encodes an image into latents."""

    image: ImageField = InputField(description="The image to encode")
    vae: VAEField = InputField(description="VAE", input=Input.CONNECTION)
    tiled: bool = InputField(
        default=False, description="Processing using overlapping tiles (reduce memory consumption)"
    )
    tile_size: int = InputField(
        default=0,
        multiple_of=8,
        description="The tile size for VAE tiling in pixels (image space). If set to 0, the default tile size for the model will be used.",
    )
    fp32: bool = InputField(
        default=False, description="Whether or not to use full float32 precision"
    )
    color_compensation: Literal["None", "SDXL"] = InputField(
        default="None",
        description="Apply VAE scaling compensation when encoding images (reduces color drift).",
    )

    def invoke(self, ctx: Context) -> LatentsOutput:
        image = ctx.images.get_pil(self.image, mode="RGB")
        t = image_to_tensor(image).unsqueeze(0)
        rec = ctx.models.record(self.vae.vae)
        if self.color_compensation == "SDXL" and rec.base == "sdxl":
            t = t * 1.015 - 0.002
        ctx.progress(message="Running VAE encoder")
        device = execution_device(ctx)
        with ctx.models.load(self.vae.vae) as vae:
            latents = _tiles_on_oom(
                vae,
                self.tiled,
                self.tile_size,
                device,
                lambda: encode_image(vae, t, fp32=self.fp32, device=device, base=rec.base),
            )
        name = ctx.tensors.save(latents)
        return LatentsOutput.of(name, latents)


@node(
    "lscale", title="Scale Latents", category="latents", tags=["latents", "resize"], version="1.0.2"
)
class ScaleLatentsNode(Node):
    """Scales latents by a given factor."""

    latents: LatentsField = InputField(description="Latents tensor", input=Input.CONNECTION)
    scale_factor: float = InputField(gt=0, description="The factor by which to scale")
    mode: Literal[
        "nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact"
    ] = InputField(default="bilinear", description="Interpolation mode")
    antialias: bool = InputField(
        default=False, description="Whether or not to apply antialiasing (bilinear or bicubic only)"
    )

    def invoke(self, ctx: Context) -> LatentsOutput:
        import torch.nn.functional as F

        latents = ctx.tensors.load(self.latents)
        if self.mode in ("linear", "trilinear"):
            raise DiffusionInputError(
                f"node {ctx.node_id!r}: mode {self.mode!r} does not apply to 4-D latents"
            )
        aa = self.antialias and self.mode in ("bilinear", "bicubic")
        corners = False if self.mode in ("bilinear", "bicubic") else None
        out = F.interpolate(
            latents,
            scale_factor=self.scale_factor,
            mode=self.mode,
            antialias=aa,
            align_corners=corners,
        )
        name = ctx.tensors.save(out)
        return LatentsOutput.of(name, out, seed=self.latents.seed)


@node(
    "lblend",
    title="Blend Latents",
    category="latents",
    tags=["latents", "blend", "mask"],
    version="1.1.0",
)
class BlendLatentsNode(Node):
    """Blend two latents using a given alpha. If a mask is provided, the second latents will be masked before blending.
    Latents must have same size. Masking functionality added by @dwringer."""

    latents_a: LatentsField = InputField(description="Latents tensor", input=Input.CONNECTION)
    latents_b: LatentsField = InputField(description="Latents tensor", input=Input.CONNECTION)
    mask: ImageField | None = InputField(default=None, description="Mask for blending in latents B")
    alpha: float = InputField(
        default=0.5,
        ge=0,
        description="Blending factor. 0.0 = use input A only, 1.0 = use input B only, 0.5 = 50% mix of input A and input B.",
    )

    def invoke(self, ctx: Context) -> LatentsOutput:
        import torch

        a = ctx.tensors.load(self.latents_a)
        b = ctx.tensors.load(self.latents_b)
        if a.shape != b.shape:
            raise DiffusionInputError(
                f"node {ctx.node_id!r}: latents_a {tuple(a.shape)} and latents_b {tuple(b.shape)} differ in shape"
            )
        if self.mask is not None:
            m = image_to_tensor(ctx.images.get_pil(self.mask, mode="L"), normalize=False).unsqueeze(
                0
            )
            m = resize_mask(m, tuple(a.shape[-2:]))
            b = a + m.expand_as(a) * (b - a)
        out = (
            torch.lerp(a.float(), b.float(), self.alpha)
            if self.alpha <= 1
            else a + self.alpha * (b - a)
        )
        name = ctx.tensors.save(out)
        return LatentsOutput.of(name, out)


@node(
    "create_denoise_mask",
    title="Create Denoise Mask",
    category="mask",
    tags=["mask", "denoise"],
    version="1.0.2",
)
class CreateDenoiseMaskNode(Node):
    """Creates mask for denoising model run."""

    vae: VAEField = InputField(description="VAE", input=Input.CONNECTION, ui_order=0)
    image: ImageField | None = InputField(
        default=None, description="Image which will be masked", ui_order=1
    )
    mask: ImageField = InputField(description="The mask to use when pasting", ui_order=2)
    tiled: bool = InputField(
        default=False,
        description="Processing using overlapping tiles (reduce memory consumption)",
        ui_order=3,
    )
    fp32: bool = InputField(
        default=False, description="Whether or not to use full float32 precision", ui_order=4
    )

    def invoke(self, ctx: Context) -> DenoiseMaskOutput:
        import torch

        mask = image_to_tensor(ctx.images.get_pil(self.mask, mode="L"), normalize=False).unsqueeze(
            0
        )
        masked_name = None
        if self.image is not None:
            img = image_to_tensor(ctx.images.get_pil(self.image, mode="RGB")).unsqueeze(0)
            keep = resize_mask(mask, tuple(img.shape[-2:]))
            masked = img * torch.where(keep < 0.5, 0.0, 1.0)
            base = ctx.models.record(self.vae.vae).base
            with ctx.models.load(self.vae.vae) as vae, _vae_tiling(vae, self.tiled, 0):
                latents = encode_image(
                    vae, masked, fp32=self.fp32, device=execution_device(ctx), base=base
                )
                masked_name = ctx.tensors.save(latents)
        name = ctx.tensors.save(mask)
        return DenoiseMaskOutput(
            denoise_mask=DenoiseMaskField(
                mask_name=name, masked_latents_name=masked_name, gradient=False
            )
        )


def _gaussian_kernel(radius: int) -> np.ndarray:
    size = radius * 2 + 1
    sigma = radius / 2.5
    x = np.arange(size, dtype=np.float64) - radius
    g = np.exp(-(x**2) / (2 * sigma**2))
    k = np.outer(g, g)
    return k / k.max()


def _disc_kernel(radius: int, kernel: np.ndarray | None = None) -> np.ndarray:
    size = radius * 2 + 1
    yy, xx = np.mgrid[0:size, 0:size] - radius
    dist = np.sqrt(xx**2 + yy**2)
    if kernel is None:  # box: linear fade from the centre
        return np.where(dist <= radius, 1.0 - dist / radius, 0.0)
    return np.where(dist > radius, 0.0, kernel)


def _weighted_max_filter(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    import torch
    import torch.nn.functional as F

    kh, kw = kernel.shape
    padded = F.pad(image, (kw // 2, kw // 2, kh // 2, kh // 2), value=0.0)
    out = torch.zeros_like(image)
    for i in range(kh):
        for j in range(kw):
            w = float(kernel[i, j])
            if w > 0:
                out = torch.maximum(out, padded[i : i + image.shape[0], j : j + image.shape[1]] * w)
    return out


@node(
    "create_gradient_mask",
    title="Create Gradient Mask",
    category="mask",
    tags=["mask", "denoise"],
    version="1.3.0",
)
class CreateGradientMaskNode(Node):
    """Creates mask for denoising."""

    mask: ImageField = InputField(description="Image which will be masked", ui_order=1)
    edge_radius: int = InputField(
        default=16, ge=0, description="How far to expand the edges of the mask", ui_order=2
    )
    coherence_mode: Literal["Gaussian Blur", "Box Blur", "Staged"] = InputField(
        default="Gaussian Blur", ui_order=3
    )
    minimum_denoise: float = InputField(
        default=0.0,
        ge=0,
        le=1,
        description="Minimum denoise level for the coherence region",
        ui_order=4,
    )
    image: ImageField | None = InputField(
        default=None,
        description="OPTIONAL: Only connect for specialized Inpainting models, masked_latents will be generated from the image with the VAE",
        title="[OPTIONAL] Image",
        ui_order=6,
    )
    unet: UNetField | None = InputField(
        default=None,
        description="OPTIONAL: If the Unet is a specialized Inpainting model, masked_latents will be generated from the image with the VAE",
        input=Input.CONNECTION,
        title="[OPTIONAL] UNet",
        ui_order=5,
    )
    vae: VAEField | None = InputField(
        default=None,
        description="OPTIONAL: Only connect for specialized Inpainting models, masked_latents will be generated from the image with the VAE",
        title="[OPTIONAL] VAE",
        input=Input.CONNECTION,
        ui_order=7,
    )
    tiled: bool = InputField(
        default=False,
        description="Processing using overlapping tiles (reduce memory consumption)",
        ui_order=8,
    )
    fp32: bool = InputField(
        default=False, description="Whether or not to use full float32 precision", ui_order=9
    )

    def invoke(self, ctx: Context) -> GradientMaskOutput:
        import torch

        src = ctx.images.get_pil(self.mask, mode="L")
        small = src.resize((src.width // 8, src.height // 8), Image.Resampling.BILINEAR)
        orig = np.asarray(small, dtype=np.float32)
        radius = self.edge_radius // LATENT_SCALE_FACTOR
        if radius > 0:
            inverted = torch.from_numpy(255.0 - orig)  # 0 = keep; larger = denoise more
            if self.coherence_mode == "Box Blur":
                kernel = _disc_kernel(radius)
            else:
                kernel = _disc_kernel(radius, _gaussian_kernel(radius))
            grown = (
                255.0 - _weighted_max_filter(inverted, torch.from_numpy(kernel).float())
            ).numpy()
            threshold = (1 - self.minimum_denoise) * 255
            if self.coherence_mode == "Staged":
                staged = (grown < orig) & (orig > threshold)
                grown = np.where(staged, threshold, orig)
            grown = np.where((grown > threshold) & (grown < 255), threshold, grown)
        else:
            grown = orig.copy()
        grown = np.clip(grown, 0, 255).astype(np.uint8)
        full = (small.width * 8, small.height * 8)
        area = Image.fromarray(np.where(grown < 255, 0, 255).astype(np.uint8), mode="L").resize(
            full, Image.Resampling.NEAREST
        )
        area_ref = ctx.images.save(area, intermediate=True)
        mask_img = Image.fromarray(grown, mode="L").resize(full, Image.Resampling.NEAREST)
        mask_t = image_to_tensor(mask_img, normalize=False).unsqueeze(0)
        mask_name = ctx.tensors.save(mask_t)
        masked_name = None
        if self.unet is not None and self.vae is not None and self.image is not None:
            with ctx.models.load(self.unet.unet) as unet:
                inpaint_model = unet.config.in_channels == 9
            if inpaint_model:
                img = image_to_tensor(ctx.images.get_pil(self.image, mode="RGB")).unsqueeze(0)
                keep = resize_mask(mask_t, tuple(img.shape[-2:]))
                base = ctx.models.record(self.vae.vae).base
                with ctx.models.load(self.vae.vae) as vae:
                    masked_name = ctx.tensors.save(
                        encode_image(
                            vae,
                            img * torch.where(keep < 0.5, 0.0, 1.0),
                            fp32=self.fp32,
                            device=execution_device(ctx),
                            base=base,
                        )
                    )
        return GradientMaskOutput(
            denoise_mask=DenoiseMaskField(
                mask_name=mask_name, masked_latents_name=masked_name, gradient=True
            ),
            expanded_mask_area=area_ref,
        )
