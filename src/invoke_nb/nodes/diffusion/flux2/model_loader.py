"""The FLUX.2 Klein model loader: transformer, Qwen3 encoder and VAE references.

A diffusers Klein folder carries all three; a standalone transformer takes its VAE and
encoder from ``vae_model``/``qwen3_encoder_model`` or from a diffusers ``qwen3_source_model``
(InvokeAI's precedence). Nothing is loaded here.
"""

from __future__ import annotations

from typing import Literal

from invoke_nb.nodes.base import Input, InputField, Node, Output, OutputField, UIHint, node, output
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.fields import VAEField
from invoke_nb.nodes.diffusion.flux.fields import TransformerField
from invoke_nb.nodes.diffusion.flux2.errors import input_error
from invoke_nb.nodes.diffusion.flux2.fields import Qwen3EncoderField
from invoke_nb.nodes.diffusion.sd.model_loaders import check_model
from invoke_nb.nodes.types import ModelIdentifierField

__all__ = ["Flux2KleinModelLoaderNode", "Flux2KleinModelLoaderOutput"]


@output("flux2_klein_model_loader_output")
class Flux2KleinModelLoaderOutput(Output):
    """Flux2 Klein model loader output."""

    transformer: TransformerField = OutputField(description="Transformer", title="Transformer")
    qwen3_encoder: Qwen3EncoderField = OutputField(
        description="Qwen3 tokenizer and text encoder", title="Qwen3 Encoder"
    )
    vae: VAEField = OutputField(description="VAE", title="VAE")
    max_seq_len: Literal[256, 512] = OutputField(
        description="The max sequence length for the Qwen3 encoder.", title="Max Seq Length"
    )


@node(
    "flux2_klein_model_loader",
    title="Main Model - Flux2 Klein",
    category="model",
    tags=["model", "flux", "klein", "qwen3"],
    version="1.0.0",
)
class Flux2KleinModelLoaderNode(Node):
    """Loads a Flux2 Klein model, outputting its submodels."""

    model: ModelIdentifierField = InputField(
        description="Flux model (Transformer) to load",
        input=Input.DIRECT,
        title="Transformer",
        ui_hint=UIHint.MODEL,
        ui_model_base=["flux2"],
        ui_model_type=["main"],
    )
    vae_model: ModelIdentifierField | None = InputField(
        default=None,
        description="Standalone VAE model. If not provided, the VAE comes from the main "
        "model (diffusers) or the Qwen3 Source model.",
        input=Input.DIRECT,
        title="VAE",
        ui_hint=UIHint.MODEL,
        ui_model_base=["flux", "flux2"],
        ui_model_type=["vae"],
    )
    qwen3_encoder_model: ModelIdentifierField | None = InputField(
        default=None,
        description="Standalone Qwen3 Encoder model. If not provided, the encoder comes from "
        "the main model (diffusers) or the Qwen3 Source model.",
        input=Input.DIRECT,
        title="Qwen3 Encoder",
        ui_hint=UIHint.MODEL,
        ui_model_type=["qwen3_encoder"],
    )
    qwen3_source_model: ModelIdentifierField | None = InputField(
        default=None,
        description="Diffusers Flux2 Klein model to take the VAE and/or Qwen3 encoder from.",
        input=Input.DIRECT,
        title="Qwen3 Source (Diffusers)",
        ui_hint=UIHint.MODEL,
        ui_model_base=["flux2"],
        ui_model_type=["main"],
        ui_model_format=["diffusers"],
    )
    max_seq_len: Literal[256, 512] = InputField(
        default=512,
        description="Max sequence length for the Qwen3 encoder.",
        title="Max Seq Length",
    )

    def _source(self, ctx: Context) -> ModelIdentifierField | None:
        if self.qwen3_source_model is None:
            return None
        src = check_model(ctx, self.qwen3_source_model, "Qwen3 source model")
        rec = ctx.models.record(src)
        if rec.base != "flux2" or rec.format != "diffusers":
            raise input_error(
                ctx,
                "qwen3_source_model",
                f"{rec.name!r} is {rec.base}/{rec.format}; a diffusers FLUX.2 Klein model is needed",
            )
        return src

    def invoke(self, ctx: Context) -> Flux2KleinModelLoaderOutput:
        main = check_model(ctx, self.model, "FLUX.2 model")
        rec = ctx.models.record(main)
        if rec.base != "flux2" or rec.type != "main":
            raise input_error(
                ctx,
                "model",
                f"{rec.name!r} is {rec.base}/{rec.type}; a FLUX.2 Klein main model is needed",
            )
        diffusers = rec.format == "diffusers"
        source = self._source(ctx)
        if self.vae_model is not None:
            vae = check_model(ctx, self.vae_model, "VAE").with_submodel("vae")
        elif diffusers or source is not None:
            vae = (main if diffusers else source).with_submodel("vae")  # type: ignore[union-attr]
        else:
            raise input_error(
                ctx, "vae_model", "a single-file Klein model needs a VAE or a Qwen3 Source model"
            )
        if self.qwen3_encoder_model is not None:
            enc = check_model(ctx, self.qwen3_encoder_model, "Qwen3 encoder")
        elif diffusers or source is not None:
            enc = main if diffusers else source  # type: ignore[assignment]
        else:
            raise input_error(
                ctx,
                "qwen3_encoder_model",
                "a single-file Klein model needs a Qwen3 encoder or a Qwen3 Source model",
            )
        return Flux2KleinModelLoaderOutput(
            transformer=TransformerField(transformer=main.with_submodel("transformer"), loras=[]),
            qwen3_encoder=Qwen3EncoderField(
                tokenizer=enc.with_submodel("tokenizer"),
                text_encoder=enc.with_submodel("text_encoder"),
            ),
            vae=VAEField(vae=vae),
            max_seq_len=self.max_seq_len,
        )
