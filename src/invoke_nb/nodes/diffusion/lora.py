"""Apply LoRAs to cached models for the duration of one node, then restore them exactly.

The UNet and text encoders live in the model cache and are shared across runs, so a LoRA
must never stay in them. :func:`patched` adds ``weight * scale * up @ down`` to each target
layer's weight in place and, on exit, copies the saved original tensors back (bit-exact,
no subtract-and-hope). Two key layouts are read: diffusers/PEFT
(``unet.<module>.lora_A.weight``) and kohya (``lora_unet_<module_with_underscores>.lora_down.weight``
with ``.alpha``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from invoke_nb.models.cache import ModelCache

__all__ = ["LoRAFormatError", "LoRALayer", "parse_lora", "patched"]


class LoRAFormatError(ValueError):
    """A LoRA state dict is not in a layout we read, or names layers the model lacks."""


@dataclass
class LoRALayer:
    down: torch.Tensor
    up: torch.Tensor
    alpha: float | None

    def on(self, device: torch.device) -> LoRALayer:
        """This layer with its matrices on ``device`` (small: rank x width)."""
        if self.down.device == device:
            return self
        return LoRALayer(
            self.down.to(device, non_blocking=True),
            self.up.to(device, non_blocking=True),
            self.alpha,
        )

    def delta(self, shape: torch.Size) -> torch.Tensor:
        rank = self.down.shape[0]
        scale = (self.alpha / rank) if self.alpha is not None else 1.0
        down = self.down.flatten(1).float()
        up = self.up.flatten(1).float()
        return ((up @ down) * scale).reshape(shape)


# Our part names -> kohya prefixes (SD1 uses lora_te; SDXL lora_te1 / lora_te2).
_KOHYA = {
    "unet": ("lora_unet_",),
    "text_encoder": ("lora_te_", "lora_te1_"),
    "text_encoder_2": ("lora_te2_",),
}


def parse_lora(sd: dict[str, torch.Tensor], part: str) -> dict[str, LoRALayer]:
    """The layers of ``sd`` that target ``part`` ("unet", "text_encoder", "text_encoder_2").

    Keys of the result are module names: dotted for PEFT, underscored for kohya (they are
    matched against the model's module names with dots replaced).
    """
    out: dict[str, LoRALayer] = {}
    peft_prefix = part + "."
    downs: dict[str, torch.Tensor] = {}
    ups: dict[str, torch.Tensor] = {}
    alphas: dict[str, float] = {}
    for key, value in sd.items():
        if key.startswith(peft_prefix) and (".lora_A." in key or ".lora_B." in key):
            module = key[len(peft_prefix) :].rsplit(".lora_", 1)[0]
            (downs if ".lora_A." in key else ups)[module] = value
            continue
        for prefix in _KOHYA.get(part, ()):
            if key.startswith(prefix):
                module, _, rest = key[len(prefix) :].partition(".")
                if rest == "lora_down.weight":
                    downs[module] = value
                elif rest == "lora_up.weight":
                    ups[module] = value
                elif rest == "alpha":
                    alphas[module] = float(value)
    for module, down in downs.items():
        if module not in ups:
            raise LoRAFormatError(f"LoRA layer {part}.{module} has a down but no up matrix")
        out[module] = LoRALayer(down=down, up=ups[module], alpha=alphas.get(module))
    return out


def _module_index(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    import torch

    index: dict[str, torch.nn.Module] = {}
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear | torch.nn.Conv2d):
            index[name] = mod
            index[name.replace(".", "_")] = mod
            if not name.startswith("text_model."):
                # transformers >= 5.6 flattened CLIPTextModel: accept the older names too.
                alt = "text_model." + name
                index.setdefault(alt, mod)
                index.setdefault(alt.replace(".", "_"), mod)
    return index


@contextmanager
def patched(
    model: torch.nn.Module,
    loras: Iterable[tuple[dict[str, torch.Tensor], float]],
    part: str,
    *,
    what: str = "",
    cache: ModelCache | None = None,
) -> Iterator[torch.nn.Module]:
    """Apply ``(state_dict, weight)`` LoRAs to ``model`` inside the block; restore on exit.

    With ``cache``, the patch's memory counts against its budgets while applied
    (:meth:`ModelCache.reserve`): the RAM of the saved originals and the device bytes of
    the largest delta being computed, so other models make room first.
    """
    import torch

    loras = [(sd, w) for sd, w in loras]
    if not loras:
        yield model
        return
    index = _module_index(model)
    # every (target tensor, layer, weight) first: a bad LoRA is refused before any change
    plan: list[tuple[torch.Tensor, LoRALayer, float]] = []
    for sd, weight in loras:
        for module_name, layer in parse_lora(sd, part).items():
            mod = index.get(module_name)
            if mod is None:
                raise LoRAFormatError(
                    f"LoRA {what or ''} targets {part}.{module_name}, which the model lacks"
                )
            plan.append((_patch_target(mod), layer, weight))
    ram, vram = _patch_bytes(plan, cache.device if cache is not None else None)
    # id -> (target tensor, CPU copy of its original): the originals stay on the CPU, so a
    # patched model needs no second copy of its weights on the device
    saved: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    reserve = (
        cache.reserve(ram, vram, label=f"LoRA patch of {part}")
        if cache is not None
        else nullcontext()
    )
    with reserve:
        # inference_mode: weights loaded inside an inference-mode block are inference
        # tensors, which may only be updated in place inside one.
        try:
            with torch.inference_mode():
                for target, layer, weight in plan:
                    if id(target) not in saved:
                        saved[id(target)] = (target, target.detach().to("cpu", copy=True))
                    # the delta is computed where the weight lives (on the GPU when loaded)
                    delta = layer.on(target.device).delta(target.shape) * weight
                    target.add_(delta.to(target.dtype))
            yield model
        finally:
            with torch.inference_mode():
                for target, original in saved.values():
                    target.copy_(original, non_blocking=True)


def _patch_bytes(
    plan: list[tuple[torch.Tensor, LoRALayer, float]], device: str | None
) -> tuple[int, int]:
    """(RAM, device) bytes a patch holds: the CPU copies of its distinct targets, and on
    the execution device the peak of one layer's work (its matrices, the float32 delta and
    its weighted copy, the delta cast to the weight's dtype) since deltas are made one by one.
    """
    import torch

    kind = torch.device(device).type if device is not None else None
    ram = 0
    seen: set[int] = set()
    peak = 0
    for target, layer, _ in plan:
        size = target.numel() * target.element_size()
        if id(target) not in seen:
            seen.add(id(target))
            ram += size
        if target.device.type == kind:
            matrices = layer.down.numel() * 4 + layer.up.numel() * 4
            peak = max(peak, matrices + target.numel() * 8 + size)
    return ram, peak


def _patch_target(mod: torch.nn.Module) -> torch.Tensor:
    """The tensor holding ``mod``'s weight: the parameter, or for a layer that streams in
    under partial loading (weight on ``meta``) the CPU tensor it streams from."""
    from invoke_nb.models.placement import stream_source

    param = mod.weight
    if param.device.type == "meta":
        source = stream_source(mod, "weight")
        if source is not None:
            return source
    return param
