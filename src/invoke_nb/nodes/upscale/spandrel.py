"""Image-to-image models (upscalers and restorers that ``spandrel`` loads), as InvokeAI
6.11.1's ``spandrel_image_to_image``, ``spandrel_image_to_image_autoscale`` and ``esrgan``.

Large images are cut into square tiles overlapping by at least 20 pixels; each tile goes
through the model on its own, and its output is pasted from the middle of each overlap on,
so later tiles cover the (weaker) borders of earlier ones. ``tile_size=0`` runs the whole
image at once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image

from invoke_nb.nodes.base import InputField, UIHint, node
from invoke_nb.nodes.primitives import ImageOutput, ImageSavingNode
from invoke_nb.nodes.types import ImageField, ModelIdentifierField
from invoke_nb.nodes.upscale.tile_math import TBLR, Tile, tiles_min_overlap

if TYPE_CHECKING:
    from invoke_nb.nodes.context import Context

__all__ = ["upscale_image"]

MIN_OVERLAP = 20
MAX_AUTOSCALE_PASSES = 5


def _layout(image: Image.Image, tile_size: int) -> list[Tile]:
    if 0 < tile_size < max(image.width, image.height):
        # (an image inside one tile runs whole: InvokeAI divides by zero on images no
        # larger than the 20 px overlap)
        tiles = tiles_min_overlap(image.height, image.width, tile_size, tile_size, MIN_OVERLAP)
    else:
        full = TBLR(top=0, bottom=image.height, left=0, right=image.width)
        tiles = [Tile(coords=full, overlap=TBLR(top=0, bottom=0, left=0, right=0))]
    return sorted(tiles, key=lambda t: (t.coords.top, t.coords.left))


def upscale_image(
    image: Image.Image,
    model: Any,
    tile_size: int,
    on_tile: Callable[[int, int], None] | None = None,
) -> Image.Image:
    """Run a spandrel ``ImageModelDescriptor`` over ``image`` tile by tile (see the module
    docstring); ``on_tile(done, total)`` is called after each tile (raise there to stop)."""
    import torch

    tiles = _layout(image, tile_size)
    scale = int(model.scale)
    param = next(model.model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    x = torch.from_numpy(pixels).permute(2, 0, 1)[None].to(device=device, dtype=dtype)
    out = np.zeros((image.height * scale, image.width * scale, 3), dtype=np.uint8)
    with torch.no_grad():
        for i, t in enumerate(tiles):
            c = t.coords
            y = model(x[:, :, c.top : c.bottom, c.left : c.right])[0]
            y = (y.permute(1, 2, 0).clamp(0, 1) * 255).to(torch.uint8).cpu().numpy()
            skip_top, skip_left = t.overlap.top * scale // 2, t.overlap.left * scale // 2
            out[
                c.top * scale + skip_top : c.bottom * scale,
                c.left * scale + skip_left : c.right * scale,
            ] = y[skip_top:, skip_left:]
            if on_tile is not None:
                on_tile(i + 1, len(tiles))
    return Image.fromarray(out)


def _load(ctx: Context, node_id: str, ident: Any) -> Any:
    if ctx.models is None:
        raise ValueError(f"node {node_id!r}: no model service to load an image-to-image model")
    rec = ctx.models.record(ident)
    if rec.type != "spandrel_image_to_image":
        raise ValueError(
            f"node {node_id!r}: image_to_image_model {rec.name!r} is a {rec.type!r} model, "
            "not an image-to-image (spandrel_image_to_image) model"
        )
    return ctx.models.load(ident)


def _progress(ctx: Context, label: str) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        ctx.check_cancelled()
        ctx.progress(step=done, total=total, message=f"{label}tile {done}/{total}")

    return report


_MODEL_DESC = "Image-to-Image model"
_TILE_DESC = "The tile size for tiled image-to-image. Set to 0 to disable tiling."


@node(
    "spandrel_image_to_image",
    title="Image-to-Image",
    category="upscale",
    tags=["upscale"],
    version="1.3.0",
)
class SpandrelImageToImageNode(ImageSavingNode):
    """Runs any spandrel image-to-image model (ESRGAN, SwinIR, ...) over an image."""

    image: ImageField = InputField(description="The input image")
    image_to_image_model: ModelIdentifierField = InputField(
        title="Image-to-Image Model",
        description=_MODEL_DESC,
        ui_hint=UIHint.MODEL,
        ui_model_type=["spandrel_image_to_image"],
    )
    tile_size: int = InputField(default=512, description=_TILE_DESC)

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image, mode="RGB")
        with _load(ctx, self.id, self.image_to_image_model) as model:
            result = upscale_image(image, model, self.tile_size, _progress(ctx, ""))
        return self.save_image(ctx, result)


@node(
    "spandrel_image_to_image_autoscale",
    title="Image-to-Image (Autoscale)",
    category="upscale",
    tags=["upscale"],
    version="1.0.0",
)
class SpandrelImageToImageAutoscaleNode(ImageSavingNode):
    """Runs an upscaler as many times as needed (at most 5) to reach ``scale``, then resizes
    to exactly ``scale`` times the input (Lanczos). A model that does not enlarge runs once."""

    image: ImageField | None = InputField(description="The input image")
    image_to_image_model: ModelIdentifierField | None = InputField(
        title="Image-to-Image Model",
        description=_MODEL_DESC,
        ui_hint=UIHint.MODEL,
        ui_model_type=["spandrel_image_to_image"],
    )
    tile_size: int = InputField(default=512, description=_TILE_DESC)
    scale: float = InputField(
        default=4.0, gt=0.0, le=16.0, description="The final scale of the output image."
    )
    fit_to_multiple_of_8: bool = InputField(
        default=False, description="Resize the output to the nearest multiple of 8 (down)."
    )

    def invoke(self, ctx: Context) -> ImageOutput:
        if self.image is None or self.image_to_image_model is None:
            missing = "image" if self.image is None else "image_to_image_model"
            raise ValueError(f"node {self.id!r}: {missing} is required")
        image = ctx.images.get_pil(self.image, mode="RGB")
        target = (int(image.width * self.scale), int(image.height * self.scale))
        with _load(ctx, self.id, self.image_to_image_model) as model:
            result = upscale_image(image, model, self.tile_size, _progress(ctx, "pass 1, "))
            if result.width > image.width and result.height > image.height:
                passes = 1
                while (result.width < target[0] or result.height < target[1]) and (
                    passes < MAX_AUTOSCALE_PASSES
                ):
                    passes += 1
                    report = _progress(ctx, f"pass {passes}, ")
                    result = upscale_image(result, model, self.tile_size, report)
            else:
                target = result.size  # not an upscaler: no resize to a scale it cannot reach
        if self.fit_to_multiple_of_8:
            target = (target[0] // 8 * 8, target[1] // 8 * 8)
        return self.save_image(ctx, result.resize(target, resample=Image.Resampling.LANCZOS))


ESRGAN_URLS = {
    "RealESRGAN_x4plus.pth": "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.0/RealESRGAN_x4plus.pth",
    "RealESRGAN_x4plus_anime_6B.pth": "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.2.4/RealESRGAN_x4plus_anime_6B.pth",
    "ESRGAN_SRx4_DF2KOST_official-ff704c30.pth": "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.1/ESRGAN_SRx4_DF2KOST_official-ff704c30.pth",
    "RealESRGAN_x2plus.pth": "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.1/RealESRGAN_x2plus.pth",
}
"""Where InvokeAI downloads the ``esrgan`` node's four models from."""


