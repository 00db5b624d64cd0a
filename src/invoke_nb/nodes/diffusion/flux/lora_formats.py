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
"""

from __future__ import annotations

import re

import torch

from invoke_nb.models.flux_keys import module_map

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


def _bfl_underscored(n_double: int, n_single: int) -> dict[str, str]:
    return {k.replace(".", "_"): k for k in module_map(n_double, n_single)}


def _count(sd: dict[str, torch.Tensor], pattern: str) -> int:
    found = {int(m[1]) for k in sd if (m := re.search(pattern, k))}
    return max(found) + 1 if found else 0


def _split_rows(up: torch.Tensor, targets: list[str], inner: int) -> list[torch.Tensor]:
    sizes = [inner] * 3 + ([up.shape[0] - 3 * inner] if len(targets) == 4 else [])
    return list(up.split(sizes, dim=0))


def convert_flux_lora(
    sd: dict[str, torch.Tensor], inner_dim: int, only: str | None = None
) -> dict[str, dict[str, torch.Tensor]]:
    """``{"transformer": peft_dict, "text_encoder": peft_dict}`` for any supported layout.

    ``inner_dim`` is the transformer's width (q, k and v rows of a fused layer each);
    ``only`` converts one part and leaves the other empty.
    Raises :class:`FluxLoRAError` when a key fits no layout.
    """
    n_double = max(
        _count(sd, r"double_blocks[._](\d+)[._]"), _count(sd, r"transformer_blocks[._](\d+)[._]")
    )
    n_single = max(
        _count(sd, r"single_blocks[._](\d+)[._]"),
        _count(sd, r"single_transformer_blocks[._](\d+)[._]"),
    )
    bfl = module_map(n_double, n_single)
    bfl_u = _bfl_underscored(n_double, n_single)
    downs: dict[tuple[str, str], torch.Tensor] = {}
    ups: dict[tuple[str, str], torch.Tensor] = {}
    alphas: dict[tuple[str, str], float] = {}
    for key, value in sd.items():
        part, module, kind = _classify(key, bfl, bfl_u)
        if kind == "down":
            downs[(part, module)] = value
        elif kind == "up":
            ups[(part, module)] = value
        elif kind == "alpha":
            alphas[(part, module)] = float(value)
    out: dict[str, dict[str, torch.Tensor]] = {
        "transformer": {},
        "text_encoder": {},
        "text_encoder_2": {},
    }
    for (part, module), down in downs.items():
        up = ups.get((part, module))
        if up is None:
            raise FluxLoRAError(f"LoRA layer {module} has a down but no up matrix")
        if only is not None and only != ("transformer" if part == "bfl" else part):
            continue
        rank = down.shape[0]
        alpha = alphas.get((part, module))
        up = up * (alpha / rank) if alpha is not None else up
        if part == "bfl":
            targets = bfl[module]
            if module == "final_layer.adaLN_modulation.1":  # (shift, scale) -> (scale, shift)
                a, b = up.chunk(2, dim=0)
                up = torch.cat([b, a], dim=0)
            pieces = [up] if len(targets) == 1 else _split_rows(up, targets, inner_dim)
            for name, piece in zip(targets, pieces, strict=True):
                out["transformer"][f"transformer.{name}.lora_A.weight"] = down
                out["transformer"][f"transformer.{name}.lora_B.weight"] = piece.contiguous()
        else:
            out[part][f"{part}.{module}.lora_A.weight"] = down
            out[part][f"{part}.{module}.lora_B.weight"] = up
    return out


def _classify(key: str, bfl: dict[str, list[str]], bfl_u: dict[str, str]) -> tuple[str, str, str]:
    """(part, module, "down"/"up"/"alpha"/"skip") of one key; part "bfl" names a BFL module."""
    for suffix, found in (
        (".lora_A.weight", "down"),
        (".lora_B.weight", "up"),
        (".lora_down.weight", "down"),
        (".lora_up.weight", "up"),
        (".down.weight", "down"),
        (".up.weight", "up"),
        (".alpha", "alpha"),
    ):
        if key.endswith(suffix):
            stem, kind = key[: -len(suffix)], found
            break
    else:
        if key.endswith((".dora_scale", ".diff", ".diff_b")):
            raise FluxLoRAError(f"LoRA key {key!r}: DoRA/diff layers are not supported")
        raise FluxLoRAError(f"LoRA key {key!r} is not a LoRA matrix or alpha")
    if stem.startswith("transformer."):
        return "transformer", stem[len("transformer.") :], kind
    for prefix in ("diffusion_model.", "model.diffusion_model.", ""):
        if stem.startswith(prefix):
            rest = stem[len(prefix) :]
            for xl, name in _XLABS.items():
                rest = rest.replace(xl, name)
            if rest in bfl:
                return "bfl", rest, kind
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
