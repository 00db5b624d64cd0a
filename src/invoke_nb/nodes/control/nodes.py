"""ControlNet, T2I-Adapter, IP-Adapter, FreeU and Heuristic Resize nodes (InvokeAI 6.11.1)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from PIL import Image
from pydantic import field_validator, model_validator

from invoke_nb.nodes.base import Input, InputField, Node, UIHint, node
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.control.fields import (
    CONTROL_MODES,
    RESIZE_MODES,
    ControlField,
    ControlOutput,
    IPAdapterField,
    IPAdapterOutput,
    T2IAdapterField,
    T2IAdapterOutput,
    check_begin_end,
    check_weights,
)
from invoke_nb.nodes.control.resize import heuristic_resize
from invoke_nb.nodes.diffusion.fields import FreeUConfig, UNetField, UNetOutput
from invoke_nb.nodes.diffusion.sd.model_loaders import check_model
from invoke_nb.nodes.primitives import ImageOutput
from invoke_nb.nodes.types import ImageField, ModelIdentifierField, TensorField

__all__ = [
    "ControlModelError",
    "ControlNetNode",
    "FreeUNode",
    "HeuristicResizeNode",
    "IPAdapterNode",
    "T2IAdapterNode",
]


class ControlModelError(ValueError):
    """A control model does not fit: wrong type or base, or its image encoder is missing."""


def check_control_model(
    ctx: Context,
    model: ModelIdentifierField,
    field: str,
    types: tuple[str, ...],
    bases: tuple[str, ...],
) -> ModelIdentifierField:
    """``model`` resolved, or an error naming the node and field when it is of the wrong kind."""
    m = check_model(ctx, model, field)
    if m.type not in types:
        raise ControlModelError(
            f"node {ctx.node_id!r} ({ctx.node_type}) field {field!r}: model {m.name!r} is a "
            f"{m.type}, expected {' or '.join(types)}"
        )
    if m.base not in bases:
        raise ControlModelError(
            f"node {ctx.node_id!r} ({ctx.node_type}) field {field!r}: model {m.name!r} is for "
            f"base {m.base!r}; this node takes {', '.join(bases)}"
        )
    return m


class _Window(Node):
    @model_validator(mode="after")
    def _window(self) -> _Window:
        check_begin_end(self.begin_step_percent, self.end_step_percent)  # type: ignore[attr-defined]
        return self


@node(
    "controlnet",
    title="ControlNet - SD1.5, SD2, SDXL",
    category="controlnet",
    tags=["controlnet"],
    version="1.1.3",
)
class ControlNetNode(_Window):
    """Collects ControlNet info to pass to other nodes"""

    image: ImageField = InputField(description="The control image")
    control_model: ModelIdentifierField = InputField(
        description="ControlNet model to load",
        ui_hint=UIHint.MODEL,
        ui_model_base=["sd-1", "sd-2", "sdxl"],
        ui_model_type=["controlnet"],
    )
    control_weight: float | list[float] = InputField(
        default=1.0, description="The weight given to the ControlNet"
    )
    begin_step_percent: float = InputField(
        default=0, ge=0, le=1, description="When the ControlNet is first applied (% of total steps)"
    )
    end_step_percent: float = InputField(
        default=1, ge=0, le=1, description="When the ControlNet is last applied (% of total steps)"
    )
    control_mode: CONTROL_MODES = InputField(
        default="balanced", description="The control mode used"
    )
    resize_mode: RESIZE_MODES = InputField(
        default="just_resize", description="The resize mode used"
    )

    _weights = field_validator("control_weight")(classmethod(lambda cls, v: check_weights(v)))

    def invoke(self, ctx: Context) -> ControlOutput:
        model = check_control_model(
            ctx, self.control_model, "control_model", ("controlnet",), ("sd-1", "sd-2", "sdxl")
        )
        return ControlOutput(
            control=ControlField(
                image=self.image,
                control_model=model,
                control_weight=self.control_weight,
                begin_step_percent=self.begin_step_percent,
                end_step_percent=self.end_step_percent,
                control_mode=self.control_mode,
                resize_mode=self.resize_mode,
            )
        )


@node(
    "t2i_adapter",
    title="T2I-Adapter - SD1.5, SDXL",
    category="t2i_adapter",
    tags=["t2i_adapter", "control"],
    version="1.0.4",
)
class T2IAdapterNode(_Window):
    """Collects T2I-Adapter info to pass to other nodes."""

    image: ImageField = InputField(description="The IP-Adapter image prompt.")
    t2i_adapter_model: ModelIdentifierField = InputField(
        description="The T2I-Adapter model.",
        title="T2I-Adapter Model",
        ui_order=-1,
        ui_hint=UIHint.MODEL,
        ui_model_base=["sd-1", "sdxl"],
        ui_model_type=["t2i_adapter"],
    )
    weight: float | list[float] = InputField(
        default=1, description="The weight given to the T2I-Adapter", title="Weight"
    )
    begin_step_percent: float = InputField(
        default=0,
        ge=0,
        le=1,
        description="When the T2I-Adapter is first applied (% of total steps)",
    )
    end_step_percent: float = InputField(
        default=1, ge=0, le=1, description="When the T2I-Adapter is last applied (% of total steps)"
    )
    resize_mode: RESIZE_MODES = InputField(
        default="just_resize", description="The resize mode applied to the T2I-Adapter input image."
    )

    _weights = field_validator("weight")(classmethod(lambda cls, v: check_weights(v, 0, 2)))

    def invoke(self, ctx: Context) -> T2IAdapterOutput:
        model = check_control_model(
            ctx, self.t2i_adapter_model, "t2i_adapter_model", ("t2i_adapter",), ("sd-1", "sdxl")
        )
        return T2IAdapterOutput(
            t2i_adapter=T2IAdapterField(
                image=self.image,
                t2i_adapter_model=model,
                weight=self.weight,
                begin_step_percent=self.begin_step_percent,
                end_step_percent=self.end_step_percent,
                resize_mode=self.resize_mode,
            )
        )


# The encoder InvokeAI installs for each choice: (its source, the name it is installed under)
CLIP_VISION_MODELS = {
    "ViT-H": ("InvokeAI/ip_adapter_sd_image_encoder", "ip_adapter_sd_image_encoder"),
    "ViT-G": ("InvokeAI/ip_adapter_sdxl_image_encoder", "ip_adapter_sdxl_image_encoder"),
    "ViT-L": ("InvokeAI/clip-vit-large-patch14", "clip-vit-large-patch14"),
}

# IP-Adapter "method" -> the UNet blocks it acts in, per base (InvokeAI's table)
_SDXL_STYLE_STRONG = [
    *(f"up_blocks.{b}.attentions.{a}" for a in (1, 2, 0) for b in (0, 1, 2)),
    *(f"down_blocks.{b}.attentions.{a}" for b in (0, 1) for a in (0, 1, 2)),
    "down_blocks.2.attentions.0",
    "down_blocks.2.attentions.2",
]
TARGET_BLOCKS = {
    "full": {"sd-1": ["block"], "sdxl": ["block"]},
    "style": {"sd-1": ["up_blocks.1"], "sdxl": ["up_blocks.0.attentions.1"]},
    "composition": {"sd-1": ["down_blocks.2", "mid_block"], "sdxl": ["down_blocks.2.attentions.1"]},
    "style_precise": {
        "sd-1": ["up_blocks.1", "down_blocks.2", "mid_block"],
        "sdxl": ["up_blocks.0.attentions.1", "down_blocks.2.attentions.1"],
    },
    "style_strong": {
        "sd-1": ["up_blocks.0", "up_blocks.1", "up_blocks.2", "down_blocks.0", "down_blocks.1"],
        "sdxl": _SDXL_STYLE_STRONG,
    },
}


@node(
    "ip_adapter",
    title="IP-Adapter - SD1.5, SDXL",
    category="ip_adapter",
    tags=["ip_adapter", "control"],
    version="1.5.1",
)
class IPAdapterNode(_Window):
    """Collects IP-Adapter info to pass to other nodes."""

    image: ImageField | list[ImageField] = InputField(
        description="The IP-Adapter image prompt(s).", ui_order=1
    )
    ip_adapter_model: ModelIdentifierField = InputField(
        description="The IP-Adapter model.",
        title="IP-Adapter Model",
        ui_order=-1,
        ui_hint=UIHint.MODEL,
        ui_model_base=["sd-1", "sdxl"],
        ui_model_type=["ip_adapter"],
    )
    clip_vision_model: Literal["ViT-H", "ViT-G", "ViT-L"] = InputField(
        default="ViT-H",
        description="CLIP Vision model to use. Overrides model settings. Mandatory for checkpoint models.",
        ui_order=2,
    )
    weight: float | list[float] = InputField(
        default=1, description="The weight given to the IP-Adapter", title="Weight"
    )
    method: Literal["full", "style", "composition", "style_strong", "style_precise"] = InputField(
        default="full", description="The method to apply the IP-Adapter"
    )
    begin_step_percent: float = InputField(
        default=0, ge=0, le=1, description="When the IP-Adapter is first applied (% of total steps)"
    )
    end_step_percent: float = InputField(
        default=1, ge=0, le=1, description="When the IP-Adapter is last applied (% of total steps)"
    )
    mask: TensorField | None = InputField(
        default=None, description="A mask defining the region that this IP-Adapter applies to."
    )

    _weights = field_validator("weight")(classmethod(lambda cls, v: check_weights(v)))

    def invoke(self, ctx: Context) -> IPAdapterOutput:
        model = check_control_model(
            ctx, self.ip_adapter_model, "ip_adapter_model", ("ip_adapter",), ("sd-1", "sdxl")
        )
        encoder = find_image_encoder(ctx, model, self.clip_vision_model)
        return IPAdapterOutput(
            ip_adapter=IPAdapterField(
                image=self.image,
                ip_adapter_model=model,
                image_encoder_model=encoder,
                weight=self.weight,
                target_blocks=TARGET_BLOCKS[self.method][model.base],
                method=self.method,
                begin_step_percent=self.begin_step_percent,
                end_step_percent=self.end_step_percent,
                mask=self.mask,
            )
        )


def find_image_encoder(
    ctx: Context, ip_adapter: ModelIdentifierField, choice: str
) -> ModelIdentifierField:
    """The installed CLIP vision encoder for ``ip_adapter``: the one its folder names
    (``image_encoder.txt``), else the one ``choice`` stands for; an error naming the node,
    the field and the encoder when it is not installed (nothing is downloaded here)."""
    record = ctx.models.record(ip_adapter)
    source = (record.extra or {}).get("image_encoder_model_id")
    field = "ip_adapter_model" if source else "clip_vision_model"
    if not source:
        source = CLIP_VISION_MODELS[choice][0]
    name = source.rstrip("/").split("/")[-1].strip()
    wanted = ModelIdentifierField(name=name, base="any", type="clip_vision")
    try:
        found = ctx.models.record(wanted)
    except Exception as exc:
        raise ControlModelError(
            f"node {ctx.node_id!r} ({ctx.node_type}) field {field!r}: the IP-Adapter "
            f"{record.name!r} needs the CLIP vision encoder {name!r} ({source}), which is not "
            f"installed; install it with studio.models.install({source!r}, name={name!r})"
        ) from exc
    if found.type != "clip_vision":
        raise ControlModelError(
            f"node {ctx.node_id!r} ({ctx.node_type}) field {field!r}: model {name!r} is a "
            f"{found.type}, not a CLIP vision encoder"
        )
    return check_model(ctx, wanted.model_copy(update={"key": found.key}), field)


@node(
    "freeu",
    title="Apply FreeU - SD1.5, SDXL",
    category="unet",
    tags=["freeu"],
    version="1.0.2",
)
class FreeUNode(Node):
    """Applies FreeU to the UNet. Suggested values (b1/b2/s1/s2):

    SD1.5: 1.2/1.4/0.9/0.2,
    SD2: 1.1/1.2/0.9/0.2,
    SDXL: 1.1/1.2/0.6/0.4,
    """

    unet: UNetField = InputField(
        description="UNet (scheduler, LoRAs)", input=Input.CONNECTION, title="UNet"
    )
    b1: float = InputField(
        default=1.2,
        ge=-1,
        le=3,
        description="Scaling factor for stage 1 to amplify the contributions of backbone features.",
    )
    b2: float = InputField(
        default=1.4,
        ge=-1,
        le=3,
        description="Scaling factor for stage 2 to amplify the contributions of backbone features.",
    )
    s1: float = InputField(
        default=0.9,
        ge=-1,
        le=3,
        description="Scaling factor for stage 1 to attenuate the contributions of the skip features. This is done to mitigate the 'oversmoothing effect' in the enhanced denoising process.",
    )
    s2: float = InputField(default=0.2, ge=-1, le=3, description="Scaling factor for stage 2 to attenuate the contributions of the skip features. This is done to mitigate the 'oversmoothing effect' in the enhanced denoising process.")  # fmt: skip

    def invoke(self, ctx: Context) -> UNetOutput:
        config = FreeUConfig(s1=self.s1, s2=self.s2, b1=self.b1, b2=self.b2)
        return UNetOutput(unet=self.unet.model_copy(update={"freeu_config": config}))


@node(
    "heuristic_resize",
    title="Heuristic Resize",
    category="image",
    tags=["image, controlnet"],
    version="1.1.1",
)
class HeuristicResizeNode(Node):
    """Resize an image using a heuristic method. Preserves edge maps."""

    image: ImageField = InputField(description="The image to resize")
    width: int = InputField(default=512, ge=1, description="The width to resize to (px)")
    height: int = InputField(default=512, ge=1, description="The height to resize to (px)")

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image, mode="RGB")
        out = heuristic_resize(np.asarray(image), (self.width, self.height))
        ref = ctx.images.save(Image.fromarray(out))
        return ImageOutput(image=ref, width=self.width, height=self.height)
