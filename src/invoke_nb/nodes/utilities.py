"""Small utility nodes InvokeAI graphs use: prompts, schedulers, boxes, latents, LoRA lists.

Ids, fields, defaults and outputs are InvokeAI 6.11.1's (checked by
``tests/nodes/test_invokeai_coverage.py``). ``dynamic_prompt`` uses the ``dynamicprompts``
library, as InvokeAI does, so a template expands to the same prompts in both tools.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from invoke_nb.nodes.base import Input, InputField, Node, Output, OutputField, UIHint, node, output
from invoke_nb.nodes.diffusion.fields import (
    LATENT_SCALE_FACTOR,
    CLIPField,
    LatentsOutput,
    LoRAField,
    LoRALoaderOutput,
    SDXLLoRALoaderOutput,
    UNetField,
)
from invoke_nb.nodes.diffusion.schedulers import SchedulerName
from invoke_nb.nodes.primitives import StringCollectionOutput
from invoke_nb.nodes.types import LatentsField, ModelIdentifierField

if TYPE_CHECKING:
    from invoke_nb.nodes.context import Context

__all__ = ["BoundingBoxField", "expand_prompts"]


# ---------------------------------------------------------------------------------------
# Prompts


def expand_prompts(
    template: str,
    count: int,
    *,
    combinatorial: bool,
    seed: int | None = None,
    strict: bool = False,
) -> list[str]:
    """Prompts from a dynamicprompts template (``a {red|blue} car``).

    Combinatorial: every combination, at most ``count``. Random: ``count`` draws, seeded
    when ``seed`` is given. A template the library cannot parse comes back unchanged, as in
    InvokeAI's prompt expansion for batches, or raises ``ValueError`` with ``strict`` (the
    ``dynamic_prompt`` node, as InvokeAI's node).
    """
    from dynamicprompts.generators import CombinatorialPromptGenerator, RandomPromptGenerator
    from pyparsing import ParseException

    try:
        if combinatorial:
            prompts = CombinatorialPromptGenerator().generate(template, max_prompts=count)
        else:
            prompts = RandomPromptGenerator(seed=seed).generate(template, num_images=count)
    except ParseException as e:
        if strict:
            raise ValueError(f"cannot parse dynamic prompt {template!r}: {e}") from None
        return [template]
    return [str(p) for p in prompts] or [""]


@node(
    "dynamic_prompt",
    title="Dynamic Prompt",
    category="prompt",
    tags=["prompt", "collection"],
    version="1.0.1",
    deterministic=False,
)
class DynamicPromptNode(Node):
    """Prompts from a dynamicprompts template: random draws or every combination."""

    prompt: str = InputField(
        description="The prompt to parse with dynamicprompts", ui_hint=UIHint.TEXTAREA
    )
    max_prompts: int = InputField(default=1, description="The number of prompts to generate")
    combinatorial: bool = InputField(
        default=False, description="Whether to use the combinatorial generator"
    )

    def invoke(self, ctx: Context) -> StringCollectionOutput:
        return StringCollectionOutput(
            collection=expand_prompts(
                self.prompt, self.max_prompts, combinatorial=self.combinatorial, strict=True
            )
        )


# ---------------------------------------------------------------------------------------
# Scheduler, bounding box


@output("scheduler_output")
class SchedulerOutput(Output):
    """A scheduler name."""

    scheduler: SchedulerName = OutputField(description="Scheduler to use during inference")


@node("scheduler", title="Scheduler", category="latents", tags=["scheduler"], version="1.0.0")
class SchedulerNode(Node):
    """Picks a scheduler by name, for several denoise nodes at once."""

    scheduler: SchedulerName = InputField(
        default="euler", description="Scheduler to use during inference", ui_hint=UIHint.SCHEDULER
    )

    def invoke(self, ctx: Context) -> SchedulerOutput:
        return SchedulerOutput(scheduler=self.scheduler)


class BoundingBoxField(BaseModel):
    """A box in pixels: ``x_min``/``y_min`` inclusive, ``x_max``/``y_max`` exclusive."""

    x_min: int = Field(ge=0, description="The minimum x-coordinate of the bounding box")
    x_max: int = Field(ge=0, description="The maximum x-coordinate of the bounding box")
    y_min: int = Field(ge=0, description="The minimum y-coordinate of the bounding box")
    y_max: int = Field(ge=0, description="The maximum y-coordinate of the bounding box")
    score: float | None = Field(default=None, ge=0.0, le=1.0, description="Detection score")

    def box(self) -> tuple[int, int, int, int]:
        """The box as PIL wants it: (left, top, right, bottom)."""
        return (self.x_min, self.y_min, self.x_max, self.y_max)


@output("bounding_box_output")
class BoundingBoxOutput(Output):
    """One bounding box."""

    bounding_box: BoundingBoxField = OutputField(description="The output bounding box.")


@node(
    "bounding_box",
    title="Bounding Box",
    category="primitives",
    tags=["primitives", "segmentation", "collection", "bounding box"],
    version="1.0.0",
)
class BoundingBoxNode(Node):
    """A bounding box from its corners."""

    x_min: int = InputField(default=0, description="x-coordinate of the bounding box's top left")
    y_min: int = InputField(default=0, description="y-coordinate of the bounding box's top left")
    x_max: int = InputField(
        default=0, description="x-coordinate of the bounding box's bottom right"
    )
    y_max: int = InputField(
        default=0, description="y-coordinate of the bounding box's bottom right"
    )

    def invoke(self, ctx: Context) -> BoundingBoxOutput:
        if self.x_max < self.x_min or self.y_max < self.y_min:
            raise ValueError(
                f"node {self.id!r}: bounding box corners are reversed "
                f"({self.x_min},{self.y_min})-({self.x_max},{self.y_max})"
            )
        return BoundingBoxOutput(
            bounding_box=BoundingBoxField(
                x_min=self.x_min, y_min=self.y_min, x_max=self.x_max, y_max=self.y_max
            )
        )


# ---------------------------------------------------------------------------------------
# Latents


@output("latents_collection_output")
class LatentsCollectionOutput(Output):
    """A list of latents references."""

    collection: list[LatentsField] = OutputField(description="Latents tensor")


@node(
    "latents",
    title="Latents Primitive",
    category="primitives",
    tags=["primitives", "latents"],
    version="1.0.2",
)
class LatentsNode(Node):
    """Passes latents on, with the image size they decode to."""

    latents: LatentsField = InputField(description="The latents tensor", input=Input.CONNECTION)

    def invoke(self, ctx: Context) -> LatentsOutput:
        t = ctx.tensors.load(self.latents)
        return LatentsOutput.of(self.latents.latents_name, t, seed=self.latents.seed)


@node(
    "latents_collection",
    title="Latents Collection Primitive",
    category="primitives",
    tags=["primitives", "latents", "collection"],
    version="1.0.1",
)
class LatentsCollectionNode(Node):
    """A list of latents."""

    collection: list[LatentsField] = InputField(description="The collection of latents tensors")

    def invoke(self, ctx: Context) -> LatentsCollectionOutput:
        return LatentsCollectionOutput(collection=list(self.collection))


_RESIZE_MODES = Literal[
    "nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact"
]


@node(
    "lresize",
    title="Resize Latents",
    category="latents",
    tags=["latents", "resize"],
    version="1.0.2",
)
class ResizeLatentsNode(Node):
    """Resizes latents to the latent size of a ``width`` x ``height`` image."""

    latents: LatentsField = InputField(description="Latents tensor", input=Input.CONNECTION)
    width: int = InputField(ge=64, multiple_of=8, description="Width of output (px)")
    height: int = InputField(ge=64, multiple_of=8, description="Height of output (px)")
    mode: _RESIZE_MODES = InputField(default="bilinear", description="Interpolation mode")
    antialias: bool = InputField(
        default=False, description="Antialias when shrinking (bilinear and bicubic modes)"
    )

    def invoke(self, ctx: Context) -> LatentsOutput:
        import torch.nn.functional as F

        t = ctx.tensors.load(self.latents)
        mode = "bilinear" if self.mode == "linear" and t.dim() == 4 else self.mode
        resized = F.interpolate(
            t.float(),
            size=(self.height // LATENT_SCALE_FACTOR, self.width // LATENT_SCALE_FACTOR),
            mode=mode,
            antialias=self.antialias if mode in ("bilinear", "bicubic") else False,
        ).to(t.dtype)
        return LatentsOutput.of(ctx.tensors.save(resized), resized, seed=self.latents.seed)


@node(
    "crop_latents",
    title="Crop Latents",
    category="latents",
    tags=["latents", "crop"],
    version="1.0.2",
)
class CropLatentsNode(Node):
    """Crops latents to a box given in image pixels (multiples of 8)."""

    latents: LatentsField = InputField(description="Latents tensor", input=Input.CONNECTION)
    x: int = InputField(ge=0, multiple_of=8, description="Left edge of the box, in image pixels")
    y: int = InputField(ge=0, multiple_of=8, description="Top edge of the box, in image pixels")
    width: int = InputField(ge=1, multiple_of=8, description="Box width, in image pixels")
    height: int = InputField(ge=1, multiple_of=8, description="Box height, in image pixels")

    def invoke(self, ctx: Context) -> LatentsOutput:
        t = ctx.tensors.load(self.latents)
        f = LATENT_SCALE_FACTOR
        x0, y0 = self.x // f, self.y // f
        cropped = t[..., y0 : y0 + self.height // f, x0 : x0 + self.width // f].clone()
        return LatentsOutput.of(ctx.tensors.save(cropped), cropped, seed=self.latents.seed)


@output("ideal_size_output")
class IdealSizeOutput(Output):
    """A width and height for a first pass."""

    width: int = OutputField(description="The ideal width of the image (in pixels)")
    height: int = OutputField(description="The ideal height of the image (in pixels)")


_BASE_DIMENSION = {
    "sd-1": 512,
    "sd-2": 768,
    "sdxl": 1024,
    "flux": 1024,
    "flux2": 1024,
    "sd-3": 1024,
}


@node(
    "ideal_size",
    title="Ideal Size - SD1.5, SDXL",
    category="",
    tags=["latents", "math", "ideal_size"],
    version="1.0.6",
)
class IdealSizeNode(Node):
    """The size a model was trained for, at the aspect ratio of ``width`` x ``height``
    (the first pass of a high-resolution fix)."""

    width: int = InputField(default=1024, description="Final image width")
    height: int = InputField(default=576, description="Final image height")
    unet: UNetField = InputField(description="UNet (scheduler, LoRAs)")
    multiplier: float = InputField(
        default=1.0,
        description="Scales the model's native side length (large values may add artefacts)",
    )

    def invoke(self, ctx: Context) -> IdealSizeOutput:
        base = self.unet.unet.base
        if base not in _BASE_DIMENSION and ctx.models is not None:
            base = str(getattr(ctx.models.record(self.unet.unet), "base", base))
        if base not in _BASE_DIMENSION:
            raise ValueError(f"node {self.id!r}: no ideal size for model base {base!r}")
        dimension = _BASE_DIMENSION[base] * self.multiplier
        smallest = math.floor(dimension * 0.5)
        area = dimension * dimension
        aspect = self.width / self.height
        if aspect > 1.0:
            h = max(smallest, math.sqrt(area / aspect))
            w = h * aspect
        else:
            w = max(smallest, math.sqrt(area * aspect))
            h = w / aspect
        w, h = math.floor(w), math.floor(h)
        return IdealSizeOutput(
            width=w - w % LATENT_SCALE_FACTOR, height=h - h % LATENT_SCALE_FACTOR
        )


# ---------------------------------------------------------------------------------------
# Models and LoRAs


@output("model_identifier_output")
class ModelIdentifierOutput(Output):
    """A model reference."""

    model: ModelIdentifierField = OutputField(description="Model identifier")


@node("model_identifier", title="Any Model", category="model", tags=["model"], version="1.0.1")
class ModelIdentifierNode(Node):
    """Any installed model, as a reference other nodes take."""

    model: ModelIdentifierField = InputField(
        description="The model to select", title="Model", ui_hint=UIHint.MODEL
    )

    def invoke(self, ctx: Context) -> ModelIdentifierOutput:
        return ModelIdentifierOutput(model=self._resolved(ctx))

    def _resolved(self, ctx: Context) -> ModelIdentifierField:
        if ctx.models is None:
            return self.model
        from invoke_nb.nodes.diffusion.sd.model_loaders import check_model

        return check_model(ctx, self.model, "model")


@output("lora_selector_output")
class LoRASelectorOutput(Output):
    """A LoRA with its weight."""

    lora: LoRAField = OutputField(description="LoRA model and weight", title="LoRA")


@node("lora_selector", title="Select LoRA", category="model", tags=["model"], version="1.0.3")
class LoRASelectorNode(Node):
    """A LoRA and its weight, for a LoRA collection."""

    lora: ModelIdentifierField = InputField(
        description="LoRA model to load",
        title="LoRA",
        ui_hint=UIHint.MODEL,
        ui_model_type=["lora"],
    )
    weight: float = InputField(
        default=0.75, description="The weight at which the LoRA is applied to each model"
    )

    def invoke(self, ctx: Context) -> LoRASelectorOutput:
        model = self.lora
        if ctx.models is not None:
            from invoke_nb.nodes.diffusion.sd.model_loaders import check_model

            model = check_model(ctx, model, "LoRA")
        return LoRASelectorOutput(lora=LoRAField(lora=model, weight=self.weight))


def _apply_loras(
    bundles: dict[str, Any], loras: LoRAField | list[LoRAField] | None
) -> dict[str, Any]:
    """Copies of the bundles with each LoRA appended once (a LoRA listed twice counts once)."""
    out = {k: (v.model_copy(deep=True) if v is not None else None) for k, v in bundles.items()}
    seen: set[str] = set()
    for lora in loras if isinstance(loras, list) else [loras]:
        if lora is None or lora.lora.key in seen:
            continue
        seen.add(lora.lora.key)
        for bundle in out.values():
            if bundle is not None:
                bundle.loras.append(lora)
    return out


_LORAS_DESC = "One LoRA with its weight, or a list of them"


@node(
    "lora_collection_loader",
    title="Apply LoRA Collection - SD1.5",
    category="model",
    tags=["model"],
    version="1.1.2",
)
class LoRACollectionLoaderNode(Node):
    """Applies a list of LoRAs to a UNet and a CLIP."""

    loras: LoRAField | list[LoRAField] | None = InputField(
        default=None, description=_LORAS_DESC, title="LoRAs"
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
        return LoRALoaderOutput(**_apply_loras({"unet": self.unet, "clip": self.clip}, self.loras))


@node(
    "sdxl_lora_collection_loader",
    title="Apply LoRA Collection - SDXL",
    category="model",
    tags=["model"],
    version="1.1.2",
)
class SDXLLoRACollectionLoaderNode(Node):
    """Applies a list of LoRAs to an SDXL UNet and both CLIPs."""

    loras: LoRAField | list[LoRAField] | None = InputField(
        default=None, description=_LORAS_DESC, title="LoRAs"
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
    clip2: CLIPField | None = InputField(
        default=None,
        description="CLIP (tokenizer, text encoder, LoRAs) and skipped layer count",
        input=Input.CONNECTION,
        title="CLIP 2",
    )

    def invoke(self, ctx: Context) -> SDXLLoRALoaderOutput:
        bundles = {"unet": self.unet, "clip": self.clip, "clip2": self.clip2}
        return SDXLLoRALoaderOutput(**_apply_loras(bundles, self.loras))


# ---------------------------------------------------------------------------------------
# Style presets


class StylePresetField(BaseModel):
    """A reference to a style preset of the studio."""

    style_preset_id: str = Field(description="The id of the style preset")


@output("prompt_template_output")
class PromptTemplateOutput(Output):
    """A prompt pair with a style preset applied."""

    positive_prompt: str = OutputField(description="The positive prompt with the template applied")
    negative_prompt: str = OutputField(description="The negative prompt with the template applied")


@node(
    "prompt_template",
    title="Prompt Template",
    category="prompt",
    tags=["prompt", "template"],
    version="1.0.0",
)
class PromptTemplateNode(Node):
    """Puts the prompts into a style preset's templates (each ``{prompt}`` is replaced).

    The host provides the presets as ``Services.extra["style_presets"]``, a function from a
    preset id (or name) to an object with ``positive_prompt`` and ``negative_prompt``.
    """

    style_preset: StylePresetField = InputField(description="The style preset to use")
    positive_prompt: str = InputField(
        default="", description="The positive prompt", ui_hint=UIHint.TEXTAREA
    )
    negative_prompt: str = InputField(
        default="", description="The negative prompt", ui_hint=UIHint.TEXTAREA
    )

    def invoke(self, ctx: Context) -> PromptTemplateOutput:
        find = ctx.services.extra.get("style_presets")
        if find is None:
            raise LookupError(
                f"node {self.id!r}: no style presets here (run in a Studio, or give "
                "Services(extra={'style_presets': ...}))"
            )
        preset = find(self.style_preset.style_preset_id)
        return PromptTemplateOutput(
            positive_prompt=preset.positive_prompt.replace("{prompt}", self.positive_prompt),
            negative_prompt=preset.negative_prompt.replace("{prompt}", self.negative_prompt),
        )
