"""``cogview4_text_encoder``: a prompt through CogView4's GLM encoder.

As InvokeAI and ``CogView4Pipeline`` do it: tokenize the prompt alone (at most 1024
tokens), left-pad the ids with the pad token to a multiple of 16, and keep the encoder's
second-to-last hidden state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from invoke_nb.nodes.base import Input, InputField, Node, UIHint, node
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.cogview4.fields import (
    CogView4ConditioningField,
    CogView4ConditioningOutput,
    GlmEncoderField,
)
from invoke_nb.nodes.diffusion.devices import execution_device

__all__ = ["GLM_MAX_TOKENS", "CogView4Conditioning", "CogView4TextEncoderNode", "glm_embeds"]

GLM_MAX_TOKENS = 1024
log = logging.getLogger("invoke_nb.nodes.cogview4")


@dataclass
class CogView4Conditioning:
    """GLM prompt embeddings (1, tokens, width), tokens a multiple of 16."""

    glm_embeds: torch.Tensor


def glm_embeds(tokenizer: Any, encoder: Any, prompt: str, device: Any = "cpu") -> torch.Tensor:
    """The GLM embedding of ``prompt`` (float32, CPU)."""
    import torch

    ids = tokenizer(
        [prompt],
        padding="longest",
        max_length=GLM_MAX_TOKENS,
        truncation=True,
        add_special_tokens=True,
        return_tensors="pt",
    ).input_ids
    full = tokenizer([prompt], padding="longest", return_tensors="pt").input_ids
    if full.shape[-1] > ids.shape[-1]:
        log.warning("prompt truncated to %d tokens", GLM_MAX_TOKENS)
    pad = (16 - ids.shape[1] % 16) % 16
    if pad:
        fill = torch.full((ids.shape[0], pad), tokenizer.pad_token_id, dtype=ids.dtype)
        ids = torch.cat([fill, ids], dim=1)
    with torch.inference_mode():
        hidden = encoder(ids.to(device), output_hidden_states=True).hidden_states[-2]
    return hidden.to("cpu", torch.float32)


@node(
    "cogview4_text_encoder",
    title="Prompt - CogView4",
    category="conditioning",
    tags=["prompt", "conditioning", "cogview4"],
    version="1.0.0",
)
class CogView4TextEncoderNode(Node):
    """Encodes and preps a prompt for a cogview4 image."""

    prompt: str = InputField(description="Text prompt to encode.", ui_hint=UIHint.TEXTAREA)
    glm_encoder: GlmEncoderField = InputField(
        title="GLM Encoder",
        description="GLM (THUDM) tokenizer and text encoder",
        input=Input.CONNECTION,
    )

    def invoke(self, ctx: Context) -> CogView4ConditioningOutput:
        ctx.progress(message="Running GLM text encoder")
        with (
            ctx.models.load(self.glm_encoder.tokenizer) as tokenizer,
            ctx.models.load(self.glm_encoder.text_encoder) as encoder,
        ):
            embeds = glm_embeds(tokenizer, encoder, self.prompt, execution_device(ctx))
        name = ctx.conditioning.save(CogView4Conditioning(embeds))
        return CogView4ConditioningOutput(
            conditioning=CogView4ConditioningField(conditioning_name=name)
        )
