"""LoRAs on quantized FLUX transformers (GGUF, bitsandbytes NF4): run beside the weights.

A quantized weight cannot be patched in place, so each targeted quantized layer (one with a
``sidecars`` list: GGUFLinear, NF4Linear) computes
``scale * up(down(x))`` next to its own output while the node runs (InvokeAI's "sidecar"
patching); float layers of the same model are patched and restored as usual.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from invoke_nb.nodes.diffusion.lora import LoRAFormatError, parse_lora, patched

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
            plain: dict[str, Any] = {}
            for module, layer in parse_lora(sd, "transformer").items():
                mod = index.get(module)
                if mod is None:
                    raise LoRAFormatError(
                        f"LoRA targets transformer.{module}, which the model lacks"
                    )
                if hasattr(mod, "sidecars"):
                    rank = layer.down.shape[0]
                    scale = weight * ((layer.alpha / rank) if layer.alpha is not None else 1.0)
                    entry = (layer.down.flatten(1).float(), layer.up.flatten(1).float(), scale)
                    mod.sidecars.append(entry)
                    added.append((mod, entry))
                else:
                    plain[f"transformer.{module}.lora_A.weight"] = layer.down
                    plain[f"transformer.{module}.lora_B.weight"] = layer.up
            if plain:
                rest.append((plain, weight))
        with patched(model, rest, "transformer"):
            yield model
    finally:
        for mod, entry in added:
            mod.sidecars.remove(entry)
