"""``pbr_maps``: normal, roughness and displacement maps of a material from two 1x RRDB
networks (``InvokeAI/pbr-material-maps``, installed on first use), with InvokeAI 6.11.1's
border padding and tiling."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image

from invoke_nb.nodes.base import InputField, Output, OutputField, node, output
from invoke_nb.nodes.preprocessors.weights import preprocessor_file
from invoke_nb.nodes.primitives import ImageSavingNode
from invoke_nb.nodes.types import ImageField

if TYPE_CHECKING:
    from invoke_nb.nodes.context import Context

__all__ = ["PBR_REPO", "pbr_maps"]

PBR_REPO = "InvokeAI/pbr-material-maps"
PBR_FILES = ("normal_map_generator.safetensors", "franken_map_generator.safetensors")
_BORDER = 16  # pixels of padding added, then cut, by the border modes
BorderMode = Literal["none", "seamless", "mirror", "replicate"]


def _run(net: Any, tile: np.ndarray) -> np.ndarray:
    """One pass: the networks take BGR in 0-1; the result is RGB levels (rounded floats)."""
    import torch

    bgr = tile.astype(np.float32)[..., ::-1] / 255.0
    x = torch.from_numpy(bgr.copy()).permute(2, 0, 1)[None].to(next(net.parameters()).device)
    with torch.no_grad():
        out = net(x)[0].float().cpu().clamp_(0, 1).numpy()
    return (out[[2, 1, 0]].transpose(1, 2, 0) * 255.0).round()


def _tiled(arr: np.ndarray, net: Any, tile: int) -> np.ndarray:
    """Square tiles of ``tile`` pixels, each run with an eighth of a tile of context on
    every side (clipped at the image) and only its own area kept."""
    h, w = arr.shape[:2]
    pad = math.ceil(tile * 0.125)
    out = np.zeros(arr.shape, np.uint8)
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            py0, px0 = max(y0 - pad, 0), max(x0 - pad, 0)
            res = _run(net, arr[py0 : min(y1 + pad, h), px0 : min(x1 + pad, w)])
            out[y0:y1, x0:x1] = res[y0 - py0 : y1 - py0, x0 - px0 : x1 - px0]
    return out


def pbr_maps(
    image: Image.Image, normal_net: Any, other_net: Any, tile_size: int, border_mode: BorderMode
) -> tuple[Image.Image, Image.Image, Image.Image]:
    """(normal, roughness, displacement): the normal net's output, and the second net's
    green and blue channels. Images larger than ``tile_size`` run in tiles."""
    import cv2

    arr = np.asarray(image.convert("RGB")).astype(np.uint8)
    borders = {
        "seamless": cv2.BORDER_WRAP,
        "mirror": cv2.BORDER_REFLECT_101,
        "replicate": cv2.BORDER_REPLICATE,
    }
    if border_mode in borders:
        arr = cv2.copyMakeBorder(arr, *[_BORDER] * 4, borders[border_mode])
    h, w = arr.shape[:2]
    if h > tile_size or w > tile_size:
        maps = [_tiled(arr, net, tile_size) for net in (normal_net, other_net)]
    else:
        maps = [_run(net, arr) for net in (normal_net, other_net)]
    if border_mode != "none":
        maps = [m[_BORDER : h - _BORDER, _BORDER : w - _BORDER] for m in maps]

    def to_pil(a: np.ndarray) -> Image.Image:  # InvokeAI swaps red and blue back here
        return Image.fromarray(cv2.cvtColor(a.astype(np.uint8), cv2.COLOR_RGB2BGR))

    return to_pil(maps[0]), to_pil(maps[1][:, :, 1]), to_pil(maps[1][:, :, 0])


@output("pbr_maps-output")
class PbrMapsOutput(Output):
    """The three material maps."""

    normal_map: ImageField = OutputField(description="The generated normal map")
    roughness_map: ImageField = OutputField(description="The generated roughness map")
    displacement_map: ImageField = OutputField(description="The generated displacement map")


@node("pbr_maps", title="PBR Maps", category="image", tags=["image", "material"], version="1.0.0")
class PbrMapsNode(ImageSavingNode):
    """Generate Normal, Displacement and Roughness Map from a given image"""

    image: ImageField = InputField(description="Input image")
    tile_size: int = InputField(default=512, description="Tile size")
    border_mode: BorderMode = InputField(
        default="none", description="Border mode to apply to eliminate any artifacts or seams"
    )

    def invoke(self, ctx: Context) -> PbrMapsOutput:
        if self.tile_size < 1:
            raise ValueError(f"node {self.id!r} (pbr_maps): tile_size must be >= 1")
        image = ctx.images.get_pil(self.image, mode="RGB")
        idents = [
            preprocessor_file(ctx, self.id, "pbr_maps", PBR_REPO, name, "pbr_maps")
            for name in PBR_FILES
        ]
        with ctx.models.load(idents[0]) as normal_net, ctx.models.load(idents[1]) as other_net:
            maps = pbr_maps(image, normal_net, other_net, self.tile_size, self.border_mode)
        normal, rough, disp = (self.save_image(ctx, m).image for m in maps)
        return PbrMapsOutput(normal_map=normal, roughness_map=rough, displacement_map=disp)
