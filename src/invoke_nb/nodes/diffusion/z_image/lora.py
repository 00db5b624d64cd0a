"""Z-Image LoRAs on the shared patcher (:func:`invoke_nb.nodes.diffusion.lora.patched`).

Z-Image LoRAs are PEFT (``lora_A``/``lora_B``) or LyCORIS-style (``lora_down``/``lora_up``
with ``.alpha``) files whose transformer keys start with ``diffusion_model.``,
``transformer.`` or ``base_model.model.transformer.``, and Qwen3 keys with
``text_encoder.``; LyCORIS layer kinds (LoHa, LoKr, DoRA) come in the same files. We
rename them under the part name the patcher reads and let it parse them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from invoke_nb.nodes.diffusion.lora import patched

__all__ = ["z_image_lora_patch"]

PREFIXES = {
    "transformer": ("base_model.model.transformer.", "diffusion_model.", "transformer."),
    "text_encoder": ("base_model.model.text_encoder.", "text_encoder.model.", "text_encoder."),
}
_PART = "unet"  # the shared patcher reads PEFT keys under a part prefix; any name does


def to_peft(sd: dict[str, torch.Tensor], part: str) -> dict[str, torch.Tensor]:
    """The keys of ``sd`` for ``part`` renamed ``unet.<module>.<tensor>``.

    Only the prefix changes: the shared patcher's parser then reads every layer kind it
    knows (LoRA, DoRA, LoHa, LoKr, full-diff, norm) and refuses the rest by name, so a
    LyCORIS Z-Image file is applied, never silently skipped.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        prefix = next((p for p in PREFIXES[part] if key.startswith(p)), None)
        if prefix is not None:
            out[f"{_PART}.{key[len(prefix) :]}"] = value
    return out


@contextmanager
def z_image_lora_patch(
    model: Any, loras: Iterable[tuple[dict[str, torch.Tensor], float]], part: str, cache: Any
) -> Iterator[Any]:
    """``model`` with the LoRAs' ``part`` layers applied inside the block."""
    converted = [(to_peft(sd, part), w) for sd, w in loras]
    converted = [(sd, w) for sd, w in converted if sd]
    with patched(model, converted, _PART, what=f"(Z-Image {part})", cache=cache) as m:
        yield m
