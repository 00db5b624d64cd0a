"""The Qwen3 encoder bundle FLUX.2 Klein's loader hands out (InvokeAI's ``Qwen3EncoderField``).

The transformer bundle, FLUX conditioning and Kontext reference fields are FLUX.1's
(``nodes/diffusion/flux/fields.py``): InvokeAI uses the same ones for FLUX.2.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from invoke_nb.nodes.diffusion.fields import LoRAField
from invoke_nb.nodes.types import ModelIdentifierField

__all__ = ["Qwen3EncoderField"]


class Qwen3EncoderField(BaseModel):
    """A Qwen3 tokenizer + text encoder pair, with LoRAs."""

    tokenizer: ModelIdentifierField = Field(description="Info to load tokenizer submodel")
    text_encoder: ModelIdentifierField = Field(description="Info to load text_encoder submodel")
    loras: list[LoRAField] = Field(
        default_factory=list, description="LoRAs to apply on model loading"
    )
