"""Regional prompts: conditionings with masks, applied as InvokeAI applies them.

Several conditionings given to one side of ``denoise_latents`` are concatenated along the
token axis. When any of them has a mask, every cross-attention layer gets a score bias per
(pixel, token): 0 where the token's prompt covers the pixel, -10000 elsewhere, so a masked
prompt speaks only inside its region (a prompt without a mask covers everything). Masks
are resized to the latent size (nearest) and max-pooled (ceil mode) for each lower UNet
level, so small regions survive the downsampling. For SDXL the pooled embedding and time
ids come from a prompt without a mask when there is one.

The bias is added by a thin wrapper around whatever attention processor the layer has
(plain or IP-Adapter), set on the cached UNet for one run and removed afterwards.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["Regions", "concat_regional", "regional_attention"]

_OUTSIDE = -10000.0


@dataclass
class Regions:
    """One batch sample's prompt regions: masks (1, n, h, w) and each prompt's token range."""

    masks: torch.Tensor
    ranges: list[tuple[int, int]]


def _mask_to_latent(mask: torch.Tensor, h: int, w: int) -> torch.Tensor:
    import torch
    import torch.nn.functional as F

    m = mask
    if m.dtype == torch.bool:
        m = m.float()
    m = m.float()
    while m.ndim < 4:
        m = m.unsqueeze(0)
    m = m[:, :1]
    return F.interpolate(m, size=(h, w), mode="nearest")


def concat_regional(
    conds: list[Any], masks: list[torch.Tensor | None], h: int, w: int
) -> tuple[Any, Regions | None]:
    """The conditionings of one side concatenated, and their regions (None: no masks)."""
    import torch

    from invoke_nb.nodes.diffusion.sd.prompts import BasicConditioning, SDXLConditioning

    embeds = torch.cat([c.embeds for c in conds], dim=1)
    regions = None
    if any(m is not None for m in masks):
        start, ranges, full = 0, [], []
        for c, m in zip(conds, masks, strict=True):
            ranges.append((start, start + c.embeds.shape[1]))
            start += c.embeds.shape[1]
            full.append(torch.ones(1, 1, h, w) if m is None else _mask_to_latent(m, h, w))
        regions = Regions(torch.cat(full, dim=1), ranges)
    if isinstance(conds[0], SDXLConditioning):
        pick = next((c for c, m in zip(conds, masks, strict=True) if m is None), conds[0])
        return SDXLConditioning(embeds, pick.pooled_embeds, pick.add_time_ids), regions
    return BasicConditioning(embeds), regions


class _RegionalBias:
    """Score biases for the CFG batch (negative, positive), one per query length."""

    def __init__(self, regions: list[Regions], key_len: int, device: Any, dtype: Any) -> None:
        import torch
        import torch.nn.functional as F

        self.by_len: dict[int, torch.Tensor] = {}
        masks = [r.masks.to(device, dtype) for r in regions]
        for _level in range(4):
            n = masks[0].shape[-2] * masks[0].shape[-1]
            bias = torch.full((len(regions), n, key_len), _OUTSIDE, device=device, dtype=dtype)
            for b, (r, m) in enumerate(zip(regions, masks, strict=True)):
                flat = m[0].reshape(m.shape[1], n)  # (prompts, n)
                for p, (s, e) in enumerate(r.ranges):
                    inside = (flat[p] > 0.5)[:, None].expand(n, e - s)
                    bias[b, :, s:e] = torch.where(inside, 0.0, _OUTSIDE)
            self.by_len[n] = bias
            masks = [F.max_pool2d(m, kernel_size=2, stride=2, ceil_mode=True) for m in masks]


class _RegionalProcessor:
    """Adds the regional bias to the attention mask of the wrapped processor."""

    def __init__(self, inner: Any, bias: _RegionalBias) -> None:
        self.inner = inner
        self.bias = bias
        self._takes_masks = "ip_adapter_masks" in inspect.signature(inner.__call__).parameters

    def __getattr__(self, name: str) -> Any:  # scale, to_k_ip ... of an IP-Adapter processor
        if name in ("inner", "bias", "_takes_masks"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: Any = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        ip_adapter_masks: Any = None,
    ) -> torch.Tensor:
        n = (
            hidden_states.shape[1]
            if hidden_states.ndim == 3
            else hidden_states.shape[-1] * hidden_states.shape[-2]
        )
        bias = self.bias.by_len.get(n)
        if bias is not None:
            bias = bias.to(hidden_states.dtype)
            attention_mask = bias if attention_mask is None else attention_mask + bias
        kwargs: dict[str, Any] = {"attention_mask": attention_mask, "temb": temb}
        if self._takes_masks:
            kwargs["ip_adapter_masks"] = ip_adapter_masks
        return self.inner(attn, hidden_states, encoder_hidden_states, **kwargs)


@contextmanager
def regional_attention(
    unet: Any,
    uncond: Regions | None,
    cond: Regions | None,
    uncond_len: int,
    cond_len: int,
    key_len: int,
    device: Any = None,
) -> Iterator[None]:
    """Wrap ``unet``'s cross-attention processors with the regional bias inside the block.

    A side without regions counts as one prompt covering everything; tokens past a side's
    own length (zero padding to the longer side) are masked out.
    """
    import torch

    if uncond is None and cond is None:
        yield
        return
    param = next(unet.parameters())
    if device is None:
        device = param.device if param.device.type != "meta" else torch.device("cpu")
    ref = (cond or uncond).masks  # type: ignore[union-attr]
    h, w = ref.shape[-2:]
    sides = [
        r if r is not None else Regions(torch.ones(1, 1, h, w), [(0, n)])
        for r, n in ((uncond, uncond_len), (cond, cond_len))
    ]
    bias = _RegionalBias(sides, key_len, device, param.dtype)
    saved = dict(unet.attn_processors)
    wrapped = {
        name: _RegionalProcessor(p, bias) if name.endswith("attn2.processor") else p
        for name, p in saved.items()
    }
    unet.set_attn_processor(dict(wrapped))
    try:
        yield
    finally:
        unet.set_attn_processor(dict(saved))
