"""Z-Image model and LoRA loader nodes (references only; nothing loads here).

As InvokeAI's: the transformer comes from ``model`` (a diffusers folder or a single-file
transformer); the VAE from ``vae_model`` or else the ``qwen3_source_model`` folder; the
Qwen3 encoder from ``qwen3_encoder_model`` or else that folder. We also let a Z-Image
diffusers ``model`` supply both when neither is given (InvokeAI's UI sets the source to the
same folder). LoRAs accumulate on the transformer and Qwen3 encoder fields.
"""

from __future__ import annotations

from invoke_nb.nodes.base import Input, InputField, Node, UIHint, node
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.cogview4.fields import TransformerField
from invoke_nb.nodes.diffusion.cogview4.loader import WrongBaseError, check_base
from invoke_nb.nodes.diffusion.fields import LoRAField, VAEField, with_lora
from invoke_nb.nodes.diffusion.sd.model_loaders import check_model
from invoke_nb.nodes.diffusion.z_image.fields import (
    Qwen3EncoderField,
    ZImageLoRALoaderOutput,
    ZImageModelLoaderOutput,
)
from invoke_nb.nodes.types import ModelIdentifierField

__all__ = [
    "ZImageLoRACollectionLoaderNode",
    "ZImageLoRALoaderNode",
    "ZImageModelLoaderNode",
]

BASE = "z-image"


def _missing(ctx: Context, what: str, fields: str) -> WrongBaseError:
    return WrongBaseError(
        f"node {ctx.node_id!r} (z_image_model_loader): no {what} source: set {fields}"
    )


@node(
    "z_image_model_loader",
    title="Main Model - Z-Image",
    category="model",
    tags=["model", "z-image"],
    version="3.0.0",
)
class ZImageModelLoaderNode(Node):
    """Loads a Z-Image model, outputting its submodels."""

    model: ModelIdentifierField = InputField(
        description="Z-Image model (Transformer) to load",
        input=Input.DIRECT,
        title="Transformer",
        ui_hint=UIHint.MODEL,
        ui_model_base=["z-image"],
        ui_model_type=["main"],
    )
    vae_model: ModelIdentifierField | None = InputField(
        default=None,
        description="Standalone VAE model. Z-Image uses the same VAE as FLUX (16-channel). "
        "If not provided, VAE will be loaded from the Qwen3 Source model.",
        input=Input.DIRECT,
        title="VAE",
        ui_hint=UIHint.MODEL,
        ui_model_base=["flux"],
        ui_model_type=["vae"],
    )
    qwen3_encoder_model: ModelIdentifierField | None = InputField(
        default=None,
        description="Standalone Qwen3 Encoder model. "
        "If not provided, encoder will be loaded from the Qwen3 Source model.",
        input=Input.DIRECT,
        title="Qwen3 Encoder",
        ui_hint=UIHint.MODEL,
        ui_model_type=["qwen3_encoder"],
    )
    qwen3_source_model: ModelIdentifierField | None = InputField(
        default=None,
        description="Diffusers Z-Image model to extract VAE and/or Qwen3 encoder from.",
        input=Input.DIRECT,
        title="Qwen3 Source (Diffusers)",
        ui_hint=UIHint.MODEL,
        ui_model_base=["z-image"],
        ui_model_type=["main"],
        ui_model_format=["diffusers"],
    )

    def invoke(self, ctx: Context) -> ZImageModelLoaderOutput:
        m = check_base(ctx, self.model, "model", BASE, ("main",))
        source = None
        if self.qwen3_source_model is not None:
            source = check_base(ctx, self.qwen3_source_model, "qwen3_source_model", BASE, ("main",))
            if ctx.models.record(source).format != "diffusers":
                raise WrongBaseError(
                    f"node {ctx.node_id!r} (z_image_model_loader): field 'qwen3_source_model' "
                    f"needs a diffusers-format Z-Image model; {source.name!r} is not one"
                )
        elif ctx.models.record(m).format == "diffusers":
            source = m
        if self.vae_model is not None:
            vae = check_model(ctx, self.vae_model, "vae_model")
            if vae.type != "vae" or vae.base not in ("flux", BASE):
                raise WrongBaseError(
                    f"node {ctx.node_id!r} (z_image_model_loader): field 'vae_model' needs a "
                    f"FLUX (16-channel) VAE; {vae.name!r} is {vae.base} {vae.type}"
                )
            vae = vae.with_submodel(None)
        elif source is not None:
            vae = source.with_submodel("vae")
        else:
            raise _missing(ctx, "VAE", "'vae_model' or 'qwen3_source_model'")
        if self.qwen3_encoder_model is not None:
            enc = check_model(ctx, self.qwen3_encoder_model, "qwen3_encoder_model")
            if enc.type != "qwen3_encoder":
                raise WrongBaseError(
                    f"node {ctx.node_id!r} (z_image_model_loader): field 'qwen3_encoder_model' "
                    f"needs a Qwen3 encoder; {enc.name!r} is {enc.base} {enc.type}"
                )
        elif source is not None:
            enc = source
        else:
            raise _missing(ctx, "Qwen3 encoder", "'qwen3_encoder_model' or 'qwen3_source_model'")
        return ZImageModelLoaderOutput(
            transformer=TransformerField(transformer=m.with_submodel("transformer"), loras=[]),
            qwen3_encoder=Qwen3EncoderField(
                tokenizer=enc.with_submodel("tokenizer"),
                text_encoder=enc.with_submodel("text_encoder"),
            ),
            vae=VAEField(vae=vae),
        )


