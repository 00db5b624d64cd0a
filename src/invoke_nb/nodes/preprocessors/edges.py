"""Edge preprocessors that run a network: ``hed_edge_detection``, ``pidi_edge_detection``,
``lineart_edge_detection``, ``lineart_anime_edge_detection``.

Each node reads its image as RGB, runs the annotator network installed through the model
manager on first use (the files InvokeAI fetches from ``lllyasviel/Annotators``), and
applies InvokeAI 6.11.1's pre- and post-processing, so maps match InvokeAI's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from invoke_nb.nodes.base import InputField, node
from invoke_nb.nodes.preprocessors.weights import preprocessor_file
from invoke_nb.nodes.primitives import ImageOutput, ImageSavingNode
from invoke_nb.nodes.types import ImageField

if TYPE_CHECKING:
    from invoke_nb.nodes.context import Context

__all__ = [
    "ANNOTATORS",
    "hed_edges",
    "lineart_anime_edges",
    "lineart_edges",
    "nms",
    "pidi_edges",
    "safe_step",
    "scribble",
]

ANNOTATORS = "lllyasviel/Annotators"


def _cv2():  # imported lazily: `import invoke_nb` must stay light
    import cv2

    return cv2


def _device(net: Any) -> Any:
    return next(net.parameters()).device


def nms(img: np.ndarray, threshold: int, sigma: float) -> np.ndarray:
    """Thin edges: blur, keep the pixels that are maxima along one of four directions (the
    dilation by a 3-pixel line leaves them unchanged), then binarise above ``threshold``."""
    cv2 = _cv2()
    img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), sigma)
    lines = [np.zeros((3, 3), np.uint8) for _ in range(4)]
    lines[0][1, :] = 1
    lines[1][:, 1] = 1
    np.fill_diagonal(lines[2], 1)
    np.fill_diagonal(np.fliplr(lines[3]), 1)
    kept = np.zeros_like(img)
    for line in lines:
        np.putmask(kept, cv2.dilate(img, kernel=line) == img, img)
    return np.where(kept > threshold, 255, 0).astype(np.uint8)


def scribble(edges: np.ndarray) -> np.ndarray:
    """The scribble look of ControlNet's annotators: thin, blur, and keep any trace."""
    cv2 = _cv2()
    out = cv2.GaussianBlur(nms(edges, 127, 3.0), (0, 0), 3.0)
    return np.where(out > 4, 255, 0).astype(np.uint8)


def safe_step(x: np.ndarray, step: int = 2) -> np.ndarray:
    """Quantise [0, 1] values into ``step + 1`` levels (truncating), scaled by 1/step."""
    levels = (x.astype(np.float32) * float(step + 1)).astype(np.int32)
    return levels.astype(np.float32) / float(step)


def hed_edges(image: Image.Image, net: Any, scribble_mode: bool = False) -> Image.Image:
    """HED at the image's own size: the five side logits upsampled (bilinear), averaged and
    squashed by a sigmoid into a grey map."""
    import torch

    cv2 = _cv2()
    arr = np.asarray(image.convert("RGB"))
    h, w = arr.shape[:2]
    with torch.no_grad():
        x = torch.from_numpy(arr.copy()).float().permute(2, 0, 1)[None].to(_device(net))
        sides = [s[0, 0].cpu().numpy().astype(np.float32) for s in net(x)]
    sides = [cv2.resize(s, (w, h), interpolation=cv2.INTER_LINEAR) for s in sides]
    mean = np.mean(np.stack(sides, axis=2), axis=2).astype(np.float64)
    edges = (1.0 / (1.0 + np.exp(-mean)) * 255.0).clip(0, 255).astype(np.uint8)
    return Image.fromarray(scribble(edges) if scribble_mode else edges)


@node(
    "hed_edge_detection",
    title="HED Edge Detection",
    category="controlnet",
    tags=["controlnet", "hed", "softedge"],
    version="1.0.0",
)
class HedEdgeDetectionNode(ImageSavingNode):
    """A soft edge map from the HED network."""

    image: ImageField = InputField(description="The image to process")
    scribble: bool = InputField(default=False, description="Whether or not to use scribble mode")

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image, mode="RGB")
        ident = preprocessor_file(
            ctx, self.id, "hed_edge_detection", ANNOTATORS, "ControlNetHED.pth", "hed"
        )
        with ctx.models.load(ident) as net:
            return self.save_image(ctx, hed_edges(image, net, self.scribble))


