"""Apply LoRAs to cached models for the duration of one node, then restore them exactly.

The UNet and text encoders live in the model cache and are shared across runs, so a LoRA
must never stay in them. :func:`patched` adds ``weight * scale * up @ down`` to each target
layer's weight in place and, on exit, copies the saved original tensors back (bit-exact,
no subtract-and-hope). Two key layouts are read: diffusers/PEFT
(``unet.<module>.lora_A.weight``) and kohya (``lora_unet_<module_with_underscores>.lora_down.weight``
with ``.alpha``). Under kohya names the LyCORIS layer kinds are applied too, each delta by
its published formula (as InvokeAI's patches compute them): LoHa ``(w1a @ w1b) * (w2a @ w2b)``,
LoKr ``kron(w1, w2)`` (either factor possibly low-rank), full ``diff`` (+ ``diff_b``) and
norm ``w_norm``/``b_norm`` layers. Tucker/CP and DoRA layers, and any tensor name we do not
know, are refused with the key named: nothing in a LoRA file is silently skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from invoke_nb.models.cache import ModelCache

__all__ = ["LoRAFormatError", "LoRALayer", "LyCORISLayer", "parse_lora", "patched"]


class LoRAFormatError(ValueError):
    """A LoRA state dict is not in a layout we read, or names layers the model lacks."""


@dataclass
class LoRALayer:
    down: torch.Tensor
    up: torch.Tensor
    alpha: float | None

    def tensors(self) -> list[torch.Tensor]:
        return [self.down, self.up]

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

    def bias_delta(self) -> torch.Tensor | None:
        return None


def _moved(t: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in t.items()}


@dataclass
class LyCORISLayer:
    """A LoHa, LoKr, full-diff or norm layer (LyCORIS key names), by its tensors."""

    kind: str  # "loha" | "lokr" | "full" | "norm"
    t: dict[str, torch.Tensor]
    alpha: float | None

    def tensors(self) -> list[torch.Tensor]:
        return list(self.t.values())

    def on(self, device: torch.device) -> LyCORISLayer:
        if all(v.device == device for v in self.t.values()):
            return self
        return LyCORISLayer(self.kind, _moved(self.t, device), self.alpha)

    def _scale(self, rank: int | None) -> float:
        return self.alpha / rank if self.alpha is not None and rank else 1.0

    def delta(self, shape: torch.Size) -> torch.Tensor:
        import torch

        t = {k: v.float() for k, v in self.t.items()}
        if self.kind == "loha":  # Hadamard product of two low-rank products
            w1 = t["hada_w1_a"] @ t["hada_w1_b"].flatten(1)
            w2 = t["hada_w2_a"] @ t["hada_w2_b"].flatten(1)
            return (w1 * w2 * self._scale(t["hada_w1_b"].shape[0])).reshape(shape)
        if self.kind == "lokr":  # Kronecker product of two (maybe low-rank) factors
            rank = None
            w1 = t.get("lokr_w1")
            if w1 is None:
                w1, rank = t["lokr_w1_a"] @ t["lokr_w1_b"], t["lokr_w1_b"].shape[0]
            w2 = t.get("lokr_w2")
            if w2 is None:
                b = t["lokr_w2_b"]
                w2 = (t["lokr_w2_a"] @ b.flatten(1)).reshape(t["lokr_w2_a"].shape[0], *b.shape[1:])
                rank = rank or b.shape[0]
            if w2.ndim == 4:
                w1 = w1[:, :, None, None]
            return (torch.kron(w1, w2) * self._scale(rank)).reshape(shape)
        key = "diff" if self.kind == "full" else "w_norm"
        return t[key].reshape(shape)

    def bias_delta(self) -> torch.Tensor | None:
        b = self.t.get("diff_b" if self.kind == "full" else "b_norm")
        return b.float() if b is not None else None


# suffix sets of each layer kind (kohya/LyCORIS names after "<prefix><module>.")
_KINDS = {
    "loha": {"hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b"},
    "lokr": {"lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b"},
    "full": {"diff", "diff_b"},
    "norm": {"w_norm", "b_norm"},
}
_REFUSED = {
    "hada_t1": "LoHa with a CP-decomposed (Tucker) convolution (hada_t1/hada_t2)",
    "hada_t2": "LoHa with a CP-decomposed (Tucker) convolution (hada_t1/hada_t2)",
    "lokr_t2": "LoKr with a CP-decomposed (Tucker) convolution (lokr_t2)",
    "dora_scale": "DoRA (weight-decomposed LoRA, dora_scale)",
}


# Our part names -> kohya prefixes (SD1 uses lora_te; SDXL lora_te1 / lora_te2).
_KOHYA = {
    "unet": ("lora_unet_",),
    "text_encoder": ("lora_te_", "lora_te1_"),
    "text_encoder_2": ("lora_te2_",),
}


def parse_lora(sd: dict[str, torch.Tensor], part: str) -> dict[str, LoRALayer | LyCORISLayer]:
    """The layers of ``sd`` that target ``part`` ("unet", "text_encoder", "text_encoder_2").

    Keys of the result are module names: dotted for PEFT, underscored for kohya (they are
    matched against the model's module names with dots replaced). LoRA, LoHa, LoKr,
    full-diff and norm layers are read; anything else is refused by name, never skipped.
    """
    out: dict[str, LoRALayer | LyCORISLayer] = {}
    peft_prefix = part + "."
    downs: dict[str, torch.Tensor] = {}
    ups: dict[str, torch.Tensor] = {}
    alphas: dict[str, float] = {}
    other: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in sd.items():
        if key.startswith(peft_prefix) and (".lora_A." in key or ".lora_B." in key):
            module = key[len(peft_prefix) :].rsplit(".lora_", 1)[0]
            (downs if ".lora_A." in key else ups)[module] = value
            continue
        for prefix in _KOHYA.get(part, ()):
            if key.startswith(prefix):
                module, _, rest = key[len(prefix) :].partition(".")
                if rest in ("lora_down.weight", "lora_A.weight"):
                    downs[module] = value
                elif rest in ("lora_up.weight", "lora_B.weight"):
                    ups[module] = value
                elif rest == "alpha":
                    alphas[module] = float(value)
                elif rest in _REFUSED:
                    raise LoRAFormatError(
                        f"LoRA layer {part}.{module}: {_REFUSED[rest]} is not supported"
                    )
                elif any(rest in names for names in _KINDS.values()):
                    other.setdefault(module, {})[rest] = value
                elif rest != "lora_mid.weight":
                    raise LoRAFormatError(
                        f"LoRA key {key!r}: unknown layer tensor {rest!r}; refusing to skip it"
                    )
                else:
                    raise LoRAFormatError(
                        f"LoRA layer {part}.{module}: LoCon mid (Tucker) weights are not supported"
                    )
    for module, down in downs.items():
        if module not in ups:
            raise LoRAFormatError(f"LoRA layer {part}.{module} has a down but no up matrix")
        out[module] = LoRALayer(down=down, up=ups[module], alpha=alphas.get(module))
    for module, tensors in other.items():
        kind = next(k for k, names in _KINDS.items() if set(tensors) <= names)
        out[module] = LyCORISLayer(kind, tensors, alphas.get(module))
    return out


def _module_index(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    import torch

    index: dict[str, torch.nn.Module] = {}
    for name, mod in model.named_modules():
        if isinstance(
            mod, torch.nn.Linear | torch.nn.Conv2d | torch.nn.LayerNorm | torch.nn.GroupNorm
        ):
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
    plan: list[tuple[torch.Tensor, Any, float]] = []
    for sd, weight in loras:
        for module_name, layer in parse_lora(sd, part).items():
            mod = index.get(module_name)
            if mod is None:
                raise LoRAFormatError(
                    f"LoRA {what or ''} targets {part}.{module_name}, which the model lacks"
                )
            plan.append((_patch_target(mod), layer, weight))
            if layer.bias_delta() is not None:
                if getattr(mod, "bias", None) is None:
                    raise LoRAFormatError(
                        f"LoRA {what or ''} changes the bias of {part}.{module_name}, "
                        "which has none"
                    )
                plan.append((_patch_target(mod, "bias"), _BiasOf(layer), weight))
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
    plan: list[tuple[torch.Tensor, Any, float]], device: str | None
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
            matrices = sum(t.numel() * 4 for t in layer.tensors())
            peak = max(peak, matrices + target.numel() * 8 + size)
    return ram, peak


@dataclass
class _BiasOf:
    """The bias part of a full-diff or norm layer, patched like a weight."""

    layer: LyCORISLayer

    def tensors(self) -> list[torch.Tensor]:
        return []

    def on(self, device: torch.device) -> _BiasOf:
        return _BiasOf(self.layer.on(device))

    def delta(self, shape: torch.Size) -> torch.Tensor:
        b = self.layer.bias_delta()
        assert b is not None
        return b.reshape(shape)


def _patch_target(mod: torch.nn.Module, name: str = "weight") -> torch.Tensor:
    """The tensor holding ``mod``'s weight: the parameter, or for a layer that streams in
    under partial loading (weight on ``meta``) the CPU tensor it streams from."""
    from invoke_nb.models.placement import stream_source

    param = getattr(mod, name)
    if param.device.type == "meta":
        source = stream_source(mod, name)
        if source is not None:
            return source
    return param