def _append_lora(out: ZImageLoRALoaderOutput, lora: LoRAField) -> None:
    """Add ``lora`` to the copied bundles unchecked: a collection skips only its own repeats,
    as InvokeAI's does."""
    for bundle in (out.transformer, out.qwen3_encoder):
        if bundle is not None:
            bundle.loras.append(lora)


@node(
    "z_image_lora_loader",
    title="Apply LoRA - Z-Image",
    category="model",
    tags=["lora", "model", "z-image"],
    version="1.0.0",
)
class ZImageLoRALoaderNode(Node):
    """Apply a LoRA model to a Z-Image transformer and/or Qwen3 text encoder."""

    lora: ModelIdentifierField = InputField(
        description="LoRA model to load",
        title="LoRA",
        ui_hint=UIHint.MODEL,
        ui_model_base=["z-image"],
        ui_model_type=["lora"],
    )
    weight: float = InputField(
        default=0.75, description="The weight at which the LoRA is applied to each model"
    )
    transformer: TransformerField | None = InputField(
        default=None,
        description="Transformer",
        input=Input.CONNECTION,
        title="Z-Image Transformer",
    )
    qwen3_encoder: Qwen3EncoderField | None = InputField(
        default=None,
        description="Qwen3 tokenizer and text encoder",
        input=Input.CONNECTION,
        title="Qwen3 Encoder",
    )

    def invoke(self, ctx: Context) -> ZImageLoRALoaderOutput:
        lora = LoRAField(
            lora=check_base(ctx, self.lora, "lora", BASE, ("lora",)), weight=self.weight
        )
        return ZImageLoRALoaderOutput(
            transformer=with_lora(ctx.node_id, self.transformer, lora, "transformer"),
            qwen3_encoder=with_lora(ctx.node_id, self.qwen3_encoder, lora, "qwen3_encoder"),
        )


@node(
    "z_image_lora_collection_loader",
    title="Apply LoRA Collection - Z-Image",
    category="model",
    tags=["lora", "model", "z-image"],
    version="1.0.0",
)
class ZImageLoRACollectionLoaderNode(Node):
    """Applies a collection of LoRAs to a Z-Image transformer."""

    loras: LoRAField | list[LoRAField] | None = InputField(
        default=None,
        description="LoRA models and weights. May be a single LoRA or collection.",
        title="LoRAs",
    )
    transformer: TransformerField | None = InputField(
        default=None, description="Transformer", input=Input.CONNECTION, title="Transformer"
    )
    qwen3_encoder: Qwen3EncoderField | None = InputField(
        default=None,
        description="Qwen3 tokenizer and text encoder",
        input=Input.CONNECTION,
        title="Qwen3 Encoder",
    )

    def invoke(self, ctx: Context) -> ZImageLoRALoaderOutput:
        items = self.loras if isinstance(self.loras, list) else [self.loras]
        out = ZImageLoRALoaderOutput(
            transformer=self.transformer.model_copy(deep=True) if self.transformer else None,
            qwen3_encoder=self.qwen3_encoder.model_copy(deep=True) if self.qwen3_encoder else None,
        )
        seen: set[str] = set()
        for item in items:
            if item is None:
                continue
            lora = check_base(ctx, item.lora, "loras", BASE, ("lora",))
            if lora.key in seen:
                continue
            seen.add(lora.key)
            _append_lora(out, LoRAField(lora=lora, weight=item.weight))
        return out
