"""Z-Image LoRAs on the shared patcher (:func:`invoke_nb.nodes.diffusion.lora.patched`).

Z-Image LoRAs are PEFT (``lora_A``/``lora_B``) or LyCORIS-style (``lora_down``/``lora_up``
with ``.alpha``) files whose transformer keys start with ``diffusion_model.``,
``transformer.`` or ``base_model.model.transformer.``, and Qwen3 keys with
``text_encoder.``. We rename them to the patcher's PEFT layout (alpha folded into the up
matrix) under the part name it reads.
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
    """The layers of ``sd`` for ``part`` as ``unet.<module>.lora_A/B.weight``."""
    downs: dict[str, torch.Tensor] = {}
    ups: dict[str, torch.Tensor] = {}
    alphas: dict[str, float] = {}
    for key, value in sd.items():
        prefix = next((p for p in PREFIXES[part] if key.startswith(p)), None)
        if prefix is None:
            continue
        rest = key[len(prefix) :]
        for down, up in (
            (".lora_A.weight", ".lora_B.weight"),
            (".lora_down.weight", ".lora_up.weight"),
        ):
            if rest.endswith(down):
                downs[rest[: -len(down)]] = value
            elif rest.endswith(up):
                ups[rest[: -len(up)]] = value
        if rest.endswith(".alpha"):
            alphas[rest[: -len(".alpha")]] = float(value)
    out: dict[str, torch.Tensor] = {}
    for module, down in downs.items():
        up = ups.get(module)
        if up is None:
            continue  # the patcher reports half layers; a down alone has no effect
        if module in alphas:
            up = up * (alphas[module] / down.shape[0])
        out[f"{_PART}.{module}.lora_A.weight"] = down
        out[f"{_PART}.{module}.lora_B.weight"] = up
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
