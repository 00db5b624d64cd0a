"""``z_image_control`` and the ControlNet pass ``z_image_denoise`` runs with it.

The control model is diffusers' ``ZImageControlNetModel`` (VideoX-Fun's Z-Image-Turbo
ControlNet Union layout). It borrows the base transformer's embedders and refiners for
the duration of a run (attached and detached here, so the cached control model never
keeps the transformer alive) and returns per-layer hints the transformer adds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from PIL import Image

from invoke_nb.nodes.base import InputField, Node, UIHint, node
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.cogview4.loader import check_base
from invoke_nb.nodes.diffusion.z_image.fields import ZImageControlField, ZImageControlOutput
from invoke_nb.nodes.types import ImageField, ModelIdentifierField

__all__ = ["ZImageControlNode", "attached", "control_latents", "step_applies"]

_BORROWED = (
    "t_scale",
    "t_embedder",
    "all_x_embedder",
    "cap_embedder",
    "rope_embedder",
    "noise_refiner",
    "context_refiner",
    "x_pad_token",
    "cap_pad_token",
)


@contextmanager
def attached(controlnet: Any, transformer: Any) -> Iterator[Any]:
    """``controlnet`` wired to ``transformer``'s shared parts inside the block."""
    from diffusers import ZImageControlNetModel

    ZImageControlNetModel.from_transformer(controlnet, transformer)
    try:
        yield controlnet
    finally:
        for name in _BORROWED:
            setattr(controlnet, name, None)


def step_applies(step: int, total: int, begin: float, end: float) -> bool:
    """InvokeAI's rule: the control runs where ``begin <= step/total <= end``."""
    return True if total == 0 else begin <= step / total <= end


def control_latents(
    vae: Any, image: Image.Image, width: int, height: int, in_dim: int, seeding: str, device: Any
) -> torch.Tensor:
    """The control image resized to the output, VAE-encoded (distribution mean), scaled and
    shifted, padded to the model's ``control_in_dim``: (C, 1, h, w).

    Padding: InvokeAI gives a 33-channel (V2.0) model 16 zero reference channels and a mask
    channel of ones ("use the control, do not inpaint"); ``ZImageControlNetPipeline`` pads
    with zeros only (``seeding="diffusers"``).
    """
    import torch

    from invoke_nb.nodes.diffusion.sd.latents import image_to_tensor

    image = image.convert("RGB")
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    t = image_to_tensor(image).unsqueeze(0)
    dtype = next(vae.parameters()).dtype
    with torch.inference_mode():
        mean = vae.encode(t.to(device, dtype)).latent_dist.mode()
    shift = getattr(vae.config, "shift_factor", None) or 0.0
    lat = ((mean - shift) * vae.config.scaling_factor).float()[0].unsqueeze(1)
    c, f, h, w = lat.shape
    pad = in_dim - c
    if pad > 0:
        if pad == 17 and seeding == "invokeai":
            extra = torch.cat([lat.new_zeros((16, f, h, w)), lat.new_ones((1, f, h, w))])
        else:
            extra = lat.new_zeros((pad, f, h, w))
        lat = torch.cat([lat, extra])
    return lat


@node(
    "z_image_control",
    title="Z-Image ControlNet",
    category="control",
    tags=["image", "z-image", "control", "controlnet"],
    version="1.1.0",
)
class ZImageControlNode(Node):
    """Configure Z-Image ControlNet for spatial conditioning."""

    image: ImageField = InputField(
        description="The preprocessed control image (Canny, HED, Depth, Pose, or MLSD)"
    )
    control_model: ModelIdentifierField = InputField(
        description="ControlNet model to load",
        title="Control Model",
        ui_hint=UIHint.MODEL,
        ui_model_base=["z-image"],
        ui_model_type=["controlnet"],
    )
    control_context_scale: float = InputField(
        default=0.75,
        ge=0.0,
        le=2.0,
        description="Strength of the control signal. Recommended range: 0.65-0.80.",
        title="Control Scale",
    )
    begin_step_percent: float = InputField(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="When the control is first applied (% of total steps)",
    )
    end_step_percent: float = InputField(
        default=1.0,
        ge=0.0,
        le=1.0,
        description="When the control is last applied (% of total steps)",
    )

    def invoke(self, ctx: Context) -> ZImageControlOutput:
        model = check_base(ctx, self.control_model, "control_model", "z-image", ("controlnet",))
        if self.begin_step_percent > self.end_step_percent:
            raise ValueError(
                f"node {ctx.node_id!r} (z_image_control): begin_step_percent "
                f"{self.begin_step_percent} is after end_step_percent {self.end_step_percent}"
            )
        return ZImageControlOutput(
            control=ZImageControlField(
                image_name=self.image.image_name,
                control_model=model,
                control_context_scale=self.control_context_scale,
                begin_step_percent=self.begin_step_percent,
                end_step_percent=self.end_step_percent,
            )
        )