def pidi_edges(
    image: Image.Image, net: Any, quantize_edges: bool = False, scribble_mode: bool = False
) -> Image.Image:
    """PiDiNet's fused map (the network takes BGR in 0-1), optionally quantised to three
    levels, as a grey map at the image's size."""
    import torch

    bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
    with torch.no_grad():
        x = torch.from_numpy(bgr).float().to(_device(net)) / 255.0
        edge = net(x.permute(2, 0, 1)[None])[-1][0, 0].cpu().numpy()
    if quantize_edges:
        edge = safe_step(edge)
    edges = (edge * 255.0).clip(0, 255).astype(np.uint8)
    return Image.fromarray(scribble(edges) if scribble_mode else edges)


@node(
    "pidi_edge_detection",
    title="PiDiNet Edge Detection",
    category="controlnet",
    tags=["controlnet", "edge"],
    version="1.0.0",
)
class PidiEdgeDetectionNode(ImageSavingNode):
    """An edge map from PiDiNet (pixel difference network)."""

    image: ImageField = InputField(description="The image to process")
    quantize_edges: bool = InputField(default=False, description="Whether or not to use safe mode")
    scribble: bool = InputField(default=False, description="Whether or not to use scribble mode")

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image, mode="RGB")
        ident = preprocessor_file(
            ctx, self.id, "pidi_edge_detection", ANNOTATORS, "table5_pidinet.pth", "pidi"
        )
        with ctx.models.load(ident) as net:
            edges = pidi_edges(image, net, self.quantize_edges, self.scribble)
        return self.save_image(ctx, edges)


def _light_lines(line: np.ndarray) -> Image.Image:
    """Dark lines on white (0-255 floats) inverted to light lines on black; levels below 12
    (the near-black noise SDXL ControlNets dislike, InvokeAI's threshold) set to 0."""
    lines = 255 - line.clip(0, 255).astype(np.uint8)
    lines[lines < 12] = 0
    return Image.fromarray(lines)


def lineart_edges(image: Image.Image, net: Any) -> Image.Image:
    """The lineart generator on the image as 0-1 RGB, at the image's size."""
    import torch

    arr = np.asarray(image.convert("RGB"))
    with torch.no_grad():
        x = torch.from_numpy(arr.copy()).float().to(_device(net)) / 255.0
        line = net(x.permute(2, 0, 1)[None])[0, 0].cpu().numpy()
    return _light_lines(line * 255.0)


def lineart_anime_edges(image: Image.Image, net: Any) -> Image.Image:
    """The anime U-Net on the image stretched (bicubic) to sides a multiple of 256 and scaled
    to [-1, 1]; its map is stretched back to the image's size."""
    import torch

    cv2 = _cv2()
    arr = np.asarray(image.convert("RGB"))
    h, w = arr.shape[:2]
    big = cv2.resize(arr, (-(-w // 256) * 256, -(-h // 256) * 256), interpolation=cv2.INTER_CUBIC)
    with torch.no_grad():
        x = torch.from_numpy(big).float().to(_device(net)) / 127.5 - 1.0
        line = (net(x.permute(2, 0, 1)[None])[0, 0] * 127.5 + 127.5).cpu().numpy()
    return _light_lines(cv2.resize(line, (w, h), interpolation=cv2.INTER_CUBIC))


@node(
    "lineart_edge_detection",
    title="Lineart Edge Detection",
    category="controlnet",
    tags=["controlnet", "lineart"],
    version="1.0.0",
)
class LineartEdgeDetectionNode(ImageSavingNode):
    """A line drawing of the image from the lineart network (fine or coarse)."""

    image: ImageField = InputField(description="The image to process")
    coarse: bool = InputField(default=False, description="Whether to use coarse mode")

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image, mode="RGB")
        name = "sk_model2.pth" if self.coarse else "sk_model.pth"
        ident = preprocessor_file(
            ctx, self.id, "lineart_edge_detection", ANNOTATORS, name, "lineart"
        )
        with ctx.models.load(ident) as net:
            return self.save_image(ctx, lineart_edges(image, net))


@node(
    "lineart_anime_edge_detection",
    title="Lineart Anime Edge Detection",
    category="controlnet",
    tags=["controlnet", "lineart"],
    version="1.0.0",
)
class LineartAnimeEdgeDetectionNode(ImageSavingNode):
    """A line drawing of the image from the anime lineart network."""

    image: ImageField = InputField(description="The image to process")

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image, mode="RGB")
        ident = preprocessor_file(
            ctx, self.id, "lineart_anime_edge_detection", ANNOTATORS, "netG.pth", "lineart_anime"
        )
        with ctx.models.load(ident) as net:
            return self.save_image(ctx, lineart_anime_edges(image, net))
