"""SD3 conditioning, outputs and the checks every SD3 node makes on the models it is given.

A wrong part (an SD1 CLIP wired into ``clip_l``, a FLUX transformer into ``sd3_denoise``)
is refused from the model records alone, before anything loads, with an
:class:`SD3InputError` naming the node and the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from invoke_nb.nodes.base import NodeInputError, Output, OutputField, output
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.fields import CLIPField, T5EncoderField, TransformerField, VAEField
from invoke_nb.nodes.types import ModelIdentifierField

if TYPE_CHECKING:
    import torch

__all__ = [
    "SD3Conditioning",
    "SD3ConditioningField",
    "SD3ConditioningOutput",
    "SD3InputError",
    "Sd3ModelLoaderOutput",
    "check_part",
]


class SD3InputError(NodeInputError):
    """An SD3 node's input does not fit SD3; names the node and the field."""

    def __init__(self, ctx: Context, field: str, problem: str) -> None:
        super().__init__(ctx.node_id, ctx.node_type, field, problem)


class SD3ConditioningField(BaseModel):
    """A reference to SD3 prompt conditioning."""

    conditioning_name: str = Field(description="The name of conditioning tensor")


@dataclass
class SD3Conditioning:
    """What ``sd3_text_encoder`` produces: CLIP-L/G hidden states and pooled outputs, T5."""

    clip_l_embeds: torch.Tensor
    clip_l_pooled_embeds: torch.Tensor
    clip_g_embeds: torch.Tensor
    clip_g_pooled_embeds: torch.Tensor
    t5_embeds: torch.Tensor | None


@output("sd3_conditioning_output")
class SD3ConditioningOutput(Output):
    """Base class for nodes that output a single SD3 conditioning tensor"""

    conditioning: SD3ConditioningField = OutputField(description="Conditioning tensor")


@output("sd3_model_loader_output")
class Sd3ModelLoaderOutput(Output):
    """SD3 base model loader output."""

    transformer: TransformerField = OutputField(description="Transformer", title="Transformer")
    clip_l: CLIPField = OutputField(
        description="CLIP (tokenizer, text encoder, LoRAs) and skipped layer count", title="CLIP L"
    )
    clip_g: CLIPField = OutputField(
        description="CLIP (tokenizer, text encoder, LoRAs) and skipped layer count", title="CLIP G"
    )
    t5_encoder: T5EncoderField = OutputField(
        description="T5 tokenizer and text encoder", title="T5 Encoder"
    )
    vae: VAEField = OutputField(description="VAE", title="VAE")


# (record type, submodel) pairs each SD3 part may come from; "main" means an sd-3 main model.
PARTS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "transformer": (("main", "transformer"),),
    "clip_l": (("main", "text_encoder"), ("main", "tokenizer"), ("clip_embed", None)),
    "clip_g": (("main", "text_encoder_2"), ("main", "tokenizer_2"), ("clip_embed", None)),
    "t5_encoder": (("main", "text_encoder_3"), ("main", "tokenizer_3"), ("t5_encoder", None)),
    "vae": (("main", "vae"), ("vae", None), ("vae", "vae")),
}


def check_part(ctx: Context, field: str, ident: ModelIdentifierField, part: str) -> Any:
    """The record behind ``ident`` if it can serve as SD3's ``part``, else SD3InputError."""
    if ctx.models is None:
        raise SD3InputError(ctx, field, "no model service (run inside a Studio or pass Services)")
    try:
        rec = ctx.models.record(ident)
    except Exception as exc:
        raise SD3InputError(
            ctx, field, f"unknown model {ident.name or ident.key!r}: {exc}"
        ) from exc
    sub = ident.submodel_type
    ok = False
    for kind, wanted in PARTS[part]:
        if rec.type != kind:
            continue
        if kind == "main":
            ok = rec.base == "sd-3" and sub == wanted
        elif kind == "vae":
            ok = rec.base in ("sd-3", "any")
        else:
            ok = sub is None or sub.startswith(("text_encoder", "tokenizer"))
        if ok:
            break
    if not ok:
        what = (
            f"{rec.type} model {rec.name!r} (base {rec.base}"
            + (f", part {sub}" if sub else "")
            + ")"
        )
        raise SD3InputError(ctx, field, f"{what} is not an SD3 {part.replace('_', '-')} part")
    return rec
