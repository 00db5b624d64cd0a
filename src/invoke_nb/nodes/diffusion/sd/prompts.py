"""Prompt nodes: text -> conditioning tensors through compel (InvokeAI's prompt syntax).

Compel parses weighting (``(word)1.3``, ``word++``), ``.blend()`` and ``.and()``; a plain
prompt of up to 75 tokens encodes exactly as diffusers' pipelines encode it (same padding,
same hidden state). SD1 uses the text encoder's final normalized hidden state; SDXL uses
the penultimate, non-normalized states of both encoders plus the pooled output of the second,
as diffusers' SDXL pipeline does. An empty SDXL prompt gives zeros (as InvokeAI and
diffusers' ``force_zeros_for_empty_prompt``). ``<name>`` in a prompt stands for an installed
textual-inversion embedding (:mod:`invoke_nb.nodes.diffusion.sd.textual_inversion`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from invoke_nb.nodes.base import Input, InputField, Node, UIHint, node
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.devices import execution_device
from invoke_nb.nodes.diffusion.fields import CLIPField, ConditioningOutput
from invoke_nb.nodes.diffusion.lora import patched
from invoke_nb.nodes.diffusion.sd.textual_inversion import textual_inversions
from invoke_nb.nodes.types import ConditioningField, TensorField

__all__ = [
    "BasicConditioning",
    "CompelNode",
    "SDXLCompelPromptNode",
    "SDXLConditioning",
    "SDXLRefinerCompelPromptNode",
    "encode_prompt",
]


@dataclass
class BasicConditioning:
    """SD1/SD2 prompt embeddings (1, tokens, width)."""

    embeds: torch.Tensor


@dataclass
class SDXLConditioning:
    """SDXL prompt embeddings, the pooled embedding and the size/crop time ids."""

    embeds: torch.Tensor
    pooled_embeds: torch.Tensor
    add_time_ids: torch.Tensor


@contextmanager
def clip_skip(text_encoder: Any, skipped: int) -> Iterator[Any]:
    """Drop the last ``skipped`` transformer layers for the duration of the block."""
    import torch

    if skipped <= 0:
        yield text_encoder
        return
    inner = getattr(text_encoder, "text_model", text_encoder)
    layers = inner.encoder.layers
    if skipped >= len(layers):
        raise ValueError(f"clip skip {skipped} >= the text encoder's {len(layers)} layers")
    original = list(layers)
    inner.encoder.layers = torch.nn.ModuleList(original[: len(original) - skipped])
    try:
        yield text_encoder
    finally:
        inner.encoder.layers = torch.nn.ModuleList(original)


# Characters that can start compel syntax: weights "(...)1.2", "[...]", escapes, "word+"/"word-",
# ".and()"/".blend()" (which need parentheses), quoted blend parts, "withLora:" tags.
_SYNTAX = re.compile(r"""[()\[\]\\"<>]|[+-](?=\s|$|[,.;:!?+-])|withLora""")


def parse_prompt(prompt: str) -> Any:
    """Compel's parse of ``prompt``; plain text skips the (slow, ~30 ms) pyparsing grammar.

    A prompt without syntax characters parses to one fragment of weight 1, which we build
    directly; tests check it equals compel's own parse.
    """
    from compel import Compel
    from compel.prompt_parser import Conjunction, FlattenedPrompt, Fragment

    if not _SYNTAX.search(prompt):
        return Conjunction([FlattenedPrompt([Fragment(prompt, 1.0)])])
    return Compel.parse_prompt_string(prompt)


def _lora_dicts(ctx: Context, clip: CLIPField) -> list[tuple[dict[str, torch.Tensor], float]]:
    out = []
    for lora in clip.loras:
        with ctx.models.load(lora.lora) as sd:
            out.append((sd, lora.weight))
    return out


