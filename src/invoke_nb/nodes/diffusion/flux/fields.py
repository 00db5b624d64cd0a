"""FLUX field types and outputs, named and shaped as InvokeAI 6.11.1's.

The transformer, T5 encoder and CLIP travel as descriptions (which model, which submodel,
which LoRAs); the conditioning as a reference to tensors kept in kernel memory. The inputs
of FLUX's extras (ControlNet, control LoRA, Fill, Kontext, Redux) are declared
here with InvokeAI's field names; the IP-Adapter's field is the SD one
(:class:`invoke_nb.nodes.control.fields.IPAdapterField`), as in InvokeAI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from invoke_nb.nodes.base import Output, OutputField, output
from invoke_nb.nodes.control.fields import IPAdapterField
from invoke_nb.nodes.diffusion.fields import (
    CLIPField,
    LoRAField,
    T5EncoderField,
    TransformerField,
    VAEField,
    _OptionalOutputs,
)
from invoke_nb.nodes.types import ImageField, ModelIdentifierField, TensorField

if TYPE_CHECKING:
    import torch

__all__ = [
    "ControlLoRAField",
    "FluxConditioning",
    "FluxConditioningField",
    "FluxConditioningOutput",
    "FluxControlNetField",
    "FluxFillConditioningField",
    "FluxKontextConditioningField",
    "FluxLoRALoaderOutput",
    "FluxModelLoaderOutput",
    "FluxReduxConditioningField",
    "IPAdapterField",
    "T5EncoderField",
    "TransformerField",
]


class FluxConditioningField(BaseModel):
    """A reference to FLUX text conditioning (T5 sequence + CLIP pooled vector)."""

    conditioning_name: str = Field(description="The name of conditioning tensor")
    mask: TensorField | None = Field(
        default=None,
        description="The mask associated with this conditioning tensor. Excluded regions should "
        "be set to False, included regions should be set to True.",
    )


@dataclass
class FluxConditioning:
    """What ``flux_text_encoder`` stores: T5 token embeddings and CLIP's pooled embedding."""

    t5_embeds: torch.Tensor  # (1, seq, t5 width)
    clip_embeds: torch.Tensor  # (1, 768)


class _Extra(BaseModel):
    """InvokeAI field shapes for inputs the denoise node does not run yet."""

    model_config = ConfigDict(extra="allow")


class FluxControlNetField(_Extra):
    """A FLUX ControlNet (XLabs or InstantX) with its image and schedule."""

    image: ImageField = Field(description="The control image")
    control_model: ModelIdentifierField = Field(description="The ControlNet model to use")
    control_weight: float | list[float] = Field(
        default=1, description="The weight given to the ControlNet"
    )
    begin_step_percent: float = Field(default=0, ge=0, le=1)
    end_step_percent: float = Field(default=1, ge=0, le=1)
    resize_mode: Literal["just_resize", "crop_resize", "fill_resize", "just_resize_simple"] = (
        "just_resize"
    )
    instantx_control_mode: int | None = -1


class ControlLoRAField(LoRAField):
    """A FLUX control LoRA and its control image."""

    img: ImageField = Field(description="Image to use in structural conditioning")


class FluxFillConditioningField(_Extra):
    """FLUX Fill's image and inpaint mask."""

    image: ImageField = Field(description="The FLUX Fill reference image.")
    mask: TensorField = Field(description="The FLUX Fill inpaint mask.")


class FluxKontextConditioningField(_Extra):
    """A FLUX Kontext reference image."""

    image: ImageField = Field(description="The Kontext reference image.")


class FluxReduxConditioningField(_Extra):
    """FLUX Redux image conditioning and its optional region mask."""

    conditioning: TensorField = Field(description="The Redux image conditioning tensor.")
    mask: TensorField | None = Field(default=None, description="The mask for the conditioning.")


@output("flux_model_loader_output")
class FluxModelLoaderOutput(Output):
    """Flux base model loader output"""

    transformer: TransformerField = OutputField(description="Transformer", title="Transformer")
    clip: CLIPField = OutputField(
        description="CLIP (tokenizer, text encoder, LoRAs) and skipped layer count", title="CLIP"
    )
    t5_encoder: T5EncoderField = OutputField(
        description="T5 tokenizer and text encoder", title="T5 Encoder"
    )
    vae: VAEField = OutputField(description="VAE", title="VAE")
    max_seq_len: Literal[256, 512] = OutputField(
        description="The max sequence length to used for the T5 encoder. (256 for schnell "
        "transformer, 512 for dev transformer)",
        title="Max Seq Length",
    )


@output("flux_conditioning_output")
class FluxConditioningOutput(Output):
    """Base class for nodes that output a single conditioning tensor"""

    conditioning: FluxConditioningField = OutputField(description="Conditioning tensor")


@output("flux_lora_loader_output")
class FluxLoRALoaderOutput(_OptionalOutputs):
    """FLUX LoRA Loader Output"""

    transformer: TransformerField | None = OutputField(
        description="Transformer", title="FLUX Transformer"
    )
    clip: CLIPField | None = OutputField(
        description="CLIP (tokenizer, text encoder, LoRAs) and skipped layer count", title="CLIP"
    )
    t5_encoder: T5EncoderField | None = OutputField(
        description="T5 tokenizer and text encoder", title="T5 Encoder"
    )
