"""``normal_map``: surface normals from the Normal BAE network (``scannet.pt`` from
``lllyasviel/Annotators``, installed on first use), coloured as InvokeAI 6.11.1 does:
x, y, z in [-1, 1] mapped to RGB levels."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from invoke_nb.nodes.base import InputField, node
from invoke_nb.nodes.preprocessors.edges import ANNOTATORS
from invoke_nb.nodes.preprocessors.weights import preprocessor_file
from invoke_nb.nodes.primitives import ImageOutput, ImageSavingNode
from invoke_nb.nodes.types import ImageField

if TYPE_CHECKING:
    from invoke_nb.nodes.context import Context

__all__ = ["normal_colours"]

_MEAN = (0.485, 0.456, 0.406)  # ImageNet statistics the trunk was trained with
_STD = (0.229, 0.224, 0.225)


def normal_colours(image: Image.Image, net: Any) -> Image.Image:
    """The network on the image resized (area) to a width that is a multiple of 8 (height in
    proportion, floored to a multiple of 8), its normals coloured and resized (bilinear) back."""
    import cv2
    import torch

    arr = np.asarray(image.convert("RGB"))
    h, w = arr.shape[:2]
    fw = (w // 8) * 8
    fh = int(fw / w * h)
    fh -= fh % 8
    if fw == 0 or fh == 0:
        raise ValueError(f"normal_map needs an image of at least 8x8 pixels, got {w}x{h}")
    small = cv2.resize(arr, (fw, fh), interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(small).float() / 255.0
    mean, std = torch.tensor(_MEAN).view(3, 1, 1), torch.tensor(_STD).view(3, 1, 1)
    x = ((x.permute(2, 0, 1) - mean) / std)[None].to(next(net.parameters()).device)
    with torch.no_grad():
        normal = ((net(x)[0, :3] + 1) * 0.5).clip(0, 1)
    colours = (normal.permute(1, 2, 0).cpu().numpy() * 255.0).clip(0, 255).astype(np.uint8)
    return Image.fromarray(cv2.resize(colours, (w, h), interpolation=cv2.INTER_LINEAR))


@node(
    "normal_map",
    title="Normal Map",
    category="controlnet",
    tags=["controlnet", "normal"],
    version="1.0.0",
)
class NormalMapNode(ImageSavingNode):
    """A surface-normal map of the image (Normal BAE)."""

    image: ImageField = InputField(description="The image to process")

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image, mode="RGB")
        ident = preprocessor_file(
            ctx, self.id, "normal_map", ANNOTATORS, "scannet.pt", "normal_bae"
        )
        with ctx.models.load(ident) as net:
            return self.save_image(ctx, normal_colours(image, net))
