"""FLUX model loader and LoRA loader nodes: they hand out descriptions, never weights.

The FLUX main model is only the transformer; T5, CLIP-L and the VAE are separate models,
chosen in the loader, so each is its own cache entry. The T5 sequence length follows the
transformer's variant (256 for schnell, 512 otherwise), as InvokeAI's loader reports it.
"""

from __future__ import annotations

from typing import Any

from invoke_nb.nodes.base import Input, InputField, Node, UIHint, node
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.fields import CLIPField, LoRAField, VAEField, with_lora
from invoke_nb.nodes.diffusion.flux.fields import (
    FluxLoRALoaderOutput,
    FluxModelLoaderOutput,
    T5EncoderField,
    TransformerField,
)
from invoke_nb.nodes.diffusion.sd.model_loaders import check_model
from invoke_nb.nodes.types import ModelIdentifierField

__all__ = [
    "FluxLoRACollectionLoaderNode",
    "FluxLoRALoaderNode",
    "FluxModelError",
    "FluxModelLoaderNode",
    "require_base",
]


class FluxModelError(ValueError):
    """A FLUX node was given a model of the wrong family or kind."""


def require_base(
    ctx: Context,
    model: ModelIdentifierField,
    field: str,
    bases: tuple[str, ...],
    types: tuple[str, ...],
) -> Any:
    """The record behind ``model``; a :class:`FluxModelError` naming node and field unless its
    base and type are among those accepted."""
    rec = ctx.models.record(model)
    if rec.base not in bases or rec.type not in types:
        raise FluxModelError(
            f"node {ctx.node_id!r} ({ctx.node_type}), field {field!r}: model {rec.name!r} is "
            f"{rec.base}/{rec.type}; {' or '.join(bases)} {'/'.join(types)} needed"
        )
    return rec


@node(
    "flux_model_loader",
    title="Main Model - FLUX",
    category="model",
    tags=["model", "flux"],
    version="1.0.7",
)
class FluxModelLoaderNode(Node):
    """Loads a flux base model, outputting its submodels."""

    model: ModelIdentifierField = InputField(
        description="Flux model (Transformer) to load",
        ui_hint=UIHint.MODEL,
        ui_model_base=["flux"],
        ui_model_type=["main"],
    )
    t5_encoder_model: ModelIdentifierField = InputField(
        description="T5 tokenizer and text encoder",
        title="T5 Encoder",
        ui_hint=UIHint.MODEL,
        ui_model_type=["t5_encoder"],
    )
    clip_embed_model: ModelIdentifierField = InputField(
        description="CLIP Embed loader",
        title="CLIP Embed",
        ui_hint=UIHint.MODEL,
        ui_model_type=["clip_embed"],
    )
    vae_model: ModelIdentifierField = InputField(
        description="VAE model to load",
        title="VAE",
        ui_hint=UIHint.MODEL,
        ui_model_base=["flux"],
        ui_model_type=["vae"],
    )

    def invoke(self, ctx: Context) -> FluxModelLoaderOutput:
        model = check_model(ctx, self.model, "FLUX model")
        t5 = check_model(ctx, self.t5_encoder_model, "T5 encoder")
        clip = check_model(ctx, self.clip_embed_model, "CLIP embed model")
        vae = check_model(ctx, self.vae_model, "VAE")
        rec = require_base(ctx, model, "model", ("flux",), ("main",))
        require_base(ctx, t5, "t5_encoder_model", ("any", "sd-3"), ("t5_encoder", "main"))
        require_base(ctx, clip, "clip_embed_model", ("any",), ("clip_embed",))
        require_base(ctx, vae, "vae_model", ("flux",), ("vae", "main"))
        if rec.variant is None:
            raise FluxModelError(
                f"node {ctx.node_id!r}, field 'model': {rec.name!r} has no FLUX variant "
                "(dev, schnell or dev_fill) in its record"
            )
        return FluxModelLoaderOutput(
            transformer=TransformerField(transformer=model.with_submodel("transformer"), loras=[]),
            clip=CLIPField(
                tokenizer=clip.with_submodel("tokenizer"),
                text_encoder=clip.with_submodel("text_encoder"),
                loras=[],
                skipped_layers=0,
            ),
            t5_encoder=T5EncoderField(
                tokenizer=t5.with_submodel("tokenizer_2"),
                text_encoder=t5.with_submodel("text_encoder_2"),
                loras=[],
            ),
            vae=VAEField(vae=vae.with_submodel("vae")),
            max_seq_len=256 if rec.variant == "schnell" else 512,
        )


