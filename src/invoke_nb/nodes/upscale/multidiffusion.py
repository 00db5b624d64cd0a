"""``tiled_multi_diffusion_denoise_latents``: denoise latents larger than the UNet likes, one
tile at a time per step, blending the tiles' predictions (MultiDiffusion), as InvokeAI 6.11.1
does in its tiled upscaling workflows.

The denoising itself is ``denoise_latents``' own (same conditioning, LoRAs, schedulers,
seeding): that node runs with a UNet stand-in that, on every call, cuts the latents into
tiles, runs the real UNet on each and merges the noise predictions with linear ramps across
the overlaps (InvokeAI's weights). InvokeAI merges each tile's scheduler output instead,
with one scheduler copy per tile; for the deterministic schedulers (Euler, DDIM, DPM++ 2M,
UniPC, ...) a step is linear in the prediction, so the two agree; ancestral/SDE schedulers
draw their noise once for the whole image here rather than once per tile.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from invoke_nb.nodes.base import Input, InputField, Node, node
from invoke_nb.nodes.diffusion.fields import UNetField
from invoke_nb.nodes.diffusion.schedulers import SchedulerName
from invoke_nb.nodes.diffusion.sd.latents import DenoiseLatentsNode
from invoke_nb.nodes.types import ConditioningField, LatentsField
from invoke_nb.nodes.upscale.tile_math import Tile, tiles_min_overlap

if TYPE_CHECKING:
    import torch

    from invoke_nb.nodes.context import Context
    from invoke_nb.nodes.diffusion.fields import LatentsOutput

__all__ = ["TiledUNet", "tile_weights"]

LATENT_SCALE = 8


def tile_weights(tile: Tile, like: torch.Tensor) -> torch.Tensor:
    """A (1, 1, h, w) weight map for a tile: 1 inside, linear ramps from 0 across each
    overlap with a neighbour (InvokeAI's MultiDiffusion blending)."""
    import torch

    c, o = tile.coords, tile.overlap
    w = torch.ones((1, 1, c.bottom - c.top, c.right - c.left), dtype=like.dtype, device=like.device)
    ramp = {"dtype": like.dtype, "device": like.device}
    if o.left > 0:
        w[..., : o.left] *= torch.linspace(0, 1, o.left, **ramp).view(1, 1, 1, -1)
    if o.top > 0:
        w[..., : o.top, :] *= torch.linspace(0, 1, o.top, **ramp).view(1, 1, -1, 1)
    if o.right > 0:
        w[..., -o.right :] *= torch.linspace(1, 0, o.right, **ramp).view(1, 1, 1, -1)
    if o.bottom > 0:
        w[..., -o.bottom :, :] *= torch.linspace(1, 0, o.bottom, **ramp).view(1, 1, -1, 1)
    return w


def _crop(value: Any, c: Any, height: int, width: int) -> Any:
    """Crop spatial side inputs (ControlNet/T2I residuals at any UNet resolution) to a tile;
    everything else passes unchanged."""
    import torch

    if isinstance(value, (list, tuple)):
        return type(value)(_crop(v, c, height, width) for v in value)
    if isinstance(value, torch.Tensor) and value.ndim == 4:
        h, w = value.shape[-2:]
        if height % h == 0 and width % w == 0 and height // h == width // w:
            s = height // h
            return value[..., c.top // s : c.bottom // s, c.left // s : c.right // s]
    return value


class TiledUNet:
    """Stands in for a diffusers UNet: calls run the real one tile by tile and merge; every
    attribute (config, parameters, modules for LoRA patching) is the real UNet's."""

    def __init__(self, unet: Any, tile_h: int, tile_w: int, overlap: int) -> None:
        self._unet = unet
        self._size = (tile_h, tile_w, overlap)
        self.tiles_run = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._unet, name)

    def __call__(self, sample: torch.Tensor, t: Any, *args: Any, **kwargs: Any) -> Any:
        import torch

        height, width = sample.shape[-2:]
        th, tw, overlap = self._size
        tiles = tiles_min_overlap(height, width, th, tw, overlap)
        merged: torch.Tensor | None = None
        weights = torch.zeros((1, 1, height, width), dtype=torch.float32, device=sample.device)
        for tile in tiles:
            c = tile.coords
            part = sample[..., c.top : c.bottom, c.left : c.right]
            extra = {k: _crop(v, c, height, width) for k, v in kwargs.items()}
            extra["return_dict"] = False
            pred = self._unet(part, t, *args, **extra)[0].float()
            self.tiles_run += 1
            w = tile_weights(tile, weights)
            if merged is None:
                merged = torch.zeros(
                    (pred.shape[0], pred.shape[1], height, width),
                    dtype=torch.float32,
                    device=pred.device,
                )
            merged[..., c.top : c.bottom, c.left : c.right] += pred * w
            weights[..., c.top : c.bottom, c.left : c.right] += w
        assert merged is not None
        out = torch.where(weights > 0, merged / weights.clamp_min(1e-12), merged)
        out = out.to(sample.dtype)
        return _Output(out) if kwargs.get("return_dict", True) else (out,)


class _Output:
    def __init__(self, sample: torch.Tensor) -> None:
        self.sample = sample

    def __getitem__(self, i: int) -> torch.Tensor:
        return (self.sample,)[i]


class _TiledModels:
    """The node's model service, except that loading its UNet yields a :class:`TiledUNet`."""

    def __init__(self, models: Any, unet_key: str, tiling: tuple[int, int, int]) -> None:
        self._models, self._key, self._tiling = models, unet_key, tiling
        self.last: TiledUNet | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._models, name)

    @contextmanager
    def _tiled(self, model: Any, submodel: Any) -> Iterator[Any]:
        with self._models.load(model, submodel) as unet:
            self.last = TiledUNet(unet, *self._tiling)
            yield self.last

    def load(self, model: Any, submodel: str | None = None) -> Any:
        part = submodel or getattr(model, "submodel_type", None)
        if getattr(model, "key", None) == self._key and getattr(part, "value", part) == "unet":
            return self._tiled(model, submodel)
        return self._models.load(model, submodel)


