"""Field and output types of the transformer families (CogView4 here, Z-Image beside it).

Names are InvokeAI's (``TransformerField``, ``GlmEncoderField``...), because workflow
files and the coverage test spell types by class name.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from invoke_nb.nodes.base import Output, OutputField, output
from invoke_nb.nodes.diffusion.fields import TransformerField, VAEField
from invoke_nb.nodes.types import ConditioningField, ModelIdentifierField

__all__ = [
    "CogView4ConditioningField",
    "CogView4ConditioningOutput",
    "CogView4ModelLoaderOutput",
    "GlmEncoderField",
    "TransformerField",
]


class GlmEncoderField(BaseModel):
    """CogView4's GLM tokenizer and text encoder."""

    tokenizer: ModelIdentifierField = Field(description="Info to load tokenizer submodel")
    text_encoder: ModelIdentifierField = Field(description="Info to load text_encoder submodel")


class CogView4ConditioningField(BaseModel):
    """A reference to CogView4 prompt embeddings."""

    conditioning_name: str = Field(description="The name of conditioning tensor")

    def ref(self) -> ConditioningField:
        return ConditioningField(conditioning_name=self.conditioning_name)


@output("cogview4_model_loader_output")
class CogView4ModelLoaderOutput(Output):
    """CogView4 base model loader output."""

    transformer: TransformerField = OutputField(description="Transformer", title="Transformer")
    glm_encoder: GlmEncoderField = OutputField(
        description="GLM (THUDM) tokenizer and text encoder", title="GLM Encoder"
    )
    vae: VAEField = OutputField(description="VAE", title="VAE")


@output("cogview4_conditioning_output")
class CogView4ConditioningOutput(Output):
    """A CogView4 conditioning reference."""

    conditioning: CogView4ConditioningField = OutputField(description="Conditioning tensor")
