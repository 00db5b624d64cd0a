"""Z-Image field and output types, named as InvokeAI names them."""

from __future__ import annotations

from pydantic import BaseModel, Field

from invoke_nb.nodes.base import Output, OutputField, output
from invoke_nb.nodes.diffusion.cogview4.fields import TransformerField
from invoke_nb.nodes.diffusion.fields import (
    Qwen3EncoderField,
    VAEField,
    _OptionalOutputs,
)
from invoke_nb.nodes.types import ModelIdentifierField, TensorField

__all__ = [
    "Qwen3EncoderField",
    "ZImageConditioningField",
    "ZImageConditioningOutput",
    "ZImageControlField",
    "ZImageControlOutput",
    "ZImageLoRALoaderOutput",
    "ZImageModelLoaderOutput",
]


class ZImageConditioningField(BaseModel):
    """A Z-Image conditioning tensor primitive value"""

    conditioning_name: str = Field(description="The name of conditioning tensor")
    mask: TensorField | None = Field(
        default=None,
        description="The mask associated with this conditioning tensor for regional prompting.",
    )


class ZImageControlField(BaseModel):
    """A Z-Image control image, model and schedule."""

    image_name: str = Field(description="The name of the preprocessed control image")
    control_model: ModelIdentifierField = Field(description="The Z-Image ControlNet model")
    control_context_scale: float = Field(default=0.75, ge=0.0, le=2.0)
    begin_step_percent: float = Field(default=0.0, ge=0.0, le=1.0)
    end_step_percent: float = Field(default=1.0, ge=0.0, le=1.0)


@output("z_image_model_loader_output")
class ZImageModelLoaderOutput(Output):
    """Z-Image base model loader output."""

    transformer: TransformerField = OutputField(description="Transformer", title="Transformer")
    qwen3_encoder: Qwen3EncoderField = OutputField(
        description="Qwen3 tokenizer and text encoder", title="Qwen3 Encoder"
    )
    vae: VAEField = OutputField(description="VAE", title="VAE")


@output("z_image_conditioning_output")
class ZImageConditioningOutput(Output):
    """A Z-Image conditioning reference."""

    conditioning: ZImageConditioningField = OutputField(description="Conditioning tensor")


@output("z_image_lora_loader_output")
class ZImageLoRALoaderOutput(_OptionalOutputs):
    """Transformer and Qwen3 encoder with LoRAs added."""

    transformer: TransformerField | None = OutputField(
        description="Transformer", title="Transformer"
    )
    qwen3_encoder: Qwen3EncoderField | None = OutputField(
        description="Qwen3 tokenizer and text encoder", title="Qwen3 Encoder"
    )


@output("z_image_control_output")
class ZImageControlOutput(Output):
    """Z-Image Control output containing control configuration."""

    control: ZImageControlField = OutputField(description="Z-Image control conditioning")
