"""``z_image_text_encoder`` and ``z_image_seed_variance_enhancer``.

The prompt goes through Qwen3's chat template (user turn, generation prompt, thinking on),
is padded to 512 tokens, and the second-to-last hidden state of the real (unpadded) tokens
is kept: a (tokens, width) tensor, as ``ZImagePipeline`` and InvokeAI make it.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from invoke_nb.nodes.base import Input, InputField, Node, UIHint, node
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.devices import execution_device
from invoke_nb.nodes.diffusion.z_image.fields import (
    Qwen3EncoderField,
    ZImageConditioningField,
    ZImageConditioningOutput,
)
from invoke_nb.nodes.diffusion.z_image.lora import z_image_lora_patch
from invoke_nb.nodes.types import TensorField

__all__ = [
    "MAX_TOKENS",
    "ZImageConditioning",
    "ZImageSeedVarianceEnhancerNode",
    "ZImageTextEncoderNode",
    "qwen3_embeds",
    "vary_embeds",
]

MAX_TOKENS = 512
log = logging.getLogger("invoke_nb.nodes.z_image")


@dataclass
class ZImageConditioning:
    """Qwen3 prompt embeddings of the real tokens, (tokens, width)."""

    prompt_embeds: torch.Tensor


def qwen3_embeds(tokenizer: Any, encoder: Any, prompt: str, device: Any = "cpu") -> torch.Tensor:
    """The Z-Image embedding of ``prompt`` (float32, CPU)."""
    import torch

    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}],
        tokenize=False,
        add_generation_prompt=True,
        enable_thinking=True,
    )
    enc = tokenizer(
        text,
        padding="max_length",
        max_length=MAX_TOKENS,
        truncation=True,
        return_attention_mask=True,
        return_tensors="pt",
    )
    if tokenizer(text, return_tensors="pt").input_ids.shape[-1] > MAX_TOKENS:
        log.warning("prompt truncated to %d tokens", MAX_TOKENS)
    mask = enc.attention_mask.to(device).bool()
    with torch.inference_mode():
        hidden = encoder(
            enc.input_ids.to(device), attention_mask=mask, output_hidden_states=True
        ).hidden_states[-2]
    return hidden[0][mask[0]].to("cpu", torch.float32)


@node(
    "z_image_text_encoder",
    title="Prompt - Z-Image",
    category="conditioning",
    tags=["prompt", "conditioning", "z-image"],
    version="1.1.0",
)
class ZImageTextEncoderNode(Node):
    """Encodes and preps a prompt for a Z-Image image."""

    prompt: str = InputField(description="Text prompt to encode.", ui_hint=UIHint.TEXTAREA)
    qwen3_encoder: Qwen3EncoderField = InputField(
        title="Qwen3 Encoder",
        description="Qwen3 tokenizer and text encoder",
        input=Input.CONNECTION,
    )
    mask: TensorField | None = InputField(
        default=None,
        description="A mask defining the region that this conditioning prompt applies to.",
    )

    def invoke(self, ctx: Context) -> ZImageConditioningOutput:
        ctx.progress(message="Running Qwen3 text encoder")
        models = ctx.models
        with ExitStack() as stack:
            tokenizer = stack.enter_context(models.load(self.qwen3_encoder.tokenizer))
            encoder = stack.enter_context(models.load(self.qwen3_encoder.text_encoder))
            loras = [
                (stack.enter_context(models.load(x.lora)), x.weight)
                for x in self.qwen3_encoder.loras
            ]
            stack.enter_context(
                z_image_lora_patch(encoder, loras, "text_encoder", getattr(models, "cache", None))
            )
            embeds = qwen3_embeds(tokenizer, encoder, self.prompt, execution_device(ctx))
        name = ctx.conditioning.save(ZImageConditioning(embeds))
        return ZImageConditioningOutput(
            conditioning=ZImageConditioningField(conditioning_name=name, mask=self.mask)
        )


def vary_embeds(embeds: torch.Tensor, seed: int, strength: float, percent: float) -> torch.Tensor:
    """InvokeAI's seed variance: uniform noise in [-1, 1) scaled by ``strength * std``, on a
    Bernoulli(``percent``/100) subset of the values; both drawn from ``seed`` / ``seed + 1``
    on the embeddings' device."""
    import torch

    gen = torch.Generator(device=embeds.device).manual_seed(seed)
    noise = torch.rand(embeds.shape, generator=gen, device=embeds.device, dtype=embeds.dtype)
    noise = (noise * 2 - 1) * (strength * torch.std(embeds).item())
    gen.manual_seed(seed + 1)
    keep = torch.bernoulli(torch.full_like(embeds, percent / 100.0), generator=gen).bool()
    return embeds + noise * keep


@node(
    "z_image_seed_variance_enhancer",
    title="Seed Variance Enhancer - Z-Image",
    category="conditioning",
    tags=["conditioning", "z-image", "variance", "seed"],
    version="1.0.0",
)
class ZImageSeedVarianceEnhancerNode(Node):
    """Adds seed-based noise to Z-Image conditioning to increase variance between seeds."""

    conditioning: ZImageConditioningField = InputField(
        description="Conditioning tensor", input=Input.CONNECTION, title="Conditioning"
    )
    seed: int = InputField(
        default=0,
        ge=0,
        description="Seed for reproducible noise generation. Different seeds produce different noise patterns.",
    )
    strength: float = InputField(
        default=0.1,
        ge=0.0,
        le=2.0,
        description="Noise strength as multiplier of embedding std. 0=off, 0.1=subtle, 0.5=strong.",
    )
    randomize_percent: float = InputField(
        default=50.0,
        ge=1.0,
        le=100.0,
        description="Percentage of embedding values to add noise to (1-100).",
    )

    def invoke(self, ctx: Context) -> ZImageConditioningOutput:
        cond = ctx.conditioning.load(self.conditioning.conditioning_name)
        if not isinstance(cond, ZImageConditioning):
            raise ValueError(
                f"node {ctx.node_id!r} ({ctx.node_type}): conditioning: not a Z-Image "
                f"conditioning ({type(cond).__name__})"
            )
        if self.strength == 0:
            return ZImageConditioningOutput(conditioning=self.conditioning)
        embeds = vary_embeds(cond.prompt_embeds, self.seed, self.strength, self.randomize_percent)
        name = ctx.conditioning.save(ZImageConditioning(embeds))
        return ZImageConditioningOutput(
            conditioning=ZImageConditioningField(
                conditioning_name=name, mask=self.conditioning.mask
            )
        )
