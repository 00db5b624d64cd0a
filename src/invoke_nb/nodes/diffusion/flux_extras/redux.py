"""FLUX Redux: an image prompt as extra text tokens.

SigLIP (found by InvokeAI's name for it, as InvokeAI finds it) encodes the image to patch
features; the Redux projector maps them into T5's token space; ``flux_denoise`` appends the
tokens to the positive prompt's T5 sequence. ``downsampling_factor`` pools the token grid
and ``weight`` scales the tokens by its square (ComfyUI's AdvancedRefluxControl rule, which
InvokeAI follows).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from invoke_nb.nodes.base import InputField, Node, Output, OutputField, UIHint, node, output
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.devices import execution_device
from invoke_nb.nodes.diffusion.flux.fields import FluxReduxConditioningField
from invoke_nb.nodes.types import ImageField, ModelIdentifierField, TensorField

if TYPE_CHECKING:
    import torch

__all__ = ["SIGLIP_NAME", "FluxReduxNode", "FluxReduxOutput"]

SIGLIP_NAME = "SigLIP - google/siglip-so400m-patch14-384"


@output("flux_redux_output")
class FluxReduxOutput(Output):
    """The conditioning output of a FLUX Redux invocation."""

    redux_cond: FluxReduxConditioningField = OutputField(
        description="FLUX Redux conditioning tensor", title="Conditioning"
    )


@node(
    "flux_redux",
    title="FLUX Redux",
    category="ip_adapter",
    tags=["ip_adapter", "control"],
    version="2.1.0",
)
class FluxReduxNode(Node):
    """Runs a FLUX Redux model to generate a conditioning tensor."""

    image: ImageField = InputField(description="The FLUX Redux image prompt.")
    mask: TensorField | None = InputField(
        default=None,
        description="The bool mask associated with this FLUX Redux image prompt. Excluded "
        "regions should be set to False, included regions should be set to True.",
    )
    redux_model: ModelIdentifierField = InputField(
        description="The FLUX Redux model to use.",
        title="FLUX Redux Model",
        ui_hint=UIHint.MODEL,
        ui_model_base=["flux"],
        ui_model_type=["flux_redux"],
    )
    downsampling_factor: int = InputField(
        default=1,
        ge=1,
        le=9,
        description="Redux Downsampling Factor (1-9)",
    )
    downsampling_function: Literal["nearest", "bilinear", "bicubic", "area", "nearest-exact"] = (
        InputField(default="area", description="Redux Downsampling Function")
    )
    weight: float = InputField(default=1.0, ge=0, le=1, description="Redux weight (0.0-1.0)")

    def invoke(self, ctx: Context) -> FluxReduxOutput:
        import torch

        from invoke_nb.nodes.diffusion.sd.model_loaders import check_model

        rec = ctx.models.record(check_model(ctx, self.redux_model, "FLUX Redux model"))
        if rec.type != "flux_redux":
            raise ValueError(
                f"node {ctx.node_id!r} field 'redux_model': {rec.name!r} is a {rec.type} model"
            )
        siglip = ModelIdentifierField(name=SIGLIP_NAME, base="any", type="siglip")
        try:
            ctx.models.record(siglip)
        except Exception as exc:
            raise ValueError(
                f"node {ctx.node_id!r} field 'redux_model': FLUX Redux needs the SigLIP image "
                f"encoder installed as {SIGLIP_NAME!r} (google/siglip-so400m-patch14-384)"
            ) from exc
        device = execution_device(ctx)
        pil = ctx.images.get_pil(self.image, mode="RGB")
        with torch.inference_mode():
            with ctx.models.load(siglip) as (encoder, processor):
                pixels = processor(images=pil, return_tensors="pt").pixel_values
                feats = encoder(pixels.to(device, encoder.dtype)).last_hidden_state
            with ctx.models.load(self.redux_model) as redux:
                tokens = redux(feats.to(next(redux.parameters()).dtype)).image_embeds
            tokens = self._downsample(tokens.float()).cpu()
        name = ctx.tensors.save(tokens)
        return FluxReduxOutput(
            redux_cond=FluxReduxConditioningField(
                conditioning=TensorField(tensor_name=name), mask=self.mask
            )
        )

    def _downsample(self, x: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        b, t, h = x.shape
        if self.downsampling_factor > 1:
            m = int(math.sqrt(t))
            grid = x.view(b, m, m, h).transpose(1, -1)
            size = (m // self.downsampling_factor, m // self.downsampling_factor)
            x = F.interpolate(grid, size=size, mode=self.downsampling_function)
            x = x.transpose(1, -1).reshape(b, -1, h)
        if self.weight != 1.0:
            x = x * self.weight * self.weight
        return x
