"""FLUX control LoRAs (BFL's Canny/Depth LoRAs): the loader node.

The node bundles the LoRA, its control image and weight into InvokeAI's ``ControlLoRAField``
so InvokeAI graphs that use it import and validate. Running one needs the transformer's
input layer widened to 128 channels and the VAE-encoded control image beside the noise;
``flux_denoise`` does not do that yet and refuses a ``control_lora`` naming the field.
"""

from __future__ import annotations

from invoke_nb.nodes.base import InputField, Node, Output, OutputField, UIHint, node, output
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.flux.fields import ControlLoRAField
from invoke_nb.nodes.diffusion.sd.model_loaders import check_model
from invoke_nb.nodes.types import ImageField, ModelIdentifierField

__all__ = ["FluxControlLoRALoaderInvocation", "FluxControlLoRALoaderOutput"]


@output("flux_control_lora_loader_output")
class FluxControlLoRALoaderOutput(Output):
    """Flux Control LoRA Loader Output"""

    control_lora: ControlLoRAField = OutputField(
        title="Flux Control LoRA", description="Control LoRAs to apply on model loading"
    )


@node(
    "flux_control_lora_loader",
    title="Control LoRA - FLUX",
    category="model",
    tags=["lora", "model", "flux"],
    version="1.1.1",
)
class FluxControlLoRALoaderInvocation(Node):
    """LoRA model and Image to use with FLUX transformer generation."""

    lora: ModelIdentifierField = InputField(
        description="Control LoRA model to load",
        title="Control LoRA",
        ui_hint=UIHint.MODEL,
        ui_model_base=["flux"],
        ui_model_type=["control_lora"],
    )
    image: ImageField = InputField(description="The image to encode.")
    weight: float = InputField(default=1.0, description="The weight of the LoRA.")

    def invoke(self, ctx: Context) -> FluxControlLoRALoaderOutput:
        lora = check_model(ctx, self.lora, "control LoRA")
        if lora.type != "control_lora":
            raise ValueError(
                f"node {ctx.node_id!r} field 'lora': {lora.name!r} is a {lora.base} "
                f"{lora.type} model, not a FLUX control LoRA"
            )
        return FluxControlLoRALoaderOutput(
            control_lora=ControlLoRAField(lora=lora, img=self.image, weight=self.weight)
        )
