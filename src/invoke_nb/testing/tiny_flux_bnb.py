"""Tiny bitsandbytes-quantized FLUX parts in InvokeAI's layouts, made with bitsandbytes itself
(the optional extra ``invoke-nb[bnb]``): an NF4 transformer file and an LLM.int8 T5 folder.

- :func:`make_flux_nf4`: every 2-D weight of a BFL-layout transformer quantized with
  ``bitsandbytes.functional.quantize_4bit`` (NF4, blocks of 64) and saved as bitsandbytes'
  ``Linear4bit`` saves it: the packed codes under ``<layer>.weight`` and the quant state's
  packed dict beside it (``absmax``, ``quant_map``, ``quant_state.bitsandbytes__nf4``; with
  ``nested=True`` also ``nested_absmax``/``nested_quant_map``).
- :func:`make_flux_t5_int8`: a T5 folder whose ``text_encoder_2/bnb_llm_int8_model.safetensors``
  holds each linear layer as ``Linear8bitLt`` saves it (int8 ``weight``, ``SCB``,
  ``weight_format``) and the embedding once as ``shared.weight``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

__all__ = ["make_flux_nf4", "make_flux_t5_int8"]


def make_flux_nf4(dest: Path, bfl_file: Path, *, nested: bool = False) -> Path:
    """The BFL single-file transformer ``bfl_file`` with its linear weights in NF4."""
    from safetensors.torch import load_file, save_file

    from invoke_nb.models.bnb_quant import bitsandbytes

    F = bitsandbytes().functional
    out: dict[str, torch.Tensor] = {}
    for name, t in load_file(str(bfl_file)).items():
        if t.ndim != 2:
            out[name] = t
            continue
        packed, state = F.quantize_4bit(
            t.float().contiguous(), blocksize=64, compress_statistics=nested, quant_type="nf4"
        )
        out[name] = packed
        for k, v in state.as_dict(packed=True).items():
            out[f"{name}.{k}"] = v
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_file(out, str(dest), metadata={"format": "pt"})
    return dest


def make_flux_t5_int8(dest: Path, t5_folder: Path) -> Path:
    """InvokeAI's ``bnb_quantized_int8b`` T5 folder made from the float T5 folder ``t5_folder``."""
    from safetensors.torch import save_file
    from transformers import T5EncoderModel

    from invoke_nb.models.bnb_quant import INT8_FILE, bitsandbytes

    F = bitsandbytes().functional
    src = Path(t5_folder)
    model = T5EncoderModel.from_pretrained(src / "text_encoder_2", local_files_only=True)
    linears = {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    sd: dict[str, torch.Tensor] = {}
    for name, t in model.state_dict().items():
        layer = name.rsplit(".", 1)[0]
        if name == "encoder.embed_tokens.weight":
            continue  # tied to shared.weight, stored once
        if layer in linears and name.endswith(".weight"):
            cb, scb, _ = F.int8_vectorwise_quant(t.half())
            sd[name], sd[layer + ".SCB"] = cb.contiguous(), scb.float()
            sd[layer + ".weight_format"] = torch.tensor(0, dtype=torch.uint8)
        else:
            sd[name] = t.contiguous()
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "text_encoder_2").mkdir(parents=True)
    shutil.copy(src / "text_encoder_2" / "config.json", dest / "text_encoder_2" / "config.json")
    save_file(sd, str(dest / "text_encoder_2" / INT8_FILE), metadata={"format": "pt"})
    shutil.copytree(src / "tokenizer_2", dest / "tokenizer_2")
    return dest
