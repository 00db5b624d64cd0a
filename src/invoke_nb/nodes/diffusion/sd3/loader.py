"""``sd3_model_loader``: split an SD3 main model (and optional separate encoders/VAE) into parts.

Nothing loads here. As in InvokeAI, the T5 output always names an encoder (the main
model's ``text_encoder_3`` unless a T5 model is given); leaving T5 out is done by not
connecting it to ``sd3_text_encoder``.
"""

from __future__ import annotations

from invoke_nb.nodes.base import Input, InputField, Node, UIHint, node
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.fields import CLIPField, T5EncoderField, TransformerField, VAEField
from invoke_nb.nodes.diffusion.sd3.fields import Sd3ModelLoaderOutput, check_part
from invoke_nb.nodes.types import ModelIdentifierField

__all__ = ["Sd3ModelLoaderNode"]


def _resolved(m: ModelIdentifierField, rec: object, sub: str | None) -> ModelIdentifierField:
    return m.model_copy(
        update={
            "key": rec.key,  # type: ignore[attr-defined]
            "hash": rec.hash,  # type: ignore[attr-defined]
            "name": rec.name,  # type: ignore[attr-defined]
            "base": rec.base,  # type: ignore[attr-defined]
            "type": rec.type,  # type: ignore[attr-defined]
            "submodel_type": sub,
        }
    )


@node(
    "sd3_model_loader",
    title="Main Model - SD3",
    category="model",
    tags=["model", "sd3"],
    version="1.0.1",
)
class Sd3ModelLoaderNode(Node):
    """Loads a SD3 base model, outputting its submodels."""

    model: ModelIdentifierField = InputField(
        description="SD3 model (MMDiTX) to load",
        input=Input.DIRECT,
        ui_hint=UIHint.MODEL,
        ui_model_base=["sd-3"],
        ui_model_type=["main"],
    )
    t5_encoder_model: ModelIdentifierField | None = InputField(
        default=None,
        description="T5 tokenizer and text encoder",
        input=Input.DIRECT,
        title="T5 Encoder",
        ui_hint=UIHint.MODEL,
        ui_model_type=["t5_encoder"],
    )
    clip_l_model: ModelIdentifierField | None = InputField(
        default=None,
        description="CLIP Embed loader",
        input=Input.DIRECT,
        title="CLIP L Encoder",
        ui_hint=UIHint.MODEL,
        ui_model_type=["clip_embed"],
        ui_model_variant=["large"],
    )
    clip_g_model: ModelIdentifierField | None = InputField(
        default=None,
        description="CLIP-G Embed loader",
        input=Input.DIRECT,
        title="CLIP G Encoder",
        ui_hint=UIHint.MODEL,
        ui_model_type=["clip_embed"],
        ui_model_variant=["gigantic"],
    )
    vae_model: ModelIdentifierField | None = InputField(
        default=None,
        description="VAE model to load",
        title="VAE",
        ui_hint=UIHint.MODEL,
        ui_model_base=["sd-3"],
        ui_model_type=["vae"],
    )

    def invoke(self, ctx: Context) -> Sd3ModelLoaderOutput:
        m = self.model.with_submodel("transformer")
        main = _resolved(self.model, check_part(ctx, "model", m, "transformer"), None)

        def part(field: str, given: ModelIdentifierField | None, sub: str, kind: str):
            if given is None:
                return main.with_submodel(sub)
            rec = check_part(ctx, field, given.with_submodel(sub), kind)
            return _resolved(given, rec, sub if rec.type == "main" else None)

        t5 = part("t5_encoder_model", self.t5_encoder_model, "text_encoder_3", "t5_encoder")
        t5_tok = (
            t5.with_submodel("tokenizer_3") if t5.type == "main" else t5.with_submodel("tokenizer")
        )
        return Sd3ModelLoaderOutput(
            transformer=TransformerField(transformer=main.with_submodel("transformer"), loras=[]),
            clip_l=CLIPField(
                tokenizer=main.with_submodel("tokenizer"),
                text_encoder=part("clip_l_model", self.clip_l_model, "text_encoder", "clip_l"),
                loras=[],
                skipped_layers=0,
            ),
            clip_g=CLIPField(
                tokenizer=main.with_submodel("tokenizer_2"),
                text_encoder=part("clip_g_model", self.clip_g_model, "text_encoder_2", "clip_g"),
                loras=[],
                skipped_layers=0,
            ),
            t5_encoder=T5EncoderField(tokenizer=t5_tok, text_encoder=t5, loras=[]),
            vae=VAEField(vae=part("vae_model", self.vae_model, "vae", "vae")),
        )
