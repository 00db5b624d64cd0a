"""The FLUX.2 Klein prompt encoder: Qwen3 hidden states 9, 18 and 27, side by side.

The prompt goes through Qwen's chat template (one user turn, the assistant prefix, thinking
off), is padded to ``max_seq_len`` and run once; the three hidden states are concatenated
per token, as diffusers' ``Flux2KleinPipeline`` does. A mean over the real tokens of the
last state is kept as the pooled embedding (InvokeAI stores it; Klein does not read it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import torch

from invoke_nb.nodes.base import Input, InputField, Node, UIHint, node
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.devices import execution_device
from invoke_nb.nodes.diffusion.flux.fields import FluxConditioningField, FluxConditioningOutput
from invoke_nb.nodes.diffusion.flux2.errors import input_error
from invoke_nb.nodes.diffusion.flux2.fields import Qwen3EncoderField
from invoke_nb.nodes.types import TensorField

__all__ = ["KLEIN_LAYERS", "Flux2Conditioning", "Flux2KleinTextEncoderNode", "encode_klein"]

KLEIN_LAYERS = (9, 18, 27)
"""Hidden-state indices Klein reads (index 0 is the embedding output)."""


@dataclass
class Flux2Conditioning:
    """Klein prompt embeddings (1, tokens, 3 * hidden) and a pooled (1, hidden) summary."""

    embeds: torch.Tensor
    pooled: torch.Tensor


def encode_klein(
    tokenizer: Any, encoder: Any, prompt: str, max_len: int, device: str
) -> Flux2Conditioning:
    """Encode one prompt as Klein does (float32 tensors on the CPU)."""
    import torch

    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}],
        tokenize=False,
        add_generation_prompt=True,
        enable_thinking=False,
    )
    inputs = tokenizer(
        text, return_tensors="pt", padding="max_length", truncation=True, max_length=max_len
    )
    mask = inputs["attention_mask"].to(device)
    out = encoder(
        input_ids=inputs["input_ids"].to(device),
        attention_mask=mask,
        output_hidden_states=True,
        use_cache=False,
    )
    states = out.hidden_states
    layers = [min(i, len(states) - 1) for i in KLEIN_LAYERS]
    stacked = torch.stack([states[i] for i in layers], dim=1)  # (b, 3, tokens, hidden)
    b, n, tokens, hidden = stacked.shape
    embeds = stacked.permute(0, 2, 1, 3).reshape(b, tokens, n * hidden)
    last = states[-1].float()
    weights = mask.unsqueeze(-1).float()
    pooled = (last * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)
    return Flux2Conditioning(
        embeds=embeds.detach().to("cpu", torch.float32),
        pooled=pooled.detach().to("cpu", torch.float32),
    )


@node(
    "flux2_klein_text_encoder",
    title="Prompt - Flux2 Klein",
    category="conditioning",
    tags=["prompt", "conditioning", "flux", "klein", "qwen3"],
    version="1.1.0",
)
class Flux2KleinTextEncoderNode(Node):
    """Encodes and preps a prompt for Flux2 Klein image generation."""

    prompt: str = InputField(description="Text prompt to encode.", ui_hint=UIHint.TEXTAREA)
    qwen3_encoder: Qwen3EncoderField = InputField(
        title="Qwen3 Encoder",
        description="Qwen3 tokenizer and text encoder",
        input=Input.CONNECTION,
    )
    max_seq_len: Literal[256, 512] = InputField(
        default=512, description="Max sequence length for the Qwen3 encoder."
    )
    mask: TensorField | None = InputField(
        default=None,
        description="A mask defining the region that this conditioning prompt applies to.",
    )

    def invoke(self, ctx: Context) -> FluxConditioningOutput:
        import torch

        if self.qwen3_encoder.loras:
            from invoke_nb.nodes.diffusion.flux2.lora import refuse_text_encoder_layers

            refuse_text_encoder_layers(ctx, self.qwen3_encoder.loras)
        with ctx.models.load(self.qwen3_encoder.text_encoder) as encoder:
            if not hasattr(encoder, "config") or "qwen3" not in str(
                getattr(encoder.config, "model_type", "")
            ):
                kind = type(encoder).__name__
                raise input_error(
                    ctx, "qwen3_encoder", f"the text encoder is a {kind}, not a Qwen3 model"
                )
            with ctx.models.load(self.qwen3_encoder.tokenizer) as tokenizer, torch.inference_mode():
                ctx.progress(message="Running Qwen3 text encoder (Klein)")
                cond = encode_klein(
                    tokenizer, encoder, self.prompt, self.max_seq_len, execution_device(ctx)
                )
        name = ctx.conditioning.save(cond)
        return FluxConditioningOutput(
            conditioning=FluxConditioningField(conditioning_name=name, mask=self.mask)
        )
