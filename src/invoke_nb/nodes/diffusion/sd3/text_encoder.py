"""``sd3_text_encoder``: CLIP-L, CLIP-G and (optionally) T5 encodings of one prompt.

As InvokeAI and diffusers do it: each CLIP gives its penultimate hidden state (77 tokens)
and its projected pooled output; T5 gives 256 tokens, or nothing when not connected (the
denoiser then uses zeros, as SD3 was trained with encoder dropout). Each encoder is
loaded, used and released in turn, so only one sits on the device at a time.
"""

from __future__ import annotations

from typing import Any

from invoke_nb.nodes.base import Input, InputField, Node, node
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.devices import execution_device
from invoke_nb.nodes.diffusion.fields import CLIPField, T5EncoderField
from invoke_nb.nodes.diffusion.sd3.fields import (
    SD3Conditioning,
    SD3ConditioningField,
    SD3ConditioningOutput,
    SD3InputError,
    check_part,
)

__all__ = ["SD3_T5_MAX_SEQ_LEN", "Sd3TextEncoderNode"]

SD3_T5_MAX_SEQ_LEN = 256  # diffusers' default, as InvokeAI uses it
CLIP_MAX_LEN = 77


@node(
    "sd3_text_encoder",
    title="Prompt - SD3",
    category="conditioning",
    tags=["prompt", "conditioning", "sd3"],
    version="1.0.1",
)
class Sd3TextEncoderNode(Node):
    """Encodes and preps a prompt for a SD3 image."""

    clip_l: CLIPField = InputField(
        description="CLIP (tokenizer, text encoder, LoRAs) and skipped layer count",
        input=Input.CONNECTION,
        title="CLIP L",
    )
    clip_g: CLIPField = InputField(
        description="CLIP (tokenizer, text encoder, LoRAs) and skipped layer count",
        input=Input.CONNECTION,
        title="CLIP G",
    )
    t5_encoder: T5EncoderField | None = InputField(
        default=None,
        description="T5 tokenizer and text encoder",
        input=Input.CONNECTION,
        title="T5Encoder",
    )
    prompt: str = InputField(description="Text prompt to encode.")

    def _check(self, ctx: Context) -> None:
        """Every part is an SD3 part, checked before anything loads."""
        for field, clip in (("clip_l", self.clip_l), ("clip_g", self.clip_g)):
            check_part(ctx, field, clip.text_encoder, field)
            check_part(ctx, field, clip.tokenizer, field)
            if clip.loras:
                raise SD3InputError(ctx, field, "LoRAs on SD3 text encoders are not supported")
            if clip.skipped_layers:
                raise SD3InputError(ctx, field, "SD3 text encoders take no clip skip")
        if self.t5_encoder is not None:
            for ident in (self.t5_encoder.text_encoder, self.t5_encoder.tokenizer):
                rec = check_part(ctx, "t5_encoder", ident, "t5_encoder")
                missing = (rec.extra or {}).get("submodels")
                if (
                    rec.type == "main"
                    and missing is not None
                    and ident.submodel_type not in missing
                ):
                    raise SD3InputError(
                        ctx,
                        "t5_encoder",
                        f"model {rec.name!r} has no {ident.submodel_type} (no T5 in this "
                        "folder): disconnect t5_encoder or choose a T5 encoder model",
                    )

    def invoke(self, ctx: Context) -> SD3ConditioningOutput:
        self._check(ctx)
        l_embeds, l_pooled = self._clip(ctx, self.clip_l)
        g_embeds, g_pooled = self._clip(ctx, self.clip_g)
        t5 = self._t5(ctx) if self.t5_encoder is not None else None
        name = ctx.conditioning.save(
            SD3Conditioning(
                clip_l_embeds=l_embeds,
                clip_l_pooled_embeds=l_pooled,
                clip_g_embeds=g_embeds,
                clip_g_pooled_embeds=g_pooled,
                t5_embeds=t5,
            )
        )
        return SD3ConditioningOutput(conditioning=SD3ConditioningField(conditioning_name=name))

    def _clip(self, ctx: Context, clip: CLIPField) -> tuple[Any, Any]:
        import torch

        ctx.progress(message="Running CLIP encoder")
        device = execution_device(ctx)
        with ctx.models.load(clip.tokenizer) as tokenizer:
            ids = tokenizer(
                [self.prompt],
                padding="max_length",
                max_length=CLIP_MAX_LEN,
                truncation=True,
                return_tensors="pt",
            ).input_ids
        with torch.inference_mode(), ctx.models.load(clip.text_encoder) as encoder:
            out = encoder(input_ids=ids.to(device), output_hidden_states=True)
            return out.hidden_states[-2], out[0]

    def _t5(self, ctx: Context) -> Any:
        import torch

        assert self.t5_encoder is not None
        ctx.progress(message="Running T5 encoder")
        with ctx.models.load(self.t5_encoder.tokenizer) as tokenizer:
            ids = tokenizer(
                [self.prompt],
                padding="max_length",
                max_length=SD3_T5_MAX_SEQ_LEN,
                truncation=True,
                add_special_tokens=True,
                return_tensors="pt",
            ).input_ids
        with torch.inference_mode(), ctx.models.load(self.t5_encoder.text_encoder) as encoder:
            return encoder(ids.to(execution_device(ctx)))[0]