def _installed_esrgan(ctx: Context, node_id: str, file_name: str) -> Any:
    """The identifier of the installed spandrel model called ``file_name`` (its record
    name with or without ``.pth``, or its file name)."""
    from invoke_nb.models.local import identifier

    if ctx.models is not None:
        lister = getattr(ctx.models, "list", None) or ctx.models.store.list
        for rec in lister(type="spandrel_image_to_image"):
            names = (rec.name, f"{rec.name}.pth", PurePath(rec.path).name)
            if file_name in names or rec.name == PurePath(file_name).stem:
                return identifier(rec)
    raise ValueError(
        f"node {node_id!r}: the esrgan model {file_name!r} is not installed; install it once "
        f"with studio.models.install({ESRGAN_URLS[file_name]!r}, allow_unsafe=True) "
        "(a pickle file) or install a .safetensors copy under that name"
    )


@node(
    "esrgan",
    title="Upscale (RealESRGAN)",
    category="esrgan",
    tags=["esrgan", "upscale"],
    version="1.3.2",
)
class ESRGANNode(ImageSavingNode):
    """Upscales with one of the four Real-ESRGAN models InvokeAI offers, found among the
    installed image-to-image models by file name."""

    image: ImageField = InputField(description="The input image")
    model_name: Literal[
        "RealESRGAN_x4plus.pth",
        "RealESRGAN_x4plus_anime_6B.pth",
        "ESRGAN_SRx4_DF2KOST_official-ff704c30.pth",
        "RealESRGAN_x2plus.pth",
    ] = InputField(default="RealESRGAN_x4plus.pth", description="The Real-ESRGAN model to use")
    tile_size: int = InputField(
        default=400, ge=0, description="Tile size for tiled ESRGAN upscaling (0=tiling disabled)"
    )

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image, mode="RGB")
        ident = _installed_esrgan(ctx, self.id, self.model_name)
        with ctx.models.load(ident) as model:
            result = upscale_image(image, model, self.tile_size, _progress(ctx, ""))
        return self.save_image(ctx, result.convert("RGBA"))
