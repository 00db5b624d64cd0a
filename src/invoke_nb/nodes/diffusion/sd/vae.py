"""SD VAE nodes: ``l2i`` (decode) and ``i2l`` (encode), with the precision, tiling and
out-of-memory fallbacks they share."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    import torch
from PIL import Image

from invoke_nb.nodes.base import Input, InputField, Node, node
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.devices import execution_device, precision_name
from invoke_nb.nodes.diffusion.fields import (
    LATENT_SCALE_FACTOR,
    LatentsOutput,
    VAEField,
)
from invoke_nb.nodes.diffusion.sd.latents import image_to_tensor
from invoke_nb.nodes.diffusion.sd.patches import seamless
from invoke_nb.nodes.primitives import ImageOutput
from invoke_nb.nodes.types import (
    BoardField,
    ImageField,
    LatentsField,
)

log = logging.getLogger("invoke_nb.nodes.latents")
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
def vae_tiling(vae: Any, tiled: bool, tile_size: int):
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

    with vae_tiling(vae, tiled, tile_size):
        try:
            return fn()
        except torch.OutOfMemoryError:
            if tiled:
                raise
    from invoke_nb.models.devices import empty_cache

    log.warning("VAE ran out of memory on %s: retrying in tiles", device)
    empty_cache(device)
    with vae_tiling(vae, True, tile_size):
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
