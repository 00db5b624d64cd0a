"""FLUX.2 Klein LoRA loader nodes: add LoRA references to the transformer and Qwen3 bundles.

InvokeAI 6.11 has no way to put a LoRA on a Klein model; 6.14 added these two nodes
(``flux2_klein_lora_loader``, ``flux2_klein_lora_collection_loader``) and we follow them:
the single loader takes a FLUX.2 LoRA (or a FLUX-family one the probe could not tell apart,
as InvokeAI lets its UI filter that), the collection loader only FLUX.2 LoRAs. ``flux2_denoise``
patches the transformer; LoRA layers for the Qwen3 encoder are refused there by name.
"""

from __future__ import annotations

from typing import Any

from invoke_nb.nodes.base import Input, InputField, Node, OutputField, UIHint, node, output
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.fields import LoRAField, _OptionalOutputs, with_lora
from invoke_nb.nodes.diffusion.flux.fields import TransformerField
from invoke_nb.nodes.diffusion.flux.loaders import require_base
from invoke_nb.nodes.diffusion.flux2.fields import Qwen3EncoderField
from invoke_nb.nodes.diffusion.sd.model_loaders import check_model
from invoke_nb.nodes.types import ModelIdentifierField

__all__ = [
    "Flux2KleinLoRACollectionLoaderNode",
    "Flux2KleinLoRALoaderNode",
    "Flux2KleinLoRALoaderOutput",
]

_QWEN3 = "Qwen3 tokenizer and text encoder"


@output("flux2_klein_lora_loader_output")
class Flux2KleinLoRALoaderOutput(_OptionalOutputs):
    """FLUX.2 Klein LoRA Loader Output"""

    transformer: TransformerField | None = OutputField(
        description="Transformer", title="Transformer"
    )
    qwen3_encoder: Qwen3EncoderField | None = OutputField(description=_QWEN3, title="Qwen3 Encoder")


def _with(bundle: Any, lora: LoRAField) -> Any:
    """``bundle`` plus ``lora`` unchecked: a collection skips only its own repeats, as InvokeAI's."""
    return bundle.model_copy(update={"loras": [*bundle.loras, lora]}) if bundle else None


@node(
    "flux2_klein_lora_loader",
    title="Apply LoRA - Flux2 Klein",
    category="model",
    tags=["lora", "model", "flux", "klein", "flux2"],
    version="1.0.0",
)
class Flux2KleinLoRALoaderNode(Node):
    """Apply a LoRA model to a FLUX.2 Klein transformer and/or Qwen3 text encoder."""

    lora: ModelIdentifierField = InputField(
        description="LoRA model to load",
        title="LoRA",
        ui_hint=UIHint.MODEL,
        ui_model_base=["flux2"],
        ui_model_type=["lora"],
    )
    weight: float = InputField(
        default=0.75, description="The weight at which the LoRA is applied to each model"
    )
    transformer: TransformerField | None = InputField(
        default=None, description="Transformer", input=Input.CONNECTION, title="Transformer"
    )
    qwen3_encoder: Qwen3EncoderField | None = InputField(
        default=None, description=_QWEN3, input=Input.CONNECTION, title="Qwen3 Encoder"
    )

    def invoke(self, ctx: Context) -> Flux2KleinLoRALoaderOutput:
        ident = check_model(ctx, self.lora, "LoRA")
        require_base(ctx, ident, "lora", ("flux2", "flux"), ("lora",))
        lora = LoRAField(lora=ident, weight=self.weight)
        return Flux2KleinLoRALoaderOutput(
            transformer=with_lora(ctx.node_id, self.transformer, lora, "transformer"),
            qwen3_encoder=with_lora(ctx.node_id, self.qwen3_encoder, lora, "qwen3_encoder"),
        )


@node(
    "flux2_klein_lora_collection_loader",
    title="Apply LoRA Collection - Flux2 Klein",
    category="model",
    tags=["lora", "model", "flux", "klein", "flux2"],
    version="1.0.1",
)
class Flux2KleinLoRACollectionLoaderNode(Node):
    """Applies a collection of LoRAs to a FLUX.2 Klein transformer and/or Qwen3 text encoder."""

    loras: LoRAField | list[LoRAField] | None = InputField(
        default=None,
        description="LoRA models and weights. May be a single LoRA or collection.",
        title="LoRAs",
        ui_model_base=["flux2"],
        ui_model_type=["lora"],
    )
    transformer: TransformerField | None = InputField(
        default=None, description="Transformer", input=Input.CONNECTION, title="Transformer"
    )
    qwen3_encoder: Qwen3EncoderField | None = InputField(
        default=None, description=_QWEN3, input=Input.CONNECTION, title="Qwen3 Encoder"
    )

    def invoke(self, ctx: Context) -> Flux2KleinLoRALoaderOutput:
        items = self.loras if isinstance(self.loras, list) else [self.loras] if self.loras else []
        transformer, qwen3 = self.transformer, self.qwen3_encoder
        seen: set[str] = set()
        for item in items:
            ident = check_model(ctx, item.lora, "LoRA")
            require_base(ctx, ident, "loras", ("flux2",), ("lora",))
            if ident.key in seen:  # InvokeAI skips repeats in a collection
                continue
            seen.add(ident.key)
            lora = LoRAField(lora=ident, weight=item.weight)
            transformer, qwen3 = _with(transformer, lora), _with(qwen3, lora)
        return Flux2KleinLoRALoaderOutput(transformer=transformer, qwen3_encoder=qwen3)
