"""Regional FLUX prompts: several text conditionings, each optionally limited to a mask.

As InvokeAI 6.11.1 does it: the T5 sequences are concatenated; the CLIP vector is the first
unmasked prompt's (else the first one's); an attention mask over [text tokens, image tokens]
lets each prompt's tokens see themselves and their region's image tokens (an unmasked
prompt: the background, the part no mask covers), image tokens of one region see that
region and the background but not other regions, and background tokens see everything. It
is applied in every other transformer block (even indices, double and single blocks), the
others attending freely. Without masks no attention mask is used. FLUX Redux image prompts
join as prompts of their own (after the text, each with its mask or global) and FLUX Kontext
reference tokens are seen by every token.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from invoke_nb.nodes.diffusion.flux.fields import FluxConditioning

__all__ = ["Regional", "combine", "masked_attention", "region_mask", "with_reference"]


@dataclass
class Regional:
    """What one model call needs: the joined T5 sequence, the CLIP vector, the attention mask."""

    t5_embeds: torch.Tensor
    clip_embeds: torch.Tensor
    attn_mask: torch.Tensor | None


def region_mask(mask: torch.Tensor, packed_h: int, packed_w: int) -> torch.Tensor:
    """A (h, w) / (1, h, w) mask -> (packed_h * packed_w,) float, nearest-resized."""
    import torch.nn.functional as F

    m = mask.float()
    while m.dim() < 4:
        m = m.unsqueeze(0)
    return F.interpolate(m, size=(packed_h, packed_w), mode="nearest").flatten()


def combine(
    items: list[tuple[FluxConditioning, torch.Tensor | None]],
    img_len: int,
    redux: Sequence[tuple[torch.Tensor, torch.Tensor | None]] = (),
) -> Regional:
    """Join conditionings (each with a packed region mask or None) as InvokeAI does.

    ``redux``: FLUX Redux image prompts (T5-space token sequences, each with its own region
    mask or None), joined after the text prompts as further prompts of their own: a masked
    one speaks to its region only, an unmasked one to the background. They bring no CLIP
    vector (the pooled vector stays the text prompts').
    """
    import torch

    seqs = [(c.t5_embeds, m) for c, m in items] + list(redux)
    t5 = torch.cat([e.to(items[0][0].t5_embeds.dtype) for e, _ in seqs], dim=1)
    clip = next((c.clip_embeds for c, m in items if m is None), items[0][0].clip_embeds)
    masks = [m for _, m in seqs]
    if all(m is None for m in masks):
        return Regional(t5, clip, None)
    background = torch.ones(img_len)
    for m in masks:
        if m is not None:
            background = background * (1 - m)
    n_txt = t5.shape[1]
    a = torch.zeros(n_txt + img_len, n_txt + img_len)
    start = 0
    for e, m in seqs:
        end = start + e.shape[1]
        a[start:end, start:end] = 1.0
        region = m if m is not None else background
        a[start:end, n_txt:] = region.view(1, img_len)
        a[n_txt:, start:end] = region.view(img_len, 1)
        if m is not None:
            a[n_txt:, n_txt:] += m.view(img_len, 1) @ m.view(1, img_len)
        start = end
    a[n_txt:, n_txt:] += background.view(img_len, 1)
    a[n_txt:, n_txt:] += background.view(1, img_len)
    return Regional(t5, clip, a > 0.5)


def with_reference(mask: torch.Tensor, extra: int) -> torch.Tensor:
    """The regional mask grown by ``extra`` FLUX Kontext reference tokens (after the image's).

    The reference image is context every region edits: its tokens see, and are seen by,
    every text and image token. (InvokeAI 6.11's own mask keeps the size of text + image
    tokens, which its attention cannot broadcast once Kontext tokens are appended.) With a
    region covering the whole image the grown mask allows everything, as no mask does.
    """
    import torch

    n = mask.shape[-1]
    out = torch.ones(n + extra, n + extra, dtype=torch.bool, device=mask.device)
    out[:n, :n] = mask
    return out


class _MaskedProcessor:
    """Wraps a block's attention processor, passing the current regional mask."""

    def __init__(self, inner: Any, holder: dict[str, Any]) -> None:
        self.inner, self.holder = inner, holder

    def __call__(
        self,
        attn: Any,
        hidden_states: Any,
        encoder_hidden_states: Any = None,
        attention_mask: Any = None,
        image_rotary_emb: Any = None,
    ) -> Any:
        mask = self.holder.get("mask")
        return self.inner(
            attn,
            hidden_states,
            encoder_hidden_states=encoder_hidden_states,
            attention_mask=mask if mask is not None else attention_mask,
            image_rotary_emb=image_rotary_emb,
        )


@contextmanager
def masked_attention(model: Any, holder: dict[str, Any]) -> Iterator[None]:
    """Inside the block, the even-index blocks' attention uses ``holder["mask"]`` (when set)."""
    swapped = []
    for blocks in (model.transformer_blocks, model.single_transformer_blocks):
        for i, block in enumerate(blocks):
            if i % 2 == 0:
                swapped.append((block.attn, block.attn.processor))
                block.attn.processor = _MaskedProcessor(block.attn.processor, holder)
    try:
        yield
    finally:
        for attn, proc in swapped:
            attn.processor = proc
