"""FLUX LoRA files in the layouts InvokeAI reads, turned into one layout we patch with.

Every format becomes ``{"transformer": {...}, "text_encoder": {...}, "text_encoder_2": {...}}``
(T5 is ``text_encoder_2``) of PEFT-style keys
(``<part>.<diffusers module>.lora_A.weight`` / ``lora_B.weight``) with the alpha/rank scale folded
into ``lora_B``, which :func:`invoke_nb.nodes.diffusion.lora.patched` applies and restores.

Formats:
- diffusers/PEFT: ``transformer.<module>.lora_A/B.weight`` (optionally ``.alpha``);
- kohya: ``lora_unet_<bfl_module_with_underscores>.lora_down/up.weight`` + ``.alpha``,
  CLIP layers ``lora_te1_<module>`` (``lora_te_`` too), T5 layers ``lora_te2_<module>``;
- OneTrainer: kohya's names with ``lora_transformer_`` and diffusers module names;
- AI-Toolkit / XLabs-style BFL names: ``diffusion_model.<bfl module>.lora_A/B.weight`` or
  ``<bfl module>.lora_down/up.weight`` (XLabs' ``double_blocks.N.processor.proj_lora1`` keys
  name the attention projections: ``qkv_lora1`` -> ``img_attn.qkv``, ``qkv_lora2`` ->
  ``txt_attn.qkv``, ``proj_lora1/2`` -> ``img_attn.proj``/``txt_attn.proj``).

A BFL module that fuses several diffusers layers (``img_attn.qkv``, ``linear1``) splits its
``up`` matrix by the same row ranges as the weights (:mod:`invoke_nb.models.flux_keys`).

The other layer kinds InvokeAI reads in these files (LyCORIS LoHa ``hada_*``, LoKr
``lokr_*``, full ``diff``, DoRA ``dora_scale``; PEFT DoRA's ``lora_magnitude_vector``) keep
their tensor names under ``<part>.<module>.``; on a fused BFL module the module is the
diffusers parts joined by ``+`` (``transformer.transformer_blocks.0.attn.to_q+...to_k+...to_v``),
so the patcher computes the delta on the stacked weights, as InvokeAI does on its BFL model
(a DoRA norm over a fused layer's columns spans all its parts).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from invoke_nb.models.flux2_keys import flux2_module_map
from invoke_nb.models.flux_keys import module_map

if TYPE_CHECKING:
    import torch

__all__ = ["FluxLoRAError", "convert_flux_lora", "looks_like_flux_lora"]


class FluxLoRAError(ValueError):
    """A LoRA file is not a FLUX LoRA in a layout we read."""


_XLABS = {
    "processor.qkv_lora1": "img_attn.qkv",
    "processor.qkv_lora2": "txt_attn.qkv",
    "processor.proj_lora1": "img_attn.proj",
    "processor.proj_lora2": "txt_attn.proj",
}


def looks_like_flux_lora(sd: dict[str, torch.Tensor]) -> bool:
    """Whether the keys name FLUX transformer layers (any supported layout)."""
    return any(
        "double_blocks" in k
        or "single_blocks" in k
        or "single_transformer_blocks" in k
        or k.startswith("transformer.transformer_blocks")
        or k.startswith("lora_transformer_")
        for k in sd
    )


def _bfl_underscored(bfl: dict[str, list[str]]) -> dict[str, str]:
    return {k.replace(".", "_"): k for k in bfl}


def _count(sd: dict[str, torch.Tensor], pattern: str) -> int:
    found = {int(m[1]) for k in sd if (m := re.search(pattern, k))}
    return max(found) + 1 if found else 0


def _split_rows(up: torch.Tensor, targets: list[str], inner: int) -> list[torch.Tensor]:
    sizes = [inner] * 3 + ([up.shape[0] - 3 * inner] if len(targets) == 4 else [])
    if sum(sizes) != up.shape[0] or min(sizes) <= 0:
        raise FluxLoRAError(
            f"LoRA layer with {up.shape[0]} output rows does not fit the model's fused layer "
            f"{' + '.join(targets)} ({inner} rows each for q, k and v)"
        )
    return list(up.split(sizes, dim=0))


def convert_flux_lora(
    sd: dict[str, torch.Tensor],
    inner_dim: int,
    only: str | None = None,
    *,
    family: str = "flux",
) -> dict[str, dict[str, torch.Tensor]]:
    """``{"transformer": peft_dict, "text_encoder": peft_dict}`` for any supported layout.

    ``inner_dim`` is the transformer's width (q, k and v rows of a fused layer each);
    ``only`` converts one part and leaves the other empty. ``family`` "flux2" maps BFL
    names onto FLUX.2's diffusers transformer (:mod:`invoke_nb.models.flux2_keys`).
    Raises :class:`FluxLoRAError` when a key fits no layout.
    """
    n_double = max(
        _count(sd, r"double_blocks[._](\d+)[._]"), _count(sd, r"transformer_blocks[._](\d+)[._]")
    )
    n_single = max(
        _count(sd, r"single_blocks[._](\d+)[._]"),
        _count(sd, r"single_transformer_blocks[._](\d+)[._]"),
    )
    bfl = (flux2_module_map if family == "flux2" else module_map)(n_double, n_single)
    bfl_u = _bfl_underscored(bfl)
    groups: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, value in sd.items():
        part, module, name = _classify(key, bfl, bfl_u)
        groups.setdefault((part, module), {})[name] = value
    out: dict[str, dict[str, torch.Tensor]] = {
        "transformer": {},
        "text_encoder": {},
        "text_encoder_2": {},
    }
    for (part, module), t in groups.items():
        if only is not None and only != ("transformer" if part == "bfl" else part):
            continue
        if set(t) <= {"down", "up", "alpha"}:
            _plain_lora(out, part, module, t, bfl[module] if part == "bfl" else [], inner_dim)
            continue
        if part == "bfl":
            if module == "final_layer.adaLN_modulation.1":
                raise FluxLoRAError(
                    f"LoRA layer {module}: only plain LoRA layers are supported on the final "
                    f"modulation, not {sorted(t)}"
                )
            part, module = "transformer", "+".join(bfl[module])
        for name, value in t.items():
            out[part][f"{part}.{module}.{_TENSOR_NAMES.get(name, name)}"] = value
    return out


# our short names -> the patcher's tensor names (others keep their LyCORIS names)
_TENSOR_NAMES = {"down": "lora_down.weight", "up": "lora_up.weight"}


def _plain_lora(
    out: dict[str, dict[str, torch.Tensor]],
    part: str,
    module: str,
    t: dict[str, torch.Tensor],
    targets: list[str],
    inner_dim: int,
) -> None:
    """A down/up pair as PEFT keys, alpha folded into ``up``, a fused BFL layer split."""
    if "down" not in t or "up" not in t:
        if set(t) == {"alpha"}:
            return
        raise FluxLoRAError(f"LoRA layer {module} has a down but no up matrix")
    down, up = t["down"], t["up"]
    alpha = float(t["alpha"]) if "alpha" in t else None
    up = up * (alpha / down.shape[0]) if alpha is not None else up
    if part != "bfl":
        out[part][f"{part}.{module}.lora_A.weight"] = down
        out[part][f"{part}.{module}.lora_B.weight"] = up
        return
    if module == "final_layer.adaLN_modulation.1":  # (shift, scale) -> (scale, shift)
        import torch

        a, b = up.chunk(2, dim=0)
        up = torch.cat([b, a], dim=0)
    pieces = [up] if len(targets) == 1 else _split_rows(up, targets, inner_dim)
    for name, piece in zip(targets, pieces, strict=True):
        out["transformer"][f"transformer.{name}.lora_A.weight"] = down
        out["transformer"][f"transformer.{name}.lora_B.weight"] = piece.contiguous()


_LYCORIS = [
    "lora_magnitude_vector",
    "dora_scale",
    "hada_w1_a",
    "hada_w1_b",
    "hada_w2_a",
    "hada_w2_b",
    "hada_t1",
    "hada_t2",
    "lokr_w1",
    "lokr_w1_a",
    "lokr_w1_b",
    "lokr_w2",
    "lokr_w2_a",
    "lokr_w2_b",
    "lokr_t2",
    "diff_b",
    "diff",
    "w_norm",
    "b_norm",
]
_SUFFIXES = [
    (".lora_A.weight", "down"),
    (".lora_B.weight", "up"),
    (".lora_down.weight", "down"),
    (".lora_up.weight", "up"),
    (".lora.down.weight", "down"),
    (".lora.up.weight", "up"),
    (".down.weight", "down"),
    (".up.weight", "up"),
    (".alpha", "alpha"),
    (".lora_magnitude_vector.weight", "lora_magnitude_vector"),
    *(("." + name, name) for name in _LYCORIS),
]


def _classify(key: str, bfl: dict[str, list[str]], bfl_u: dict[str, str]) -> tuple[str, str, str]:
    """(part, module, tensor name) of one key; part "bfl" names a BFL module. Tensor names
    are "down"/"up"/"alpha" for LoRA matrices and the LyCORIS/PEFT name otherwise."""
    for suffix, found in _SUFFIXES:
        if key.endswith(suffix):
            stem, kind = key[: -len(suffix)], found
            break
    else:
        raise FluxLoRAError(f"LoRA key {key!r} is not a LoRA, LyCORIS or DoRA tensor we read")
    if stem.startswith("transformer."):
        return "transformer", stem[len("transformer.") :], kind
    for prefix in ("diffusion_model.", "model.diffusion_model.", "base_model.model.", ""):
        if stem.startswith(prefix):
            rest = stem[len(prefix) :]
            for xl, name in _XLABS.items():
                rest = rest.replace(xl, name)
            if rest in bfl:
                return "bfl", rest, kind
    for prefix in ("base_model.model.", "diffusion_model."):  # PEFT-wrapped diffusers names
        if stem.startswith(prefix):
            return "transformer", stem[len(prefix) :], kind
    for prefix in ("lora_unet_", "lora_transformer_"):
        if stem.startswith(prefix):
            rest = stem[len(prefix) :]
            if rest in bfl_u:
                return "bfl", bfl_u[rest], kind
            return "transformer", rest, kind  # OneTrainer: diffusers names, underscored
    for prefix in ("lora_te1_", "lora_te_"):
        if stem.startswith(prefix):
            return "text_encoder", stem[len(prefix) :], kind
    if stem.startswith("text_encoder."):
        return "text_encoder", stem[len("text_encoder.") :], kind
    if stem.startswith("lora_te2_"):
        return "text_encoder_2", stem[len("lora_te2_") :], kind
    if stem.startswith("text_encoder_2."):
        return "text_encoder_2", stem[len("text_encoder_2.") :], kind
    raise FluxLoRAError(f"LoRA key {key!r} names no FLUX layer")
