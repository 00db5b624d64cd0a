"""Apply LoRAs to cached models for the duration of one node, then restore them exactly.

The UNet and text encoders live in the model cache and are shared across runs, so a LoRA
must never stay in them. :func:`patched` adds ``weight * scale * up @ down`` to each target
layer's weight in place and, on exit, copies the saved original tensors back (bit-exact,
no subtract-and-hope). Two key layouts are read: diffusers/PEFT
(``unet.<module>.lora_A.weight``) and kohya (``lora_unet_<module_with_underscores>.lora_down.weight``
with ``.alpha``). The LyCORIS layer kinds are applied too, each delta by its published
formula (as InvokeAI's patches compute them): LoHa ``(w1a @ w1b) * (w2a @ w2b)``, LoKr
``kron(w1, w2)`` (either factor possibly low-rank), full ``diff`` (+ ``diff_b``), norm
``w_norm``/``b_norm`` layers, and DoRA: a LoRA plus a magnitude (LyCORIS ``dora_scale``,
PEFT ``lora_magnitude_vector``) that renormalises the patched weight,
``W' = m * (W + dW) / ||W + dW||``. Tucker/CP layers, and any tensor name we do not know
under a kohya prefix, are refused with the key named: nothing there is silently skipped.

A module name may join several modules with ``+`` (a FLUX LoRA on a BFL layer that fuses
diffusers' q, k and v): the layer then sees those weights stacked by rows, as one matrix.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from invoke_nb.models.cache import ModelCache

__all__ = [
    "DoRALayer",
    "LoRAFormatError",
    "LoRALayer",
    "LyCORISLayer",
    "parse_lora",
    "patched",
    "split_key",
]


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

    def delta(self, orig: torch.Tensor | torch.Size) -> torch.Tensor:
        """The change to a weight (given, or only its shape): ``scale * up @ down``."""
        shape = _shape(orig)
        rank = self.down.shape[0]
        scale = (self.alpha / rank) if self.alpha is not None else 1.0
        down = self.down.flatten(1).float()
        up = self.up.flatten(1).float()
        return ((up @ down) * scale).reshape(shape)

    def bias_delta(self) -> torch.Tensor | None:
        return None


def _shape(orig: torch.Tensor | torch.Size) -> torch.Size:
    return orig if isinstance(orig, tuple) else orig.shape


def _moved(t: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in t.items()}


@dataclass
class DoRALayer:
    """A LoRA whose patched weight is renormalised (DoRA, arXiv 2402.09353).

    ``W' = m * (W + dW) / ||W + dW||``; the delta is ``W' - W``, so it needs the weight.
    The norm runs along the axis the magnitude's shape names: LyCORIS/kohya ``dora_scale``
    of shape ``(1, in[, 1, 1])`` holds one magnitude per input column (the norm is taken
    over the output rows, as InvokeAI computes it); PEFT's ``lora_magnitude_vector`` of
    shape ``(out,)`` (or a LyCORIS ``(out, 1)``) holds one per output row. A LoRA weight
    ``w`` gives ``W + w * (W' - W)``, as InvokeAI applies DoRA (PEFT scales ``dW`` inside
    the norm instead; the two agree at ``w = 1``).
    """

    lora: LoRALayer
    magnitude: torch.Tensor

    def tensors(self) -> list[torch.Tensor]:
        return [*self.lora.tensors(), self.magnitude]

    def on(self, device: torch.device) -> DoRALayer:
        if self.magnitude.device == device:
            return self
        return DoRALayer(self.lora.on(device), self.magnitude.to(device, non_blocking=True))

    def delta(self, orig: torch.Tensor | torch.Size) -> torch.Tensor:
        import torch

        if isinstance(orig, tuple):
            raise TypeError("a DoRA delta depends on the weight itself, not only its shape")
        w = orig.float()
        direction = w + self.lora.delta(w.shape)
        m = self.magnitude.float()
        per_column = m.ndim >= 2 and m.shape[0] == 1 and w.shape[0] != 1
        dims = [d for d in range(w.ndim) if d != (1 if per_column else 0)]
        norm = torch.linalg.vector_norm(direction, dim=dims, keepdim=True)
        if m.numel() != norm.numel():
            raise LoRAFormatError(
                f"DoRA magnitude of shape {tuple(m.shape)} does not fit a weight of "
                f"shape {tuple(w.shape)}"
            )
        return direction * (m.reshape(norm.shape) / norm) - w

    def bias_delta(self) -> torch.Tensor | None:
        return None


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

    def delta(self, orig: torch.Tensor | torch.Size) -> torch.Tensor:
        import torch

        shape = _shape(orig)
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
_LORA = {
    "lora_down.weight": "down",
    "lora_A.weight": "down",
    "lora_up.weight": "up",
    "lora_B.weight": "up",
}
_MAGNITUDE = ("dora_scale", "lora_magnitude_vector", "lora_magnitude_vector.weight")
_REFUSED = {
    "hada_t1": "LoHa with a CP-decomposed (Tucker) convolution (hada_t1/hada_t2)",
    "hada_t2": "LoHa with a CP-decomposed (Tucker) convolution (hada_t1/hada_t2)",
    "lokr_t2": "LoKr with a CP-decomposed (Tucker) convolution (lokr_t2)",
    "lora_mid.weight": "LoCon mid (Tucker) weights",
}
# every tensor name we know, longest first (so "lora_magnitude_vector.weight" wins)
_SUFFIXES = sorted(
    {*_LORA, "alpha", *_MAGNITUDE, *_REFUSED, *(n for names in _KINDS.values() for n in names)},
    key=len,
    reverse=True,
)


# Our part names -> kohya prefixes (SD1 uses lora_te; SDXL lora_te1 / lora_te2).
_KOHYA = {
    "unet": ("lora_unet_",),
    "text_encoder": ("lora_te_", "lora_te1_"),
    "text_encoder_2": ("lora_te2_",),
}


def split_key(key: str, part: str) -> tuple[str, str] | None:
    """``(module, tensor name)`` of a LoRA key for ``part``, or None when it is not ``part``'s.

    PEFT keys (``<part>.<dotted module>.<tensor>``) whose tensor name we do not know are
    None too (as before: other tools' extra keys there); a kohya key's unknown tensor name
    is returned as is, for :func:`parse_lora` to refuse.
    """
    peft_prefix = part + "."
    if key.startswith(peft_prefix):
        rest = key[len(peft_prefix) :]
        for suffix in _SUFFIXES:
            if rest.endswith("." + suffix):
                return rest[: -len(suffix) - 1], suffix
        return None
    for prefix in _KOHYA.get(part, ()):
        if key.startswith(prefix):
            module, _, rest = key[len(prefix) :].partition(".")
            return module, rest
    return None


def parse_lora(
    sd: dict[str, torch.Tensor], part: str
) -> dict[str, LoRALayer | LyCORISLayer | DoRALayer]:
    """The layers of ``sd`` that target ``part`` ("unet", "text_encoder", "text_encoder_2").

    Keys of the result are module names: dotted for PEFT, underscored for kohya (they are
    matched against the model's module names with dots replaced). LoRA, DoRA, LoHa, LoKr,
    full-diff and norm layers are read; anything else is refused by name, never skipped.
    """
    grouped: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in sd.items():
        found = split_key(key, part)
        if found is not None:
            grouped.setdefault(found[0], {})[found[1]] = value
    out: dict[str, LoRALayer | LyCORISLayer | DoRALayer] = {}
    for module, tensors in grouped.items():
        layer = _layer(part, module, tensors)
        if layer is not None:
            out[module] = layer
    return out


def _layer(
    part: str, module: str, t: dict[str, torch.Tensor]
) -> LoRALayer | LyCORISLayer | DoRALayer | None:
    """One module's tensors as a layer, by LyCORIS' detection order; None for an alpha alone."""
    for name in t:
        if name in _REFUSED:
            raise LoRAFormatError(f"LoRA layer {part}.{module}: {_REFUSED[name]}: not supported")
        if name not in _SUFFIXES:
            raise LoRAFormatError(
                f"LoRA key {part}.{module}.{name}: unknown layer tensor {name!r}; "
                "refusing to skip it"
            )
    t = dict(t)
    alpha = float(t.pop("alpha")) if "alpha" in t else None
    magnitude = next((t.pop(n) for n in _MAGNITUDE if n in t), None)
    lora = {_LORA[n]: t.pop(n) for n in list(t) if n in _LORA}
    if lora or magnitude is not None:
        if set(lora) != {"down", "up"}:
            have = " and ".join(sorted(lora)) or "only a DoRA magnitude"
            raise LoRAFormatError(f"LoRA layer {part}.{module} has {have}: it needs a down and up")
        if t:
            raise LoRAFormatError(
                f"LoRA layer {part}.{module} mixes LoRA matrices with {sorted(t)}"
            )
        plain = LoRALayer(down=lora["down"], up=lora["up"], alpha=alpha)
        return DoRALayer(plain, magnitude) if magnitude is not None else plain
    if not t:
        return None
    kind = next((k for k, names in _KINDS.items() if set(t) <= names), None)
    if kind is None:
        raise LoRAFormatError(f"LoRA layer {part}.{module} mixes layer kinds: {sorted(t)}")
    return LyCORISLayer(kind, t, alpha)


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
    # every (target tensors, layer, weight) first: a bad LoRA is refused before any change
    plan: list[tuple[list[torch.Tensor], Any, float]] = []
    names: dict[int, str] = {}  # id(layer) -> its module name, for errors
    for sd, weight in loras:
        for module_name, layer in parse_lora(sd, part).items():
            names[id(layer)] = module_name
            mods = [index.get(name) for name in module_name.split("+")]
            if any(mod is None for mod in mods):
                raise LoRAFormatError(
                    f"LoRA {what or ''} targets {part}.{module_name}, which the model lacks"
                )
            plan.append(([_patch_target(mod) for mod in mods], layer, weight))
            if layer.bias_delta() is not None:
                if any(getattr(mod, "bias", None) is None for mod in mods):
                    raise LoRAFormatError(
                        f"LoRA {what or ''} changes the bias of {part}.{module_name}, "
                        "which has none"
                    )
                bias = _BiasOf(layer)
                names[id(bias)] = module_name + " (bias)"
                plan.append(([_patch_target(mod, "bias") for mod in mods], bias, weight))
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
                for targets, layer, weight in plan:
                    for target in targets:
                        if id(target) not in saved:
                            saved[id(target)] = (target, target.detach().to("cpu", copy=True))
                    # the delta is computed where the weight lives (on the GPU when loaded)
                    try:
                        delta = layer.on(targets[0].device).delta(stacked(targets)) * weight
                        pieces = delta.split([t.shape[0] for t in targets])
                        pieces = [p.reshape(t.shape) for p, t in zip(pieces, targets, strict=True)]
                    except RuntimeError as e:  # shapes: a LoRA made for another model
                        shapes = " + ".join(str(tuple(t.shape)) for t in targets)
                        raise LoRAFormatError(
                            f"LoRA {what or ''} layer {part}.{names[id(layer)]} does not fit the "
                            f"model's weight {shapes}: {e}"
                        ) from e
                    for target, piece in zip(targets, pieces, strict=True):
                        target.add_(piece.to(target.dtype))
            yield model
        finally:
            with torch.inference_mode():
                for target, original in saved.values():
                    target.copy_(original, non_blocking=True)


def stacked(targets: list[torch.Tensor]) -> torch.Tensor:
    """One weight, or several stacked by rows (a fused layer's view of its parts)."""
    import torch

    if len(targets) == 1:
        return targets[0]
    return torch.cat([t.float() for t in targets], dim=0)


def _patch_bytes(
    plan: list[tuple[list[torch.Tensor], Any, float]], device: str | None
) -> tuple[int, int]:
    """(RAM, device) bytes a patch holds: the CPU copies of its distinct targets, and on
    the execution device the peak of one layer's work (its matrices, the float32 delta and
    its weighted copy, the delta cast to the weight's dtype; a DoRA layer's float32 weight
    and direction, a fused layer's stacked weights) since deltas are made one by one.
    """
    import torch

    kind = torch.device(device).type if device is not None else None
    ram = 0
    seen: set[int] = set()
    peak = 0
    for targets, layer, _ in plan:
        size = sum(t.numel() * t.element_size() for t in targets)
        numel = sum(t.numel() for t in targets)
        for target in targets:
            if id(target) not in seen:
                seen.add(id(target))
                ram += target.numel() * target.element_size()
        if targets[0].device.type == kind:
            matrices = sum(t.numel() * 4 for t in layer.tensors())
            work = 8 + (8 if isinstance(layer, DoRALayer) else 0) + (4 if len(targets) > 1 else 0)
            peak = max(peak, matrices + numel * work + size)
    return ram, peak


@dataclass
class _BiasOf:
    """The bias part of a full-diff or norm layer, patched like a weight."""

    layer: LyCORISLayer

    def tensors(self) -> list[torch.Tensor]:
        return []

    def on(self, device: torch.device) -> _BiasOf:
        return _BiasOf(self.layer.on(device))

    def delta(self, orig: torch.Tensor | torch.Size) -> torch.Tensor:
        b = self.layer.bias_delta()
        assert b is not None
        return b.reshape(_shape(orig))


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
