"""The fields a control node hands to ``denoise_latents``, shaped as InvokeAI's."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from invoke_nb.nodes.base import Output, OutputField, output
from invoke_nb.nodes.types import ImageField, ModelIdentifierField, TensorField

__all__ = [
    "CONTROL_MODES",
    "RESIZE_MODES",
    "ControlField",
    "ControlOutput",
    "IPAdapterField",
    "IPAdapterOutput",
    "T2IAdapterField",
    "T2IAdapterOutput",
    "check_begin_end",
    "check_weights",
]

CONTROL_MODES = Literal["balanced", "more_prompt", "more_control", "unbalanced"]
RESIZE_MODES = Literal["just_resize", "crop_resize", "fill_resize", "just_resize_simple"]


def check_weights(v: float | list[float], low: float = -1, high: float = 2) -> float | list[float]:
    """InvokeAI's weight rule: each weight within [-1, 2]."""
    for w in v if isinstance(v, list) else [v]:
        if not low <= w <= high:
            raise ValueError(f"weight {w} is outside [{low}, {high}]")
    return v


def check_begin_end(begin: float, end: float) -> None:
    """The step window must not be empty."""
    if begin >= end:
        raise ValueError(f"begin_step_percent ({begin}) must be below end_step_percent ({end})")


class _Windowed(BaseModel):
    begin_step_percent: float = Field(
        default=0, ge=0, le=1, description="When the model is first applied (% of total steps)"
    )
    end_step_percent: float = Field(
        default=1, ge=0, le=1, description="When the model is last applied (% of total steps)"
    )

    @model_validator(mode="after")
    def _window(self) -> _Windowed:
        check_begin_end(self.begin_step_percent, self.end_step_percent)
        return self


class ControlField(_Windowed):
    """One ControlNet to apply: model, control image, weight, step window and modes."""

    image: ImageField = Field(description="The control image")
    control_model: ModelIdentifierField = Field(description="The ControlNet model to use")
    control_weight: float | list[float] = Field(
        default=1, description="The weight given to the ControlNet"
    )
    control_mode: CONTROL_MODES = Field(default="balanced", description="The control mode to use")
    resize_mode: RESIZE_MODES = Field(default="just_resize", description="The resize mode to use")

    _weights = field_validator("control_weight")(classmethod(lambda cls, v: check_weights(v)))


class T2IAdapterField(_Windowed):
    """One T2I-Adapter to apply."""

    image: ImageField = Field(description="The T2I-Adapter image prompt.")
    t2i_adapter_model: ModelIdentifierField = Field(description="The T2I-Adapter model to use.")
    weight: float | list[float] = Field(default=1, description="The weight of the T2I-Adapter.")
    resize_mode: RESIZE_MODES = Field(default="just_resize", description="The resize mode to use")

    _weights = field_validator("weight")(classmethod(lambda cls, v: check_weights(v)))


class IPAdapterField(_Windowed):
    """One IP-Adapter to apply, with its image encoder and optional region mask."""

    image: ImageField | list[ImageField] = Field(description="The IP-Adapter image prompt(s).")
    ip_adapter_model: ModelIdentifierField = Field(description="The IP-Adapter model to use.")
    image_encoder_model: ModelIdentifierField = Field(
        description="The name of the CLIP image encoder model."
    )
    weight: float | list[float] = Field(
        default=1, description="The weight given to the IP-Adapter."
    )
    target_blocks: list[str] = Field(default=[], description="The IP Adapter blocks to apply")
    method: str = Field(default="full", description="Weight apply method")
    mask: TensorField | None = Field(
        default=None, description="The bool mask of the region this IP-Adapter applies to."
    )

    _weights = field_validator("weight")(classmethod(lambda cls, v: check_weights(v)))


@output("control_output")
class ControlOutput(Output):
    """node output for ControlNet info"""

    control: ControlField = OutputField(description="ControlNet(s) to apply")


@output("t2i_adapter_output")
class T2IAdapterOutput(Output):
    """One T2I-Adapter to apply."""

    t2i_adapter: T2IAdapterField = OutputField(
        description="T2I-Adapter(s) to apply", title="T2I Adapter"
    )


@output("ip_adapter_output")
class IPAdapterOutput(Output):
    """One IP-Adapter to apply."""

    ip_adapter: IPAdapterField = OutputField(description="IP-Adapter to apply", title="IP-Adapter")
