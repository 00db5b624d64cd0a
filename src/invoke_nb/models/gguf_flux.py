"""GGUF-quantized FLUX.1 transformers: the file's quantized blocks stay in memory as bytes and
each linear layer dequantizes its weight when it runs (InvokeAI's approach), so a Q8_0 model
holds about half the bytes of a bf16 one.

Reading uses the ``gguf`` package (the optional extra ``invoke-nb[gguf]``). Q8_0 and Q4_0 are
dequantized with torch (on the layer's device); other types go through ``gguf``'s numpy
dequantizer. Key names are BFL's; a fused layer's rows are split like the float weights
(quantization blocks run along a row, so rows split cleanly).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["dequantize", "linear_class", "load_gguf_transformer", "read_gguf"]

_FLOAT_TYPES = {0: "float32", 1: "float16", 30: "bfloat16"}  # GGMLQuantizationType F32, F16, BF16


def dequantize(raw: torch.Tensor, qtype: int, shape: tuple[int, int]) -> torch.Tensor:
    """Float32 weights of ``shape`` from quantized rows ``raw`` (uint8, one row per output)."""
    import torch

    if qtype == 8:  # Q8_0: per 32 values, a float16 scale then 32 int8
        blocks = raw.reshape(-1, 34)
        scale = blocks[:, :2].contiguous().view(torch.float16).float()
        q = blocks[:, 2:].contiguous().view(torch.int8).float()
        return (q * scale).reshape(shape)
    if qtype == 2:  # Q4_0: a float16 scale, 16 bytes of nibbles (low: first 16, high: last 16)
        blocks = raw.reshape(-1, 18)
        scale = blocks[:, :2].contiguous().view(torch.float16).float()
        nib = blocks[:, 2:]
        q = torch.cat([(nib & 0x0F), (nib >> 4)], dim=1).float() - 8.0
        return (q * scale).reshape(shape)
    import numpy as np
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize as np_dequantize

    out = np_dequantize(raw.cpu().numpy().astype(np.uint8), GGMLQuantizationType(qtype))
    return torch.from_numpy(np.ascontiguousarray(out)).reshape(shape).to(raw.device)


@functools.cache
def linear_class() -> type:
    """The GGUFLinear class (built on first use: torch is imported lazily). Its
    ``sidecars`` list holds ``(down, up, scale)`` LoRAs run beside the quantized weight
    (``up`` None: ``down`` is a full delta, for layer kinds that are not low-rank pairs)."""
    import torch
    import torch.nn.functional as F

    class GGUFLinear(torch.nn.Module):
        """A linear layer whose weight is kept quantized and dequantized per call."""

        def __init__(self, raw: torch.Tensor, qtype: int, out_f: int, in_f: int, bias: Any) -> None:
            super().__init__()
            self.register_buffer("raw", raw)
            self.qtype, self.in_features, self.out_features = qtype, in_f, out_f
            self.bias = torch.nn.Parameter(bias, requires_grad=False) if bias is not None else None
            self.sidecars: list[tuple[torch.Tensor, torch.Tensor | None, float]] = []  # LoRAs

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            w = dequantize(self.raw, self.qtype, (self.out_features, self.in_features))
            bias = self.bias.to(x.dtype) if self.bias is not None else None
            out = F.linear(x, w.to(x.dtype), bias)
            for down, up, scale in self.sidecars:  # LoRA beside the quantized weight
                h = F.linear(x, down.to(x))  # up None: ``down`` is a whole delta matrix
                out = out + (F.linear(h, up.to(x)) if up is not None else h) * scale
            return out

    return GGUFLinear


def read_gguf(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, tuple[int, tuple[int, ...]]]]:
    """Tensors of a GGUF file: floats as torch tensors, quantized ones as uint8 rows; and
    ``name -> (quant type, torch shape)`` for the quantized ones."""
    import numpy as np
    import torch
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    tensors: dict[str, torch.Tensor] = {}
    quant: dict[str, tuple[int, tuple[int, ...]]] = {}
    for t in reader.tensors:
        shape = tuple(int(d) for d in reversed(t.shape.tolist()))
        qtype = int(t.tensor_type)
        data = np.array(t.data)  # a copy: the reader's memory map closes with it
        if qtype in _FLOAT_TYPES:
            tensors[t.name] = torch.from_numpy(data).reshape(shape).float()
        else:
            tensors[t.name] = torch.from_numpy(data.astype(np.uint8)).reshape(shape[0], -1)
            quant[t.name] = (qtype, shape)
    return tensors, quant


def load_gguf_transformer(path: Path, dtype: torch.dtype) -> Any:
    """A diffusers FluxTransformer2DModel whose linear weights stay GGUF-quantized."""
    import torch
    from diffusers import FluxTransformer2DModel

    from invoke_nb.models.flux_keys import bfl_to_diffusers, flux_config_from_bfl

    tensors, quant = read_gguf(Path(path))
    shapes = {k: quant[k][1] if k in quant else tuple(v.shape) for k, v in tensors.items()}
    cfg = flux_config_from_bfl(shapes)
    cfg.pop("_class_name")
    # one conversion for the data, one for the per-row quant types (split the same way)
    converted = bfl_to_diffusers(tensors)
    kinds = bfl_to_diffusers(
        {k: torch.full((shapes[k][0],), quant[k][0] if k in quant else -1) for k in tensors}
    )
    with torch.device("meta"):
        model = FluxTransformer2DModel(**cfg)
    floats = {}
    linear_cls = linear_class()
    modules = dict(model.named_modules())
    for name, value in converted.items():
        qtype = int(kinds[name][0]) if name in kinds and kinds[name].numel() else -1
        if qtype < 0:
            floats[name] = value.to(dtype)
            continue
        mod_name = name.rsplit(".", 1)[0]
        lin = modules[mod_name]
        bias = converted.get(mod_name + ".bias")
        new = linear_cls(value, qtype, lin.out_features, lin.in_features,
                         bias.to(dtype) if bias is not None else None)  # fmt: skip
        parent, _, child = mod_name.rpartition(".")
        setattr(modules[parent] if parent else model, child, new)
    model.load_state_dict(
        {k: v for k, v in floats.items() if not _quantized_bias(k, converted, kinds)},
        strict=False,
        assign=True,
    )
    left = [n for n, p in model.named_parameters() if p.device.type == "meta"]
    if left:
        raise ValueError(f"GGUF file {Path(path).name} lacks tensors for {left[:3]}")
    return model.eval()


def _quantized_bias(name: str, converted: dict, kinds: dict) -> bool:
    """A bias whose weight was quantized is held by the GGUFLinear already."""
    if not name.endswith(".bias"):
        return False
    w = name[: -len(".bias")] + ".weight"
    return w in kinds and int(kinds[w][0]) >= 0