@node(
    "flux_lora_loader",
    title="Apply LoRA - FLUX",
    category="model",
    tags=["lora", "model", "flux"],
    version="1.2.1",
)
class FluxLoRALoaderNode(Node):
    """Apply a LoRA model to a FLUX transformer and/or text encoder."""

    lora: ModelIdentifierField = InputField(
        description="LoRA model to load",
        title="LoRA",
        ui_hint=UIHint.MODEL,
        ui_model_base=["flux"],
        ui_model_type=["lora"],
    )
    weight: float = InputField(
        default=0.75, description="The weight at which the LoRA is applied to each model"
    )
    transformer: TransformerField | None = InputField(
        default=None, description="Transformer", input=Input.CONNECTION, title="FLUX Transformer"
    )
    clip: CLIPField | None = InputField(
        default=None,
        description="CLIP (tokenizer, text encoder, LoRAs) and skipped layer count",
        input=Input.CONNECTION,
        title="CLIP",
    )
    t5_encoder: T5EncoderField | None = InputField(
        default=None,
        description="T5 tokenizer and text encoder",
        input=Input.CONNECTION,
        title="T5 Encoder",
    )

    def invoke(self, ctx: Context) -> FluxLoRALoaderOutput:
        ident = check_model(ctx, self.lora, "LoRA")
        require_base(ctx, ident, "lora", ("flux",), ("lora",))
        lora = LoRAField(lora=ident, weight=self.weight)
        return FluxLoRALoaderOutput(
            transformer=with_lora(ctx.node_id, self.transformer, lora, "transformer"),
            clip=with_lora(ctx.node_id, self.clip, lora, "CLIP encoder"),
            t5_encoder=with_lora(ctx.node_id, self.t5_encoder, lora, "T5 encoder"),
        )


@node(
    "flux_lora_collection_loader",
    title="Apply LoRA Collection - FLUX",
    category="model",
    tags=["lora", "model", "flux"],
    version="1.3.1",
)
class FluxLoRACollectionLoaderNode(Node):
    """Applies a collection of LoRAs to a FLUX transformer."""

    loras: LoRAField | list[LoRAField] | None = InputField(
        default=None,
        description="LoRA models and weights. May be a single LoRA or collection.",
        title="LoRAs",
    )
    transformer: TransformerField | None = InputField(
        default=None, description="Transformer", input=Input.CONNECTION, title="Transformer"
    )
    clip: CLIPField | None = InputField(
        default=None,
        description="CLIP (tokenizer, text encoder, LoRAs) and skipped layer count",
        input=Input.CONNECTION,
        title="CLIP",
    )
    t5_encoder: T5EncoderField | None = InputField(
        default=None,
        description="T5 tokenizer and text encoder",
        input=Input.CONNECTION,
        title="T5 Encoder",
    )

    def invoke(self, ctx: Context) -> FluxLoRALoaderOutput:
        items = self.loras if isinstance(self.loras, list) else [self.loras] if self.loras else []
        transformer, clip, t5 = self.transformer, self.clip, self.t5_encoder
        seen: set[str] = set()
        for item in items:
            ident = check_model(ctx, item.lora, "LoRA")
            require_base(ctx, ident, "loras", ("flux",), ("lora",))
            if ident.key in seen:  # InvokeAI skips repeats in a collection
                continue
            seen.add(ident.key)
            lora = LoRAField(lora=ident, weight=item.weight)
            transformer = with_lora(ctx.node_id, transformer, lora, "transformer")
            clip = with_lora(ctx.node_id, clip, lora, "CLIP encoder")
            t5 = with_lora(ctx.node_id, t5, lora, "T5 encoder")
        return FluxLoRALoaderOutput(transformer=transformer, clip=clip, t5_encoder=t5)
