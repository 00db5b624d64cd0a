"""FLUX Kontext: reference images the transformer reads beside the image it makes.

``flux_kontext`` bundles one reference image; ``flux_kontext_image_prep`` resizes the first
image to the nearest resolution Kontext was trained on (diffusers' list) and appends the
others at the same height. ``flux_denoise`` encodes each reference with the VAE (the mode of
its latent distribution), packs it, gives its tokens position index 1 (tiled beside or
below the previous ones, as InvokeAI and ComfyUI do) and appends them to the sequence; the
prediction for them is dropped each step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PIL import Image

from invoke_nb.nodes.base import Input, InputField, Node, Output, OutputField, node, output
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.flux.fields import FluxKontextConditioningField
from invoke_nb.nodes.primitives import ImageOutput
from invoke_nb.nodes.types import BoardField, ImageField

if TYPE_CHECKING:
    import torch

__all__ = [
    "FluxKontextConcatenateImagesNode",
    "FluxKontextNode",
    "FluxKontextOutput",
    "kontext_sequence",
]


@output("flux_kontext_output")
class FluxKontextOutput(Output):
    """The conditioning output of a FLUX Kontext invocation."""

    kontext_cond: FluxKontextConditioningField = OutputField(
        description="FLUX Kontext conditioning (reference image)", title="Kontext Conditioning"
    )


@node(
    "flux_kontext",
    title="Kontext Conditioning - FLUX",
    category="conditioning",
    tags=["conditioning", "kontext", "flux"],
    version="1.0.0",
)
class FluxKontextNode(Node):
    """Prepares a reference image for FLUX Kontext conditioning."""

    image: ImageField = InputField(description="The Kontext reference image.")

    def invoke(self, ctx: Context) -> FluxKontextOutput:
        return FluxKontextOutput(kontext_cond=FluxKontextConditioningField(image=self.image))


def _first_size(width: int, height: int, preferred: bool) -> tuple[int, int]:
    if not preferred:
        return max(16, 16 * (width // 16)), max(16, 16 * (height // 16))
    from diffusers.pipelines.flux.pipeline_flux_kontext import PREFERRED_KONTEXT_RESOLUTIONS

    ratio = width / height
    _, w, h = min((abs(ratio - w / h), w, h) for w, h in PREFERRED_KONTEXT_RESOLUTIONS)
    return 16 * int(w / 16), 16 * int(h / 16)


@node(
    "flux_kontext_image_prep",
    title="FLUX Kontext Image Prep",
    category="image",
    tags=["image", "concatenate", "flux", "kontext"],
    version="1.0.0",
)
class FluxKontextConcatenateImagesNode(Node):
    """Prepares an image or images for use with FLUX Kontext. The first/single image is
    resized to the nearest preferred Kontext resolution. All other images are concatenated
    horizontally, maintaining their aspect ratio."""

    board: BoardField | None = InputField(
        default=None, description="The board to save the image to", input=Input.DIRECT
    )
    metadata: dict[str, Any] | None = InputField(
        default=None,
        description="Optional metadata to be saved with the image",
        input=Input.CONNECTION,
    )
    images: list[ImageField] = InputField(
        description="The images to concatenate", min_length=1, max_length=10
    )
    use_preferred_resolution: bool = InputField(
        default=True, description="Use FLUX preferred resolutions for the first image"
    )

    def invoke(self, ctx: Context) -> ImageOutput:
        pils = [ctx.images.get_pil(ref, mode="RGB") for ref in self.images]
        first_w, height = _first_size(*pils[0].size, self.use_preferred_resolution)
        parts = [pils[0].resize((first_w, height), Image.Resampling.LANCZOS)]
        for pil in pils[1:]:
            w = max(16, 16 * (int(height * pil.width / pil.height) // 16))
            parts.append(pil.resize((w, height), Image.Resampling.LANCZOS))
        out = Image.new("RGB", (sum(p.width for p in parts), height))
        x = 0
        for p in parts:
            out.paste(p, (x, 0))
            x += p.width
        ref = ctx.images.save(
            out,
            metadata=self.metadata,
            board_id=self.board.board_id if self.board is not None else None,
        )
        return ImageOutput(image=ref, width=out.width, height=out.height)


def kontext_sequence(den: Any, ctx: Context, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Packed reference tokens (1, n, 64) and their position ids (n, 3) for ``flux_denoise``."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from invoke_nb.nodes.diffusion.flux import sampling

    refs = den.kontext_conditioning
    refs = refs if isinstance(refs, list) else [refs]
    tokens, ids = [], []
    canvas_h = canvas_w = 0
    with ctx.models.load(den.controlnet_vae.vae) as vae, torch.inference_mode():
        dtype = next(vae.parameters()).dtype
        for i, ref in enumerate(refs):
            pil = ctx.images.get_pil(ref.image, mode="RGB")
            t = torch.from_numpy(np.asarray(pil, dtype=np.float32) / 255.0 * 2.0 - 1.0)
            t = t.permute(2, 0, 1)[None].to(device, dtype)
            z = vae.encode(t).latent_dist.mode()
            z = ((z - vae.config.shift_factor) * vae.config.scaling_factor).float()
            h, w = z.shape[-2:]
            if h % 2 or w % 2:
                z = F.pad(z, (0, w % 2, 0, h % 2), mode="circular")
                h, w = z.shape[-2:]
            h_off = w_off = 0
            if i == 0:
                canvas_h, canvas_w = h, w
            elif canvas_h + h > canvas_w + w:  # tile to the right
                w_off, canvas_w, canvas_h = canvas_w, canvas_w + w, max(canvas_h, h)
            else:  # tile below
                h_off, canvas_h, canvas_w = canvas_h, canvas_h + h, max(canvas_w, w)
            pos = sampling.image_ids(h, w, device).reshape(h // 2, w // 2, 3)
            pos[..., 0] = 1
            pos[..., 1] += h_off // 2
            pos[..., 2] += w_off // 2
            tokens.append(sampling.pack(z))
            ids.append(pos.reshape(-1, 3))
    return torch.cat(tokens, dim=1), torch.cat(ids, dim=0)
