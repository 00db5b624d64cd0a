"""Fields and outputs the FLUX families share (FLUX.1 and FLUX.2 Klein), shaped as InvokeAI's.

A transformer bundle (``TransformerField``), a Qwen3 encoder bundle, FLUX prompt
conditioning and Kontext reference images travel between nodes as these small
descriptions; the tensors stay in the run's memory. Names match InvokeAI 6.x, so its FLUX
graphs connect the same way here.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from invoke_nb.nodes.base import Output, OutputField, output
from invoke_nb.nodes.diffusion.fields import LoRAField
from invoke_nb.nodes.types import ImageField, ModelIdentifierField, TensorField

__all__ = [
    "FluxConditioningField",
    "FluxConditioningOutput",
    "FluxKontextConditioningField",
    "Qwen3EncoderField",
    "TransformerField",
]


class TransformerField(BaseModel):
    """A diffusion transformer and the LoRAs to apply to it."""

    transformer: ModelIdentifierField = Field(description="Info to load Transformer submodel")
    loras: list[LoRAField] = Field(description="LoRAs to apply on model loading")


class Qwen3EncoderField(BaseModel):
    """A Qwen3 tokenizer + text encoder pair, with LoRAs."""

    tokenizer: ModelIdentifierField = Field(description="Info to load tokenizer submodel")
    text_encoder: ModelIdentifierField = Field(description="Info to load text_encoder submodel")
    loras: list[LoRAField] = Field(
        default_factory=list, description="LoRAs to apply on model loading"
    )


class FluxConditioningField(BaseModel):
    """A reference to FLUX prompt conditioning, optionally restricted to a region mask."""

    conditioning_name: str = Field(description="The name of conditioning tensor")
    mask: TensorField | None = Field(
        default=None,
        description="The mask associated with this conditioning tensor. Excluded regions "
        "should be set to False, included regions should be set to True.",
    )


class FluxKontextConditioningField(BaseModel):
    """A reference image for FLUX Kontext / FLUX.2 editing."""

    image: ImageField = Field(description="The Kontext reference image.")


@output("flux_conditioning_output")
class FluxConditioningOutput(Output):
    """One FLUX conditioning reference."""

    conditioning: FluxConditioningField = OutputField(description="Conditioning tensor")
