"""``cogview4_model_loader``: references to a CogView4 folder's parts (nothing loads here)."""

from __future__ import annotations

from invoke_nb.nodes.base import Input, InputField, Node, UIHint, node
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.cogview4.fields import (
    CogView4ModelLoaderOutput,
    GlmEncoderField,
    TransformerField,
)
from invoke_nb.nodes.diffusion.fields import VAEField
from invoke_nb.nodes.diffusion.sd.model_loaders import check_model
from invoke_nb.nodes.types import ModelIdentifierField

__all__ = ["CogView4ModelLoaderNode", "WrongBaseError", "check_base"]


class WrongBaseError(ValueError):
    """A model of another family was given where this family's model is needed."""


def check_base(
    ctx: Context, model: ModelIdentifierField, field: str, base: str, types: tuple[str, ...]
) -> ModelIdentifierField:
    """Resolve ``model`` and fail, naming node and field, unless its base/type fit."""
    m = check_model(ctx, model, field)
    if m.base != base or m.type not in types:
        raise WrongBaseError(
            f"node {ctx.node_id!r} ({ctx.node_type}): field {field!r} needs a {base} "
            f"{'/'.join(types)} model; {m.name!r} is {m.base} {m.type}"
        )
    return m


@node(
    "cogview4_model_loader",
    title="Main Model - CogView4",
    category="model",
    tags=["model", "cogview4"],
    version="1.0.0",
)
class CogView4ModelLoaderNode(Node):
    """Loads a CogView4 base model, outputting its submodels."""

    model: ModelIdentifierField = InputField(
        description="CogView4 model (Transformer) to load",
        input=Input.DIRECT,
        ui_hint=UIHint.MODEL,
        ui_model_base=["cogview4"],
        ui_model_type=["main"],
    )

    def invoke(self, ctx: Context) -> CogView4ModelLoaderOutput:
        m = check_base(ctx, self.model, "model", "cogview4", ("main",))
        return CogView4ModelLoaderOutput(
            transformer=TransformerField(transformer=m.with_submodel("transformer"), loras=[]),
            glm_encoder=GlmEncoderField(
                tokenizer=m.with_submodel("tokenizer"),
                text_encoder=m.with_submodel("text_encoder"),
            ),
            vae=VAEField(vae=m.with_submodel("vae")),
        )
