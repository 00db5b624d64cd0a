"""The canvas's guidance layers, and what they become for the studio's one-liners.

InvokeAI's canvas has, besides raster layers and the inpaint mask, control layers (pixels
rasterized over the box on black, with a ControlNet or T2I-Adapter, its weight, begin/end
and, for ControlNets, a control mode), regional guidance layers (a painted mask with a
prompt, a negative prompt and reference images for masked IP-Adapters) and global
reference images (an IP-Adapter image). Its graph builders turn them into ``controlnet`` /
``t2i_adapter`` / ``ip_adapter`` nodes, ``alpha_mask_to_tensor`` masks and regional
``compel`` prompts; the studio's ``control=``, ``ip_adapter=`` and ``regions=`` build the
same nodes (:mod:`invoke_nb.graph.standard_control`), so the canvas only has to turn its
layers into those arguments: :func:`layer_arguments`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from PIL import Image
from pydantic import Field

from invoke_nb.widgets.messages import Params

if TYPE_CHECKING:
    from invoke_nb.widgets.canvas import CanvasLayer

__all__ = [
    "CanvasReference",
    "CanvasRegion",
    "ControlSettings",
    "ControlState",
    "ReferenceState",
    "RegionState",
    "layer_arguments",
]

ControlMode = Literal["balanced", "more_prompt", "more_control", "unbalanced"]
IPMethod = Literal["full", "style", "composition", "style_strong", "style_precise"]
CLIPVision = Literal["ViT-H", "ViT-G", "ViT-L"]


# -- what the browser sends (limits as InvokeAI's nodes have them) ------------------------------
class ControlState(Params):
    model: str | None = None
    weight: float = Field(0.75, ge=-1, le=2)
    begin: float = Field(0.0, ge=0, le=1)
    end: float = Field(0.75, ge=0, le=1)
    mode: ControlMode = "balanced"


class RegionState(Params):
    id: str = Field(min_length=1, max_length=64)
    name: str = "region"
    prompt: str = ""
    negative: str = ""
    visible: bool = True
    mask_empty: bool = True


class ReferenceState(Params):
    id: str
    model: str | None = None
    weight: float = Field(1.0, ge=-1, le=2)
    begin: float = Field(0.0, ge=0, le=1)
    end: float = Field(1.0, ge=0, le=1)
    method: IPMethod = "full"
    clip_vision_model: CLIPVision = "ViT-H"
    region: str | None = None


# -- what the kernel keeps ----------------------------------------------------------------------
@dataclass(frozen=True)
class ControlSettings:
    """A control layer's adapter: model (key or name), weight, begin/end, control mode.
    The defaults are those of a new ControlNet layer in InvokeAI's canvas."""

    model: str | None = None
    weight: float = 0.75
    begin: float = 0.0
    end: float = 0.75
    mode: ControlMode = "balanced"

    @classmethod
    def of(cls, value: Any) -> ControlSettings:
        """From a ControlSettings, a dict of its fields (checked) or None (defaults)."""
        if isinstance(value, ControlSettings):
            return value
        return cls(**ControlState.model_validate(value or {}).model_dump())

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "weight": self.weight,
            "begin": self.begin,
            "end": self.end,
            "mode": self.mode,
        }


@dataclass(frozen=True)
class CanvasRegion:
    """A regional guidance layer: its mask over the box (L, 255 where painted) and prompts."""

    id: str
    name: str
    mask: Image.Image
    prompt: str = ""
    negative: str = ""
    visible: bool = True

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "prompt": self.prompt,
            "negative": self.negative,
            "visible": self.visible,
        }


@dataclass(frozen=True)
class CanvasReference:
    """A reference image for an IP-Adapter: global (``region`` None) or a region's."""

    id: str
    name: str
    image: Image.Image
    model: str | None = None
    weight: float = 1.0
    begin: float = 0.0
    end: float = 1.0
    method: IPMethod = "full"
    clip_vision_model: CLIPVision = "ViT-H"
    region: str | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "width": self.image.width,
            "height": self.image.height,
            "model": self.model,
            "weight": self.weight,
            "begin": self.begin,
            "end": self.end,
            "method": self.method,
            "clip_vision_model": self.clip_vision_model,
            "region": self.region,
        }

    def updated(self, s: ReferenceState) -> CanvasReference:
        return replace(self, **s.model_dump(exclude={"id"}))


def control_image(layer: CanvasLayer, box: tuple[int, int, int, int]) -> Image.Image:
    """The control layer's pixels over the box on black, opacity ignored (as InvokeAI
    rasterizes a control layer for its adapter)."""
    from invoke_nb.widgets.canvas import composite_layers

    flat = composite_layers([replace(layer, opacity=1.0, visible=True)], box)
    out = Image.new("RGB", flat.size, (0, 0, 0))
    out.paste(flat, mask=flat.getchannel("A"))
    return out


def _ip(ref: CanvasReference, where: str) -> dict[str, Any]:
    if not ref.model:
        raise ValueError(f"{where} {ref.name!r} has no IP-Adapter model: pick one")
    return {
        "model": ref.model,
        "image": ref.image.convert("RGB"),
        "weight": ref.weight,
        "begin": ref.begin,
        "end": ref.end,
        "method": ref.method,
        "clip_vision_model": ref.clip_vision_model,
    }


def layer_arguments(
    layers: Sequence[CanvasLayer],
    regions: Sequence[CanvasRegion],
    references: Sequence[CanvasReference],
    box: tuple[int, int, int, int],
) -> dict[str, Any]:
    """``control=``, ``ip_adapter=`` and ``regions=`` for the studio's one-liners, from the
    visible control layers, the global reference images and the visible regional layers
    whose mask reaches into the box. A layer missing what it needs (a model, a prompt)
    raises ValueError naming it: InvokeAI will not invoke with such a layer either."""
    out: dict[str, Any] = {}
    control = []
    for la in layers:
        if la.kind != "control" or not la.visible:
            continue
        c = la.control or ControlSettings()
        if not c.model:
            raise ValueError(f"control layer {la.name!r} has no control model: pick one")
        if c.begin >= c.end:
            raise ValueError(
                f"control layer {la.name!r}: begin {c.begin} is not before end {c.end}"
            )
        entry: dict[str, Any] = {
            "model": c.model,
            "image": control_image(la, box),
            "weight": c.weight,
            "begin": c.begin,
            "end": c.end,
            "mode": c.mode,
            "resize_mode": "just_resize",
        }
        control.append(entry)
    if control:
        out["control"] = control
    ips = [_ip(r, "reference image") for r in references if r.region is None]
    if ips:
        out["ip_adapter"] = ips
    regs = []
    for rg in regions:
        if not rg.visible or rg.mask.getextrema()[1] == 0:
            continue  # nothing of it in the box: InvokeAI's region would have no effect either
        refs = [_ip(r, f"region {rg.name!r} reference") for r in references if r.region == rg.id]
        if not (rg.prompt or rg.negative or refs):
            raise ValueError(
                f"region {rg.name!r} has no prompt, negative prompt or reference image"
            )
        regs.append(
            {
                "mask": rg.mask.copy(),
                "prompt": rg.prompt,
                "negative": rg.negative,
                "ip_adapter": refs,
            }
        )
    if regs:
        out["regions"] = regs
    return out
