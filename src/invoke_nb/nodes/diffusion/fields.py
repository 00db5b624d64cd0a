"""Model-bundle fields and outputs of the diffusion nodes, shaped as InvokeAI's.

A loader node hands out *descriptions* (which model, which submodel, which LoRAs, which
seamless axes), never loaded weights: the heavy objects stay in the model cache and are
borrowed by the node that computes. Field and output names match InvokeAI 6.x so its graphs
and workflow files connect the same way.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from invoke_nb.nodes.base import Output, OutputField, output
from invoke_nb.nodes.types import (
    ConditioningField,
    DenoiseMaskField,
    ImageField,
    LatentsField,
    ModelIdentifierField,
)

__all__ = [
    "CLIPField",
    "CLIPOutput",
    "ConditioningOutput",
    "DenoiseMaskOutput",
    "FreeUConfig",
    "GradientMaskOutput",
    "LatentsOutput",
    "LoRAAlreadyAppliedError",
    "LoRAField",
    "LoRALoaderOutput",
    "ModelLoaderOutput",
    "NoiseOutput",
    "SDXLLoRALoaderOutput",
    "SDXLModelLoaderOutput",
    "SDXLRefinerModelLoaderOutput",
    "SeamlessModeOutput",
    "T5EncoderField",
    "TransformerField",
    "UNetField",
    "UNetOutput",
    "VAEField",
    "VAEOutput",
    "with_lora",
]

LATENT_SCALE_FACTOR = 8


class LoRAField(BaseModel):
    """One LoRA to apply and its weight."""

    lora: ModelIdentifierField = Field(description="Info to load lora model")
    weight: float = Field(description="Weight to apply to lora model")


class LoRAAlreadyAppliedError(ValueError):
    """The same LoRA was added twice to one bundle."""


def with_lora(node_id: str, bundle: Any, lora: LoRAField, part: str) -> Any:
    """A copy of ``bundle`` (a UNet/CLIP/transformer/encoder field) with ``lora`` appended;
    None for no bundle. Every family's "Apply LoRA" node goes through here, so adding one
    LoRA twice to one model is refused the same way everywhere (InvokeAI refuses it too)."""
    if bundle is None:
        return None
    if any(existing.lora.key == lora.lora.key for existing in bundle.loras):
        raise LoRAAlreadyAppliedError(
            f"node {node_id!r}: LoRA {lora.lora.name or lora.lora.key!r} already applied to {part}"
        )
    return bundle.model_copy(update={"loras": [*bundle.loras, lora]}, deep=True)


class FreeUConfig(BaseModel):
    """FreeU scales (accepted for graph compatibility)."""

    s1: float
    s2: float
    b1: float
    b2: float


class UNetField(BaseModel):
    """The UNet and scheduler of a main model, with the LoRAs and seamless axes to apply."""

    unet: ModelIdentifierField = Field(description="Info to load unet submodel")
    scheduler: ModelIdentifierField = Field(description="Info to load scheduler submodel")
    loras: list[LoRAField] = Field(
        default_factory=list, description="LoRAs to apply on model loading"
    )
    seamless_axes: list[str] = Field(
        default_factory=list, description='Axes("x" and "y") to which apply seamless'
    )
    freeu_config: FreeUConfig | None = Field(default=None, description="FreeU configuration")


class CLIPField(BaseModel):
    """A tokenizer + text encoder pair, with clip skip and LoRAs."""

    tokenizer: ModelIdentifierField = Field(description="Info to load tokenizer submodel")
    text_encoder: ModelIdentifierField = Field(description="Info to load text_encoder submodel")
    skipped_layers: int = Field(default=0, description="Number of skipped layers in text_encoder")
    loras: list[LoRAField] = Field(
        default_factory=list, description="LoRAs to apply on model loading"
    )


class VAEField(BaseModel):
    """A VAE, with seamless axes to apply when decoding."""

    vae: ModelIdentifierField = Field(description="Info to load vae submodel")
    seamless_axes: list[str] = Field(
        default_factory=list, description='Axes("x" and "y") to which apply seamless'
    )


class TransformerField(BaseModel):
    """A diffusion transformer (SD3, FLUX, ...) with the LoRAs to apply."""

    transformer: ModelIdentifierField = Field(description="Info to load Transformer submodel")
    loras: list[LoRAField] = Field(
        default_factory=list, description="LoRAs to apply on model loading"
    )


class Qwen3EncoderField(BaseModel):
    """A Qwen3 tokenizer + text encoder pair (FLUX.2 Klein, Z-Image), with LoRAs."""

    tokenizer: ModelIdentifierField = Field(description="Info to load tokenizer submodel")
    text_encoder: ModelIdentifierField = Field(description="Info to load text_encoder submodel")
    loras: list[LoRAField] = Field(
        default_factory=list, description="LoRAs to apply on model loading"
    )


class T5EncoderField(BaseModel):
    """A T5 tokenizer + encoder pair, with LoRAs."""

    tokenizer: ModelIdentifierField = Field(description="Info to load tokenizer submodel")
    text_encoder: ModelIdentifierField = Field(description="Info to load text_encoder submodel")
    loras: list[LoRAField] = Field(
        default_factory=list, description="LoRAs to apply on model loading"
    )


@output("unet_output")
class UNetOutput(Output):
    """A UNet bundle."""

    unet: UNetField = OutputField(description="UNet (scheduler, LoRAs)", title="UNet")


@output("vae_output")
class VAEOutput(Output):
    """A VAE bundle."""

    vae: VAEField = OutputField(description="VAE", title="VAE")


@output("clip_output")
class CLIPOutput(Output):
    """A CLIP bundle."""

    clip: CLIPField = OutputField(
        description="CLIP (tokenizer, text encoder, LoRAs) and skipped layer count", title="CLIP"
    )


@output("model_loader_output")
class ModelLoaderOutput(Output):
    """SD1/SD2 main model parts."""

    unet: UNetField = OutputField(description="UNet (scheduler, LoRAs)", title="UNet")
    clip: CLIPField = OutputField(
        description="CLIP (tokenizer, text encoder, LoRAs) and skipped layer count", title="CLIP"
    )
    vae: VAEField = OutputField(description="VAE", title="VAE")


@output("sdxl_model_loader_output")
class SDXLModelLoaderOutput(Output):
    """SDXL base model parts."""

    unet: UNetField = OutputField(description="UNet (scheduler, LoRAs)", title="UNet")
    clip: CLIPField = OutputField(description="CLIP 1", title="CLIP 1")
    clip2: CLIPField = OutputField(description="CLIP 2", title="CLIP 2")
    vae: VAEField = OutputField(description="VAE", title="VAE")


@output("sdxl_refiner_model_loader_output")
class SDXLRefinerModelLoaderOutput(Output):
    """SDXL refiner model parts."""

    unet: UNetField = OutputField(description="UNet (scheduler, LoRAs)", title="UNet")
    clip2: CLIPField = OutputField(description="CLIP 2", title="CLIP 2")
    vae: VAEField = OutputField(description="VAE", title="VAE")


class _OptionalOutputs(Output):
    """Outputs whose bundles are absent when the matching input was not connected."""

    def __init__(self, **data: Any) -> None:
        for name in type(self).model_fields:
            data.setdefault(name, None)
        super().__init__(**data)


@output("lora_loader_output")
class LoRALoaderOutput(_OptionalOutputs):
    """UNet and CLIP with one more LoRA."""

    unet: UNetField | None = OutputField(description="UNet (scheduler, LoRAs)", title="UNet")
    clip: CLIPField | None = OutputField(description="CLIP", title="CLIP")


@output("sdxl_lora_loader_output")
class SDXLLoRALoaderOutput(_OptionalOutputs):
    """UNet and both CLIPs with one more LoRA."""

    unet: UNetField | None = OutputField(description="UNet (scheduler, LoRAs)", title="UNet")
    clip: CLIPField | None = OutputField(description="CLIP 1", title="CLIP 1")
    clip2: CLIPField | None = OutputField(description="CLIP 2", title="CLIP 2")


@output("seamless_output")
class SeamlessModeOutput(_OptionalOutputs):
    """UNet and VAE with seamless axes set."""

    unet: UNetField | None = OutputField(description="UNet (scheduler, LoRAs)", title="UNet")
    vae: VAEField | None = OutputField(description="VAE", title="VAE")


@output("clip_skip_output")
class CLIPSkipInvocationOutput(_OptionalOutputs):
    """CLIP with more skipped layers."""

    clip: CLIPField | None = OutputField(description="CLIP", title="CLIP")


@output("conditioning_output")
class ConditioningOutput(Output):
    """One conditioning reference."""

    conditioning: ConditioningField = OutputField(description="Conditioning tensor")


@output("latents_output")
class LatentsOutput(Output):
    """One latents reference with the image size it decodes to."""

    latents: LatentsField = OutputField(description="Latents tensor")
    width: int = OutputField(description="Width of output (px)")
    height: int = OutputField(description="Height of output (px)")

    @classmethod
    def of(cls, name: str, latents: Any, seed: int | None = None) -> LatentsOutput:
        """The output for latents of shape (b, c, h, w) stored under ``name``."""
        return cls(
            latents=LatentsField(latents_name=name, seed=seed),
            width=int(latents.shape[-1]) * LATENT_SCALE_FACTOR,
            height=int(latents.shape[-2]) * LATENT_SCALE_FACTOR,
        )


@output("noise_output")
class NoiseOutput(Output):
    """Noise latents with the seed that made them."""

    noise: LatentsField = OutputField(description="Noise tensor")
    width: int = OutputField(description="Width of output (px)")
    height: int = OutputField(description="Height of output (px)")


@output("denoise_mask_output")
class DenoiseMaskOutput(Output):
    """A denoise mask reference."""

    denoise_mask: DenoiseMaskField = OutputField(description="Mask for denoise model run")


@output("gradient_mask_output")
class GradientMaskOutput(Output):
    """A gradient denoise mask and the area it may change (for paste-back)."""

    denoise_mask: DenoiseMaskField = OutputField(
        description="Mask for denoise model run. 0.0 = fully denoised, 1.0 = preserved."
    )
    expanded_mask_area: ImageField = OutputField(
        description="Image representing the total gradient area of the mask. For paste-back purposes."
    )
