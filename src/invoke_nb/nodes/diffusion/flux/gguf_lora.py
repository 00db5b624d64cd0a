"""LoRAs on quantized FLUX transformers (GGUF, bitsandbytes NF4): run beside the weights.

A quantized weight cannot be patched in place, so each targeted quantized layer (one with a
``sidecars`` list: GGUFLinear, NF4Linear) computes
``scale * up(down(x))`` next to its own output while the node runs (InvokeAI's "sidecar"
patching); float layers of the same model are patched and restored as usual. Layer kinds
that are not a low-rank pair (LoHa, LoKr, full diff, DoRA) run beside it as one delta
matrix, computed once from the dequantized weight (DoRA's delta depends on it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from invoke_nb.models.gguf_flux import dequantize
from invoke_nb.nodes.diffusion.lora import (
    LoRAFormatError,
    LoRALayer,
    parse_lora,
    patched,
    split_key,
    stacked,
)

__all__ = ["sidecar_loras"]


@contextmanager
def sidecar_loras(model: Any, loras: list[tuple[dict[str, Any], float]]) -> Iterator[Any]:
    """Apply PEFT-layout transformer LoRAs to a quantized model inside the block."""
    index: dict[str, Any] = {}
    for name, mod in model.named_modules():
        index[name] = index[name.replace(".", "_")] = mod
    added: list[tuple[Any, Any]] = []
    rest: list[tuple[dict[str, Any], float]] = []
    try:
        for sd, weight in loras:
            quantized: set[str] = set()
            for module, layer in parse_lora(sd, "transformer").items():
                mods = [index.get(name) for name in module.split("+")]
                if any(mod is None for mod in mods):
                    raise LoRAFormatError(
                        f"LoRA targets transformer.{module}, which the model lacks"
                    )
                kinds = {hasattr(mod, "sidecars") for mod in mods}
                if kinds == {False}:
                    continue  # a float layer: patched in place below
                if len(kinds) > 1 or layer.bias_delta() is not None:
                    raise LoRAFormatError(
                        f"LoRA layer transformer.{module}: this layer kind is not supported "
                        "on a quantized layer"
                    )
                quantized.add(module)
                for mod, entry in zip(mods, _entries(mods, layer, weight), strict=True):
                    mod.sidecars.append(entry)
                    added.append((mod, entry))
            plain = {k: v for k, v in sd.items() if _module(k) not in quantized}
            if plain:
                rest.append((plain, weight))
        with patched(model, rest, "transformer"):
            yield model
    finally:
        for mod, entry in added:
            mod.sidecars.remove(entry)


def _module(key: str) -> str | None:
    found = split_key(key, "transformer")
    return found[0] if found is not None else None


def _entries(mods: list[Any], layer: Any, weight: float) -> list[tuple[Any, Any, float]]:
    """One sidecar per quantized module: the low-rank pair of a LoRA on one layer, else
    the rows of the whole delta that belong to each module."""
    if isinstance(layer, LoRALayer) and len(mods) == 1:
        rank = layer.down.shape[0]
        scale = weight * ((layer.alpha / rank) if layer.alpha is not None else 1.0)
        return [(layer.down.flatten(1).float(), layer.up.flatten(1).float(), scale)]
    import torch

    with torch.no_grad():
        weights = [_dequantized(m) for m in mods]
        delta = layer.on(weights[0].device).delta(stacked(weights)).float()
    return [
        (piece.contiguous(), None, weight)
        for piece in delta.split([w.shape[0] for w in weights], dim=0)
    ]


def _dequantized(mod: Any) -> Any:
    """A quantized layer's weight in float32 (NF4 layers dequantize themselves)."""
    import torch

    if hasattr(mod, "weight_float"):
        return mod.weight_float(torch.float32).float()
    return dequantize(mod.raw, mod.qtype, (mod.out_features, mod.in_features)).float()