class _TiledContext:
    """The node's context with :class:`_TiledModels` as its model service."""

    def __init__(self, ctx: Context, models: _TiledModels) -> None:
        self._ctx, self.models = ctx, models

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)


@node(
    "tiled_multi_diffusion_denoise_latents",
    title="Tiled Multi-Diffusion Denoise - SD1.5, SDXL",
    category="latents",
    tags=["upscale", "denoise"],
    version="1.0.1",
)
class TiledMultiDiffusionDenoiseLatentsNode(Node):
    """Tiled MultiDiffusion denoising for refining large images (tiled upscaling): every
    step runs the UNet on overlapping tiles and blends them; no IP-Adapter, T2I-Adapter or
    mask here (as InvokeAI)."""

    positive_conditioning: ConditioningField = InputField(
        description="Positive conditioning tensor", input=Input.CONNECTION
    )
    negative_conditioning: ConditioningField = InputField(
        description="Negative conditioning tensor", input=Input.CONNECTION
    )
    noise: LatentsField | None = InputField(
        default=None, description="Noise tensor", input=Input.CONNECTION
    )
    latents: LatentsField | None = InputField(
        default=None, description="Latents tensor", input=Input.CONNECTION
    )
    tile_height: int = InputField(
        default=1024, gt=0, multiple_of=8, description="Height of the tiles in image space."
    )
    tile_width: int = InputField(
        default=1024, gt=0, multiple_of=8, description="Width of the tiles in image space."
    )
    tile_overlap: int = InputField(
        default=32,
        multiple_of=8,
        gt=0,
        description="The overlap between adjacent tiles in pixel space (merged in latent space).",
    )
    steps: int = InputField(default=18, gt=0, description="Number of steps to run")
    cfg_scale: float | list[float] = InputField(
        default=6.0, description="Classifier-Free Guidance scale", title="CFG Scale"
    )
    denoising_start: float = InputField(
        default=0.0, ge=0, le=1, description="When to start denoising, a fraction of the steps"
    )
    denoising_end: float = InputField(
        default=1.0, ge=0, le=1, description="When to stop denoising, a fraction of the steps"
    )
    scheduler: SchedulerName = InputField(
        default="euler", description="Scheduler to use during inference"
    )
    unet: UNetField = InputField(
        description="UNet (scheduler, LoRAs)", input=Input.CONNECTION, title="UNet"
    )
    cfg_rescale_multiplier: float = InputField(
        default=0,
        ge=0,
        lt=1,
        title="CFG Rescale Multiplier",
        description="Rescale multiplier for CFG guidance",
    )
    control: Any | None = InputField(default=None, input=Input.CONNECTION)

    def invoke(self, ctx: Context) -> LatentsOutput:
        if ctx.models is None:
            raise ValueError(f"node {self.id!r}: no model service to load the UNet")
        tiling = (
            self.tile_height // LATENT_SCALE,
            self.tile_width // LATENT_SCALE,
            self.tile_overlap // LATENT_SCALE,
        )
        if tiling[2] >= min(tiling[:2]):
            raise ValueError(
                f"node {self.id!r}: tile_overlap {self.tile_overlap} must be smaller than the "
                f"tiles ({self.tile_width}x{self.tile_height})"
            )
        inner = DenoiseLatentsNode(
            id=self.id,
            positive_conditioning=self.positive_conditioning,
            negative_conditioning=self.negative_conditioning,
            noise=self.noise,
            latents=self.latents,
            steps=self.steps,
            cfg_scale=self.cfg_scale,
            denoising_start=self.denoising_start,
            denoising_end=self.denoising_end,
            scheduler=self.scheduler,
            unet=self.unet,
            cfg_rescale_multiplier=self.cfg_rescale_multiplier,
            control=self.control,
        )
        models = _TiledModels(ctx.models, self.unet.unet.key, tiling)
        return inner.invoke(_TiledContext(ctx, models))  # type: ignore[arg-type]
