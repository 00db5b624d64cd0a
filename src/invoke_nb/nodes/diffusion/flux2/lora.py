"""FLUX.2 Klein LoRAs on the shared patcher (:func:`invoke_nb.nodes.diffusion.lora.patched`).

The layouts InvokeAI 6.14 reads for FLUX.2: diffusers/PEFT names of ``Flux2Transformer2DModel``
(``transformer.``/``base_model.model.`` prefixes, ``lora_A/B`` or ``lora.down/up``), BFL
names (AI-Toolkit ``diffusion_model.``, kohya ``lora_unet_``) mapped onto diffusers' modules
(:mod:`invoke_nb.models.flux2_keys`), in every layer kind the shared patcher knows. BFL's fused
``img_attn.qkv`` splits into q, k and v like the weights; a LoHa/LoKr/DoRA layer there sees
the three stacked (InvokeAI 6.14 splits LoRA and LoKr layers only and skips the others).
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.flux.lora_formats import FluxLoRAError, convert_flux_lora
from invoke_nb.nodes.diffusion.flux2.errors import input_error
from invoke_nb.nodes.diffusion.lora import LoRAFormatError, patched

__all__ = ["apply_transformer_loras", "refuse_text_encoder_layers"]


def apply_transformer_loras(ctx: Context, stack: ExitStack, model: Any, loras: list[Any]) -> None:
    """Patch ``model`` with each LoRA's transformer layers until ``stack`` closes."""
    inner = model.config.num_attention_heads * model.config.attention_head_dim
    cache = getattr(ctx.models, "cache", None)
    for lora in loras:
        try:
            with ctx.models.load(lora.lora) as sd:
                part = convert_flux_lora(sd, inner, only="transformer", family="flux2")
            stack.enter_context(
                patched(
                    model,
                    [(part["transformer"], lora.weight)],
                    "transformer",
                    what=repr(lora.lora.name),
                    cache=cache,
                )
            )
        except (FluxLoRAError, LoRAFormatError) as e:
            raise input_error(ctx, "transformer", f"LoRA {lora.lora.name!r}: {e}") from e


def refuse_text_encoder_layers(ctx: Context, loras: list[Any]) -> None:
    """A LoRA with text-encoder layers is refused by name (Qwen3 LoRAs are not read yet);
    one without them leaves the encoder as it is, as in InvokeAI."""
    for lora in loras:
        with ctx.models.load(lora.lora) as sd:
            try:
                found = [
                    k
                    for part in ("text_encoder", "text_encoder_2")
                    for k in convert_flux_lora(sd, 1, only=part, family="flux2")[part]
                ]
            except FluxLoRAError as e:
                raise input_error(ctx, "qwen3_encoder", f"LoRA {lora.lora.name!r}: {e}") from e
        if found:
            raise input_error(
                ctx,
                "qwen3_encoder",
                f"LoRA {lora.lora.name!r} has text-encoder layers ({found[0]}, ...); "
                "LoRAs on the Qwen3 encoder are not supported yet",
            )
