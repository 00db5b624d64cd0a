"""XLabs' FLUX IP-Adapter: the ``flux_ip_adapter`` node and how ``flux_denoise`` applies it.

The node hands on InvokeAI's (SD) ``IPAdapterField`` with the ViT-L CLIP vision encoder
found in the model manager. At denoise time the image prompt is encoded by that encoder (a
black image of the same size gives the negative prompt's embedding, as XLabs' and InvokeAI's
code do), turned into context tokens by the adapter's projection, and each of the first double
blocks adds ``weight * attention(image_query, ip_keys, ip_values)`` to its image stream after
its own attention and MLP. The image query is the block's own (after its RMS norm, before
the rotary embedding): it is read off ``attn.norm_q`` by a hook, and the sum is made by a hook
on the block, both removed when the node ends, so the cached transformer never changes.
The weight (one number or one per step) applies between ``begin_step_percent`` and
``end_step_percent``: steps ``floor(begin * n)`` to ``ceil(end * n)``, InvokeAI's rule.
"""

from __future__ import annotations

import math
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, Literal

from pydantic import field_validator

from invoke_nb.nodes.base import InputField, UIHint, node
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.control.fields import IPAdapterField, IPAdapterOutput, check_weights
from invoke_nb.nodes.control.nodes import _Window, check_control_model, find_image_encoder
from invoke_nb.nodes.types import ImageField, ModelIdentifierField

if TYPE_CHECKING:
    import torch

__all__ = ["FluxIPAdapterNode", "IPAdapters"]


@node(
    "flux_ip_adapter",
    title="FLUX IP-Adapter",
    category="ip_adapter",
    tags=["ip_adapter", "control"],
    version="1.0.0",
)
class FluxIPAdapterNode(_Window):
    """Collects FLUX IP-Adapter info to pass to other nodes."""

    image: ImageField = InputField(description="The IP-Adapter image prompt(s).")
    ip_adapter_model: ModelIdentifierField = InputField(
        description="The IP-Adapter model.",
        title="IP-Adapter Model",
        ui_hint=UIHint.MODEL,
        ui_model_base=["flux"],
        ui_model_type=["ip_adapter"],
    )
    clip_vision_model: Literal["ViT-L"] = InputField(
        default="ViT-L", description="CLIP Vision model to use."
    )
    weight: float | list[float] = InputField(
        default=1, description="The weight given to the IP-Adapter", title="Weight"
    )
    begin_step_percent: float = InputField(
        default=0, ge=0, le=1, description="When the IP-Adapter is first applied (% of total steps)"
    )
    end_step_percent: float = InputField(
        default=1, ge=0, le=1, description="When the IP-Adapter is last applied (% of total steps)"
    )

    _weights = field_validator("weight")(classmethod(lambda cls, v: check_weights(v)))

    def invoke(self, ctx: Context) -> IPAdapterOutput:
        model = check_control_model(
            ctx, self.ip_adapter_model, "ip_adapter_model", ("ip_adapter",), ("flux",)
        )
        encoder = find_image_encoder(ctx, model, self.clip_vision_model)
        return IPAdapterOutput(
            ip_adapter=IPAdapterField(
                image=self.image,
                ip_adapter_model=model,
                image_encoder_model=encoder,
                weight=self.weight,
                target_blocks=[],
                begin_step_percent=self.begin_step_percent,
                end_step_percent=self.end_step_percent,
                mask=None,
            )
        )


def step_weight(field: IPAdapterField, step: int, total: int) -> float:
    """The adapter's weight at ``step`` of ``total`` (0 outside its step window)."""
    if step < math.floor(field.begin_step_percent * total) or step > math.ceil(
        field.end_step_percent * total
    ):
        return 0.0
    w = field.weight
    return float(w[min(step, len(w) - 1)] if isinstance(w, list) else w)