def encode_prompt(
    ctx: Context,
    clip: CLIPField,
    prompt: str,
    *,
    part: str,
    penultimate: bool,
    pooled: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Encode ``prompt`` with the CLIP bundle (LoRAs and clip skip applied for the call)."""
    import torch
    from compel import Compel, ReturnedEmbeddingsType, SplitLongTextMode

    kind = (
        ReturnedEmbeddingsType.PENULTIMATE_HIDDEN_STATES_NON_NORMALIZED
        if penultimate
        else ReturnedEmbeddingsType.LAST_HIDDEN_STATES_NORMALIZED
    )
    loras = _lora_dicts(ctx, clip)
    with ExitStack() as stack:
        te = stack.enter_context(ctx.models.load(clip.text_encoder))
        tok = stack.enter_context(ctx.models.load(clip.tokenizer))
        stack.enter_context(patched(te, loras, part, cache=getattr(ctx.models, "cache", None)))
        stack.enter_context(clip_skip(te, clip.skipped_layers))
        base = ctx.models.record(clip.text_encoder).base
        prompt, tok = stack.enter_context(textual_inversions(ctx, prompt, tok, te, part, base))
        direct = _encode_plain(
            tok, te, prompt, penultimate=penultimate, pooled=pooled, device=execution_device(ctx)
        )
        if direct is not None:
            return direct
        compel = Compel(
            tokenizer=tok,
            text_encoder=te,
            truncate_long_prompts=False,
            returned_embeddings_type=kind,
            requires_pooled=pooled,
            split_long_text_mode=SplitLongTextMode.SENTENCES,
            device=execution_device(ctx),
            dtype_for_device_getter=lambda _device: te.dtype,
        )
        conjunction = parse_prompt(prompt)
        c, _options = compel.build_conditioning_tensor_for_conjunction(conjunction)
        c_pooled = compel.conditioning_provider.get_pooled_embeddings([prompt]) if pooled else None
    c = c.detach().to("cpu", torch.float32)
    if c_pooled is not None:
        c_pooled = c_pooled.detach().to("cpu", torch.float32)
    return c, c_pooled


def _encode_plain(
    tok: Any, te: Any, prompt: str, *, penultimate: bool, pooled: bool, device: str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """Encode a plain prompt that fits one window as diffusers' pipelines do; else ``None``.

    Compel gives the same tensors for such prompts (tests check it) but spends ~6 ms on
    bookkeeping per prompt; this path is the common case in batch runs.
    """
    import torch

    if _SYNTAX.search(prompt):
        return None
    ids = tok(
        prompt,
        padding="max_length",
        max_length=tok.model_max_length,
        truncation=False,
        return_tensors="pt",
    ).input_ids
    if ids.shape[1] > tok.model_max_length:
        return None
    out = te(ids.to(device), output_hidden_states=penultimate)
    c = out.hidden_states[-2] if penultimate else out[0]
    c_pooled = out[0] if pooled else None  # CLIPTextModelWithProjection: text_embeds
    c = c.detach().to("cpu", torch.float32)
    return c, (c_pooled.detach().to("cpu", torch.float32) if c_pooled is not None else None)


def _zeros_for(
    ctx: Context, clip: CLIPField, pooled: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    import torch

    with ctx.models.load(clip.text_encoder) as te:
        cfg = te.config
    c = torch.zeros((1, cfg.max_position_embeddings, cfg.hidden_size))
    width = getattr(cfg, "projection_dim", cfg.hidden_size) if pooled else cfg.hidden_size
    return c, (torch.zeros((1, width)) if pooled else None)


def _pad_tokens(a: torch.Tensor, length: int) -> torch.Tensor:
    import torch

    if a.shape[1] >= length:
        return a
    pad = torch.zeros((a.shape[0], length - a.shape[1], a.shape[2]), dtype=a.dtype)
    return torch.cat([a, pad], dim=1)


@node(
    "compel",
    title="Prompt - SD1.5",
    category="prompt",
    tags=["prompt", "compel"],
    version="1.2.1",
)
class CompelNode(Node):
    """Parse prompt using compel package to conditioning."""

    prompt: str = InputField(
        default="",
        description="Prompt to be parsed by Compel to create a conditioning tensor",
        ui_hint=UIHint.TEXTAREA,
    )
    clip: CLIPField = InputField(
        description="CLIP (tokenizer, text encoder, LoRAs) and skipped layer count",
        title="CLIP",
        input=Input.CONNECTION,
    )
    mask: TensorField | None = InputField(
        default=None,
        description="A mask defining the region that this conditioning prompt applies to.",
    )

    def invoke(self, ctx: Context) -> ConditioningOutput:
        import torch

        with torch.inference_mode():
            c, _ = encode_prompt(
                ctx, self.clip, self.prompt, part="text_encoder", penultimate=False, pooled=False
            )
        name = ctx.conditioning.save(BasicConditioning(embeds=c))
        return ConditioningOutput(
            conditioning=ConditioningField(conditioning_name=name, mask=self.mask)
        )


def _sdxl_clip(
    ctx: Context, clip: CLIPField, prompt: str, *, part: str, pooled: bool, zero_on_empty: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    if prompt == "" and zero_on_empty:
        return _zeros_for(ctx, clip, pooled)
    return encode_prompt(ctx, clip, prompt, part=part, penultimate=True, pooled=pooled)


@node(
    "sdxl_compel_prompt",
    title="Prompt - SDXL",
    category="prompt",
    tags=["sdxl", "compel", "prompt"],
    version="1.2.1",
)
class SDXLCompelPromptNode(Node):
    """Parse prompt using compel package to conditioning."""

    prompt: str = InputField(
        default="",
        description="Prompt to be parsed by Compel to create a conditioning tensor",
        ui_hint=UIHint.TEXTAREA,
    )
    style: str = InputField(
        default="",
        description="Prompt to be parsed by Compel to create a conditioning tensor",
        ui_hint=UIHint.TEXTAREA,
    )
    original_width: int = InputField(default=1024, description="")
    original_height: int = InputField(default=1024, description="")
    crop_top: int = InputField(default=0, description="")
    crop_left: int = InputField(default=0, description="")
    target_width: int = InputField(default=1024, description="")
    target_height: int = InputField(default=1024, description="")
    clip: CLIPField = InputField(description="CLIP 1", input=Input.CONNECTION, title="CLIP 1")
    clip2: CLIPField = InputField(description="CLIP 2", input=Input.CONNECTION, title="CLIP 2")
    mask: TensorField | None = InputField(
        default=None,
        description="A mask defining the region that this conditioning prompt applies to.",
    )

    def invoke(self, ctx: Context) -> ConditioningOutput:
        import torch

        with torch.inference_mode():
            c1, _ = _sdxl_clip(
                ctx, self.clip, self.prompt, part="text_encoder", pooled=False, zero_on_empty=True
            )
            text2 = self.prompt if self.style.strip() == "" else self.style
            c2, pooled = _sdxl_clip(
                ctx, self.clip2, text2, part="text_encoder_2", pooled=True, zero_on_empty=True
            )
        length = max(c1.shape[1], c2.shape[1])
        embeds = torch.cat([_pad_tokens(c1, length), _pad_tokens(c2, length)], dim=-1)
        time_ids = torch.tensor(
            [
                [
                    self.original_height,
                    self.original_width,
                    self.crop_top,
                    self.crop_left,
                    self.target_height,
                    self.target_width,
                ]
            ],
            dtype=torch.float32,
        )
        assert pooled is not None
        name = ctx.conditioning.save(
            SDXLConditioning(embeds=embeds, pooled_embeds=pooled, add_time_ids=time_ids)
        )
        return ConditioningOutput(
            conditioning=ConditioningField(conditioning_name=name, mask=self.mask)
        )


@node(
    "sdxl_refiner_compel_prompt",
    title="Prompt - SDXL Refiner",
    category="prompt",
    tags=["sdxl", "compel", "prompt"],
    version="1.1.2",
)
class SDXLRefinerCompelPromptNode(Node):
    """Parse prompt using compel package to conditioning."""

    style: str = InputField(
        default="",
        description="Prompt to be parsed by Compel to create a conditioning tensor",
        ui_hint=UIHint.TEXTAREA,
    )
    original_width: int = InputField(default=1024, description="")
    original_height: int = InputField(default=1024, description="")
    crop_top: int = InputField(default=0, description="")
    crop_left: int = InputField(default=0, description="")
    aesthetic_score: float = InputField(
        default=6.0, description="The aesthetic score to apply to the conditioning tensor"
    )
    clip2: CLIPField = InputField(
        description="CLIP (tokenizer, text encoder, LoRAs) and skipped layer count",
        input=Input.CONNECTION,
    )

    def invoke(self, ctx: Context) -> ConditioningOutput:
        import torch

        with torch.inference_mode():
            c2, pooled = _sdxl_clip(
                ctx, self.clip2, self.style, part="text_encoder_2", pooled=True, zero_on_empty=False
            )
        time_ids = torch.tensor(
            [
                [
                    self.original_height,
                    self.original_width,
                    self.crop_top,
                    self.crop_left,
                    self.aesthetic_score,
                ]
            ],
            dtype=torch.float32,
        )
        assert pooled is not None
        name = ctx.conditioning.save(
            SDXLConditioning(embeds=c2, pooled_embeds=pooled, add_time_ids=time_ids)
        )
        return ConditioningOutput(conditioning=ConditioningField(conditioning_name=name))
