"""Bundle modifiers (LoRA, seamless, clip skip), core metadata and prompts from a file.

Modifiers return new bundles and never touch weights: the LoRAs, seamless axes and skipped
layers are applied by the node that runs the model, for that run only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict

from invoke_nb.nodes.base import Input, InputField, Node, Output, OutputField, UIHint, node, output
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.fields import (
    CLIPField,
    CLIPSkipInvocationOutput,
    LoRAField,
    LoRALoaderOutput,
    SDXLLoRALoaderOutput,
    SeamlessModeOutput,
    UNetField,
    VAEField,
    with_lora,
)
from invoke_nb.nodes.diffusion.sd.model_loaders import check_model
from invoke_nb.nodes.primitives import StringCollectionOutput
from invoke_nb.nodes.types import ModelIdentifierField

__all__ = [
    "CLIPSkipNode",
    "CoreMetadataNode",
    "LoRALoaderNode",
    "MetadataOutput",
    "PromptsFromFileNode",
    "SDXLLoRALoaderNode",
    "SeamlessModeNode",
]


@node("lora_loader", title="Apply LoRA - SD1.5", category="model", tags=["model"], version="1.0.4")
class LoRALoaderNode(Node):
    """Apply selected lora to unet and text_encoder."""

    lora: ModelIdentifierField = InputField(
        description="LoRA model to load",
        title="LoRA",
        ui_hint=UIHint.MODEL,
        ui_model_base=["sd-1"],
        ui_model_type=["lora"],
    )
    weight: float = InputField(
        default=0.75, description="The weight at which the LoRA is applied to each model"
    )
    unet: UNetField | None = InputField(
        default=None, description="UNet (scheduler, LoRAs)", input=Input.CONNECTION, title="UNet"
    )
    clip: CLIPField | None = InputField(
        default=None,
        description="CLIP (tokenizer, text encoder, LoRAs) and skipped layer count",
        input=Input.CONNECTION,
        title="CLIP",
    )

    def invoke(self, ctx: Context) -> LoRALoaderOutput:
        lora = LoRAField(lora=check_model(ctx, self.lora, "LoRA"), weight=self.weight)
        return LoRALoaderOutput(
            unet=with_lora(ctx.node_id, self.unet, lora, "unet"),
            clip=with_lora(ctx.node_id, self.clip, lora, "clip"),
        )


@node(
    "sdxl_lora_loader",
    title="Apply LoRA - SDXL",
    category="model",
    tags=["lora", "model"],
    version="1.0.5",
)
class SDXLLoRALoaderNode(Node):
    """Apply selected lora to unet and text_encoder."""

    lora: ModelIdentifierField = InputField(
        description="LoRA model to load",
        title="LoRA",
        ui_hint=UIHint.MODEL,
        ui_model_base=["sdxl"],
        ui_model_type=["lora"],
    )
    weight: float = InputField(
        default=0.75, description="The weight at which the LoRA is applied to each model"
    )
    unet: UNetField | None = InputField(
        default=None, description="UNet (scheduler, LoRAs)", input=Input.CONNECTION, title="UNet"
    )
    clip: CLIPField | None = InputField(
        default=None, description="CLIP 1", input=Input.CONNECTION, title="CLIP 1"
    )
    clip2: CLIPField | None = InputField(
        default=None, description="CLIP 2", input=Input.CONNECTION, title="CLIP 2"
    )

    def invoke(self, ctx: Context) -> SDXLLoRALoaderOutput:
        lora = LoRAField(lora=check_model(ctx, self.lora, "LoRA"), weight=self.weight)
        return SDXLLoRALoaderOutput(
            unet=with_lora(ctx.node_id, self.unet, lora, "unet"),
            clip=with_lora(ctx.node_id, self.clip, lora, "clip"),
            clip2=with_lora(ctx.node_id, self.clip2, lora, "clip2"),
        )


@node(
    "seamless",
    title="Apply Seamless - SD1.5, SDXL",
    category="model",
    tags=["seamless", "model"],
    version="1.0.2",
)
class SeamlessModeNode(Node):
    """Applies the seamless transformation to the Model UNet and VAE."""

    unet: UNetField | None = InputField(
        default=None, description="UNet (scheduler, LoRAs)", input=Input.CONNECTION, title="UNet"
    )
    vae: VAEField | None = InputField(
        default=None, description="VAE model to load", input=Input.CONNECTION, title="VAE"
    )
    seamless_y: bool = InputField(
        default=True, input=Input.ANY, description="Specify whether Y axis is seamless"
    )
    seamless_x: bool = InputField(
        default=True, input=Input.ANY, description="Specify whether X axis is seamless"
    )

    def invoke(self, ctx: Context) -> SeamlessModeOutput:
        axes = [a for a, on in (("x", self.seamless_x), ("y", self.seamless_y)) if on]
        unet = (
            self.unet.model_copy(update={"seamless_axes": axes}, deep=True) if self.unet else None
        )
        vae = self.vae.model_copy(update={"seamless_axes": axes}, deep=True) if self.vae else None
        return SeamlessModeOutput(unet=unet, vae=vae)


@node(
    "clip_skip",
    title="Apply CLIP Skip - SD1.5, SDXL",
    category="prompt",
    tags=["clipskip", "clip", "skip"],
    version="1.1.1",
)
class CLIPSkipNode(Node):
    """Skip layers in clip text_encoder model."""

    clip: CLIPField = InputField(
        description="CLIP (tokenizer, text encoder, LoRAs) and skipped layer count",
        input=Input.CONNECTION,
        title="CLIP",
    )
    skipped_layers: int = InputField(
        default=0, ge=0, description="Number of layers to skip in text encoder"
    )

    def invoke(self, ctx: Context) -> CLIPSkipInvocationOutput:
        clip = self.clip.model_copy(
            update={"skipped_layers": self.clip.skipped_layers + self.skipped_layers}, deep=True
        )
        return CLIPSkipInvocationOutput(clip=clip)


@output("metadata_output")
class MetadataOutput(Output):
    """A metadata dict for images (InvokeAI's ``invokeai_metadata``)."""

    metadata: dict[str, Any] = OutputField(description="Metadata Dict")


_GENERATION_MODES = Literal[
    "txt2img",
    "img2img",
    "inpaint",
    "outpaint",
    "sdxl_txt2img",
    "sdxl_img2img",
    "sdxl_inpaint",
    "sdxl_outpaint",
    *(
        f"{family}_{mode}"
        for family in ("flux", "flux2", "sd3", "cogview4", "z_image")
        for mode in ("txt2img", "img2img", "inpaint", "outpaint")
    ),
]


@node(
    "core_metadata", title="Core Metadata", category="metadata", tags=["metadata"], version="2.2.0"
)
class CoreMetadataNode(Node):
    """Used internally by Invoke to collect metadata for generations."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True, validate_default=False)

    generation_mode: _GENERATION_MODES | None = InputField(
        default=None, description="The generation mode that output this image"
    )
    positive_prompt: str | None = InputField(
        default=None, description="The positive prompt parameter"
    )
    negative_prompt: str | None = InputField(
        default=None, description="The negative prompt parameter"
    )
    width: int | None = InputField(default=None, description="The width parameter")
    height: int | None = InputField(default=None, description="The height parameter")
    seed: int | None = InputField(default=None, description="The seed used for noise generation")
    rand_device: str | None = InputField(
        default=None, description="The device used for random number generation"
    )
    cfg_scale: float | None = InputField(
        default=None, description="The classifier-free guidance scale parameter"
    )
    cfg_rescale_multiplier: float | None = InputField(
        default=None, description="Rescale multiplier for CFG guidance"
    )
    steps: int | None = InputField(
        default=None, description="The number of steps used for inference"
    )
    scheduler: str | None = InputField(default=None, description="The scheduler used for inference")
    seamless_x: bool | None = InputField(
        default=None, description="Whether seamless tiling was used on the X axis"
    )
    seamless_y: bool | None = InputField(
        default=None, description="Whether seamless tiling was used on the Y axis"
    )
    clip_skip: int | None = InputField(
        default=None, description="The number of skipped CLIP layers"
    )
    model: ModelIdentifierField | None = InputField(
        default=None, description="The main model used for inference"
    )
    controlnets: list[dict[str, Any]] | None = InputField(
        default=None, description="The ControlNets used for inference"
    )
    ipAdapters: list[dict[str, Any]] | None = InputField(
        default=None, description="The IP Adapters used for inference"
    )
    t2iAdapters: list[dict[str, Any]] | None = InputField(
        default=None, description="The IP Adapters used for inference"
    )
    loras: list[dict[str, Any]] | None = InputField(
        default=None, description="The LoRAs used for inference"
    )
    strength: float | None = InputField(
        default=None, description="The strength used for latents-to-latents"
    )
    init_image: str | None = InputField(default=None, description="The name of the initial image")
    vae: ModelIdentifierField | None = InputField(
        default=None,
        description="The VAE used for decoding, if the main model's default was not used",
    )
    qwen3_encoder: ModelIdentifierField | None = InputField(
        default=None, description="The Qwen3 text encoder model used for Z-Image inference"
    )
    mistral_encoder: ModelIdentifierField | None = InputField(
        default=None, description="The Mistral text encoder used for FLUX.2 [dev]", extension=True
    )
    ideogram4_caption: str | None = InputField(
        default=None, description="The Ideogram 4 caption", extension=True
    )
    hrf_enabled: bool | None = InputField(
        default=None, description="Whether or not high resolution fix was enabled."
    )
    hrf_method: str | None = InputField(
        default=None, description="The high resolution fix upscale method."
    )
    hrf_strength: float | None = InputField(
        default=None,
        description="The high resolution fix img2img strength used in the upscale pass.",
    )
    positive_style_prompt: str | None = InputField(
        default=None, description="The positive style prompt parameter"
    )
    negative_style_prompt: str | None = InputField(
        default=None, description="The negative style prompt parameter"
    )
    refiner_model: ModelIdentifierField | None = InputField(
        default=None, description="The SDXL Refiner model used"
    )
    refiner_cfg_scale: float | None = InputField(
        default=None,
        description="The classifier-free guidance scale parameter used for the refiner",
    )
    refiner_steps: int | None = InputField(
        default=None, description="The number of steps used for the refiner"
    )
    refiner_scheduler: str | None = InputField(
        default=None, description="The scheduler used for the refiner"
    )
    refiner_positive_aesthetic_score: float | None = InputField(
        default=None, description="The aesthetic score used for the refiner"
    )
    refiner_negative_aesthetic_score: float | None = InputField(
        default=None, description="The aesthetic score used for the refiner"
    )
    refiner_start: float | None = InputField(
        default=None, description="The start value used for refiner denoising"
    )

    def invoke(self, ctx: Context) -> MetadataOutput:
        data = self.model_dump(
            mode="json", exclude_none=True, exclude={"id", "is_intermediate", "use_cache"}
        )
        from invoke_nb._version import __version__

        data["app_version"] = __version__
        return MetadataOutput(metadata=data)


class PromptFileError(ValueError):
    """The prompt file is missing or unreadable."""


@node(
    "prompt_from_file",
    title="Prompts from File",
    category="prompt",
    tags=["prompt", "file"],
    version="1.0.2",
    deterministic=False,  # the file may change between runs
)
class PromptsFromFileNode(Node):
    """Loads prompts from a text file"""

    file_path: str = InputField(description="Path to prompt text file")
    pre_prompt: str | None = InputField(
        default=None, description="String to prepend to each prompt", ui_hint=UIHint.TEXTAREA
    )
    post_prompt: str | None = InputField(
        default=None, description="String to append to each prompt", ui_hint=UIHint.TEXTAREA
    )
    start_line: int = InputField(
        default=1, ge=1, description="Line in the file to start start from"
    )
    max_prompts: int = InputField(
        default=1, ge=0, description="Max lines to read from file (0=all)"
    )

    def invoke(self, ctx: Context) -> StringCollectionOutput:
        path = Path(self.file_path).expanduser()
        if not path.is_file():
            raise PromptFileError(f"node {ctx.node_id!r}: prompt file not found: {str(path)!r}")
        first = self.start_line - 1
        last = first + self.max_prompts if self.max_prompts > 0 else None
        prompts = []
        with path.open(encoding="utf-8") as f:
            for i, line in enumerate(f):
                if last is not None and i >= last:
                    break
                if i >= first:
                    prompts.append(
                        (self.pre_prompt or "") + line.strip() + (self.post_prompt or "")
                    )
        return StringCollectionOutput(collection=prompts)