def _image_embeds(ctx: Context, field: IPAdapterField, device: str) -> tuple[Any, Any]:
    """(positive, negative) CLIP image embeddings: the image, and a black one its size."""
    import numpy as np
    import torch
    from PIL import Image

    images = field.image if isinstance(field.image, list) else [field.image]
    if len(images) != 1:
        raise ValueError(f"FLUX IP-Adapters take one image prompt, got {len(images)}")
    pos = ctx.images.get_pil(images[0], mode="RGB")
    neg = Image.fromarray(np.zeros_like(np.asarray(pos)))
    with ctx.models.load(field.image_encoder_model) as enc, torch.inference_mode():
        dtype = next(enc.model.parameters()).dtype
        out = []
        for image in (pos, neg):
            pixels = enc.processor(images=[image], return_tensors="pt").pixel_values
            out.append(enc.model(pixels.to(device, dtype)).image_embeds.float().cpu())
    return out[0], out[1]


class IPAdapters:
    """The node's IP-Adapters hooked into ``model`` until ``stack`` closes; call
    :meth:`select` before each transformer call (which step, positive or negative)."""

    def __init__(self, fields: list[IPAdapterField], ctx: Context, device: str) -> None:
        """Encode the image prompts now, before the transformer is loaded (less peak memory)."""
        for field in fields:
            if field.mask is not None:
                raise ValueError("IP-Adapter masks are not supported with FLUX (as in InvokeAI)")
        self._embeds = [(f, *_image_embeds(ctx, f, device)) for f in fields]
        self._device = device
        self._active: list[tuple[IPAdapterField, Any, dict[bool, torch.Tensor]]] = []
        self._queries: dict[int, torch.Tensor] = {}
        self._step, self._total, self._negative = 0, 1, False

    def attach(self, ctx: Context, stack: ExitStack, model: Any) -> None:
        """Load the adapters and hook them into ``model`` until ``stack`` closes."""
        import torch

        inner = model.config.num_attention_heads * model.config.attention_head_dim
        blocks = len(model.transformer_blocks)
        for field, pos, neg in self._embeds:
            adapter = stack.enter_context(ctx.models.load(field.ip_adapter_model))
            hidden = adapter.double_blocks[0].k.out_features
            if hidden != inner or len(adapter.double_blocks) > blocks:
                raise ValueError(
                    f"IP-Adapter {field.ip_adapter_model.name!r} is for a transformer of width "
                    f"{hidden} with {len(adapter.double_blocks)} double blocks; this one has "
                    f"{inner} and {blocks}"
                )
            # the execution device, not a parameter's: a partly loaded adapter's are on meta
            dtype = next(adapter.parameters()).dtype
            with torch.inference_mode():
                tokens = {
                    False: adapter.image_proj(pos.to(self._device, dtype)),
                    True: adapter.image_proj(neg.to(self._device, dtype)),
                }
            self._active.append((field, adapter, tokens))
        n = max(len(a.double_blocks) for _, a, _ in self._active)
        for i, block in enumerate(model.transformer_blocks[:n]):
            h1 = block.attn.norm_q.register_forward_hook(self._keep_query(i))
            h2 = block.register_forward_hook(self._add(i, block.attn.heads))
            stack.callback(h1.remove)
            stack.callback(h2.remove)
        stack.callback(self._queries.clear)

    def select(self, step: int, total: int, negative: bool) -> None:
        self._step, self._total, self._negative = step, total, negative

    def _keep_query(self, index: int) -> Any:
        def hook(_mod: Any, _args: Any, out: torch.Tensor) -> None:
            self._queries[index] = out

        return hook

    def _add(self, index: int, heads: int) -> Any:
        import torch.nn.functional as F

        def hook(_mod: Any, _args: Any, out: tuple[Any, Any]) -> tuple[Any, Any]:
            context, img = out
            query = self._queries.pop(index).transpose(1, 2)  # (B, heads, L, D)
            for field, adapter, tokens in self._active:
                w = step_weight(field, self._step, self._total)
                if index >= len(adapter.double_blocks) or w < 1e-6:
                    continue
                block = adapter.double_blocks[index]
                t = tokens[self._negative].to(img.device, next(block.parameters()).dtype)
                k = block.k(t).to(query).unflatten(-1, (heads, -1)).transpose(1, 2)
                v = block.v(t).to(query).unflatten(-1, (heads, -1)).transpose(1, 2)
                attn = F.scaled_dot_product_attention(query, k, v, dropout_p=0.0)
                img = img + w * attn.transpose(1, 2).flatten(2).to(img.dtype)
            return context, img

        return hook
