"""bitsandbytes-quantized checkpoints as InvokeAI writes them: NF4 FLUX transformers and
LLM.int8 T5 encoders (the optional extra ``invoke-nb[bnb]``).

File layouts (read off InvokeAI 6.11's loaders, which save bitsandbytes' own modules):
- NF4 (format ``bnb_quantized_nf4b``): a BFL-layout single file; each linear layer's
  ``<layer>.weight`` holds the packed 4-bit codes (two per byte, row-major) and its quant
  state sits beside it as ``<layer>.weight.absmax``, ``.quant_map`` and
  ``.quant_state.bitsandbytes__nf4`` (a JSON blob: shape, blocksize, dtype), plus
  ``.nested_absmax``/``.nested_quant_map`` when the block scales are themselves quantized
  ("double quantization"). Biases and norm scales are plain floats.
- LLM.int8 (format ``bnb_quantized_int8b``): ``text_encoder_2/bnb_llm_int8_model.safetensors``
  in a T5 folder; each linear layer's ``weight`` is int8 with its per-row scale in ``SCB``
  (and ``weight_format`` 0); ``shared.weight`` is the embedding (tied to
  ``encoder.embed_tokens``).

Our layers keep the quantized bytes and compute with bitsandbytes' kernels, which run on the
CPU too (bitsandbytes >= 0.48): NF4 weights are dequantized per call (one layer at a time,
like GGUF), int8 layers run ``bitsandbytes.matmul`` in eval mode: LLM.int8 proper (activations
quantized to int8 per row, columns above the outlier threshold 6 kept in float, the int8
product through ``torch._int_mm`` on AVX-512 CPUs), as InvokeAI runs it on CUDA.
Our diffusers FLUX transformer splits BFL's fused layers (``qkv``, ``linear1``) by rows:
4-bit rows split cleanly when a row is a whole number of quantization blocks; a layer where
they do not is dequantized to float once at load (never the case in real FLUX files).
Nested block scales are expanded to float32 at load (0.5 bit per weight instead of ~0.13).
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = [
    "bitsandbytes",
    "int8_linear_class",
    "load_int8_t5",
    "load_nf4_transformer",
    "nf4_linear_class",
]

_NF4_TAG = ".weight.quant_state.bitsandbytes__"
INT8_FILE = "bnb_llm_int8_model.safetensors"


@functools.cache
def bitsandbytes() -> Any:
    """The ``bitsandbytes`` module (its hub kernel fetch at import is refused by
    :mod:`invoke_nb.models.offline_kernels`), or an ImportError naming the extra."""
    try:
        import bitsandbytes as bnb
    except ImportError as e:
        raise ImportError(
            "bitsandbytes-quantized models need the 'bitsandbytes' package "
            "(pip install 'invoke-nb[bnb]' torch==<your torch>)"
        ) from e
    # LLM.int8 quantizes activations from float16 by design; bitsandbytes says so on every
    # layer call when they come in another dtype (the result keeps the input's dtype)
    logging.getLogger("bitsandbytes.autograd._functions").addFilter(
        lambda record: "will be cast from" not in record.getMessage()
    )
    return bnb


@functools.cache
def nf4_linear_class() -> type:
    """The NF4Linear class (built on first use: torch is imported lazily). Like GGUFLinear,
    its ``sidecars`` list holds ``(down, up, scale)`` LoRAs run beside the quantized weight."""
    import torch
    import torch.nn.functional as F

    bitsandbytes()  # registers torch.ops.bitsandbytes

    class NF4Linear(torch.nn.Module):
        """A linear layer whose 4-bit weight is dequantized by bitsandbytes on each call."""

        def __init__(self, packed: Any, absmax: Any, spec: dict[str, Any], bias: Any) -> None:
            super().__init__()
            self.register_buffer("packed", packed)  # uint8, two codes a byte
            self.register_buffer("absmax", absmax)  # float32, one scale per block
            self.out_features, self.in_features = spec["shape"]
            self.blocksize, self.quant_type = spec["blocksize"], spec["quant_type"]
            self.bias = torch.nn.Parameter(bias, requires_grad=False) if bias is not None else None
            self.sidecars: list[tuple[torch.Tensor, torch.Tensor | None, float]] = []

        def weight_float(self, dtype: torch.dtype) -> torch.Tensor:
            """The dequantized weight (bitsandbytes computes in fp32/bf16/fp16)."""
            if dtype not in (torch.float32, torch.bfloat16, torch.float16):
                dtype = torch.float32
            return torch.ops.bitsandbytes.dequantize_4bit(
                self.packed,
                self.absmax.float(),  # a model-wide .to(bf16) must not round the scales
                self.blocksize,
                self.quant_type,
                [self.out_features, self.in_features],
                dtype,
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            w = self.weight_float(x.dtype).to(x.dtype)
            bias = self.bias.to(x.dtype) if self.bias is not None else None
            out = F.linear(x, w, bias)
            for down, up, scale in self.sidecars:  # up None: ``down`` is a whole delta matrix
                h = F.linear(x, down.to(x))
                out = out + (F.linear(h, up.to(x)) if up is not None else h) * scale
            return out

    return NF4Linear


@functools.cache
def int8_linear_class() -> type:
    """The Int8Linear class: bitsandbytes' LLM.int8 matmul on int8 rows and their scales."""
    import torch

    bnb = bitsandbytes()

    class Int8Linear(torch.nn.Module):
        """A linear layer of int8 weights with per-row scales (``SCB``). The int8 tensor is
        named ``weight`` as in bitsandbytes' layer: transformers' T5 reads ``wo.weight.dtype``
        and leaves int8 layers' inputs in the compute dtype."""

        def __init__(self, weight: Any, scb: Any, bias: Any, threshold: float = 6.0) -> None:
            super().__init__()
            self.register_buffer("weight", weight)
            self.register_buffer("SCB", scb)
            self.out_features, self.in_features = weight.shape
            self.threshold = threshold
            self.bias = torch.nn.Parameter(bias, requires_grad=False) if bias is not None else None

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            # a fresh state per call: nothing of a previous device or input sticks to the layer
            state = bnb.MatmulLtState()
            state.threshold, state.has_fp16_weights = self.threshold, False
            state.is_training = self.training  # eval: the int8 matmul (train: dequantize)
            state.CB, state.SCB = self.weight, self.SCB.float()
            bias = self.bias.to(x.dtype) if self.bias is not None else None
            return bnb.matmul(x, self.weight, bias=bias, state=state)

    return Int8Linear


def _nf4_layers(sd: dict[str, torch.Tensor]) -> dict[str, dict[str, Any]]:
    """BFL layer name -> its packed codes, float32 block scales and spec, from the quant
    state that bitsandbytes serialised beside each 4-bit weight."""
    import torch

    F = bitsandbytes().functional
    out: dict[str, dict[str, Any]] = {}
    for key in [k for k in sd if _NF4_TAG in k]:
        layer = key.split(_NF4_TAG)[0]
        prefix = layer + ".weight."
        qs = F.QuantState.from_dict(
            {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}, device="cpu"
        )
        absmax = qs.absmax
        if qs.nested:  # double quantization: expand the block scales once
            absmax = F.dequantize_blockwise(qs.absmax, qs.state2) + qs.offset
        packed = sd[layer + ".weight"].contiguous().view(torch.uint8).flatten()
        rows, cols = (int(d) for d in qs.shape)
        if packed.numel() * 2 < rows * cols or absmax.numel() * qs.blocksize < rows * cols:
            raise ValueError(f"{layer}: quantized data is shorter than its shape {rows}x{cols}")
        spec = {"shape": (rows, cols), "blocksize": int(qs.blocksize), "quant_type": qs.quant_type}
        out[layer] = {"packed": packed, "absmax": absmax.float().flatten(), "spec": spec}
    return out


def _rows_of(layer: dict[str, Any], rows: torch.Tensor) -> tuple[Any, Any] | None:
    """(packed, absmax) of the given rows, or None when a row run does not start and end
    on a quantization block."""
    import torch

    cols, block = layer["spec"]["shape"][1], layer["spec"]["blocksize"]
    idx = rows.tolist()
    runs, start = [], idx[0]
    for a, b in zip(idx, [*idx[1:], None], strict=True):
        if b != a + 1:
            runs.append((start, a + 1))
            start = b
    packed, absmax = [], []
    for a, b in runs:
        if (a * cols) % block or (b * cols) % block:
            return None
        packed.append(layer["packed"][a * cols // 2 : b * cols // 2])
        absmax.append(layer["absmax"][a * cols // block : b * cols // block])
    return torch.cat(packed).clone(), torch.cat(absmax).clone()


def _dequantized(layer: dict[str, Any]) -> torch.Tensor:
    import torch

    spec = layer["spec"]
    return torch.ops.bitsandbytes.dequantize_4bit(
        layer["packed"], layer["absmax"], spec["blocksize"], spec["quant_type"],
        list(spec["shape"]), torch.float32,
    )  # fmt: skip


def load_nf4_transformer(path: Path, dtype: torch.dtype) -> Any:
    """A diffusers FluxTransformer2DModel whose linear layers stay NF4-quantized."""
    import torch
    from diffusers import FluxTransformer2DModel
    from safetensors.torch import load_file

    from invoke_nb.models.flux_keys import (
        bfl_to_diffusers,
        flux_config_from_bfl,
        module_map,
        strip_bfl_prefix,
    )

    sd = strip_bfl_prefix(load_file(str(path)))
    quant = _nf4_layers(sd)
    if not quant:
        raise ValueError(f"{Path(path).name} has no bitsandbytes 4-bit quant states")
    owned = {k for k in sd for q in quant if k == q + ".weight" or k.startswith(q + ".weight.")}
    floats = {k: v for k, v in sd.items() if k not in owned}
    # quantized weights travel through the key conversion as row numbers: the converter
    # splits and reorders rows exactly as it would split and reorder the float weight
    rows = {q + ".weight": torch.arange(layer["spec"]["shape"][0]) for q, layer in quant.items()}
    shapes = {k: tuple(v.shape) for k, v in floats.items()}
    shapes.update({q + ".weight": layer["spec"]["shape"] for q, layer in quant.items()})
    cfg = flux_config_from_bfl(shapes)
    cfg.pop("_class_name")
    converted = bfl_to_diffusers({**floats, **rows})
    targets = module_map(cfg["num_layers"], cfg["num_single_layers"])
    quant_targets = {t: q for q in quant for t in targets.get(q, [])}
    with torch.device("meta"):
        model = FluxTransformer2DModel(**cfg)
    modules = dict(model.named_modules())
    nf4_linear = nf4_linear_class()
    plain: dict[str, torch.Tensor] = {}
    for name, value in converted.items():
        mod_name = name.rsplit(".", 1)[0]
        source = quant_targets.get(mod_name)
        if source is None:
            plain[name] = value.to(dtype)
            continue
        if not name.endswith(".weight"):
            continue  # the bias goes with its layer below
        layer, bias = quant[source], converted.get(mod_name + ".bias")
        bias = bias.to(dtype) if bias is not None else None
        sliced = _rows_of(layer, value)
        if sliced is None:  # rows straddle quantization blocks: float from here on
            plain[name] = _dequantized(layer)[value].to(dtype)
            if bias is not None:
                plain[mod_name + ".bias"] = bias
            continue
        lin = modules[mod_name]
        spec = {**layer["spec"], "shape": (lin.out_features, lin.in_features)}
        if value.numel() != lin.out_features:
            raise ValueError(f"{source}: {value.numel()} rows for {mod_name}'s {lin.out_features}")
        parent, _, child = mod_name.rpartition(".")
        setattr(modules[parent] if parent else model, child, nf4_linear(*sliced, spec, bias))
    model.load_state_dict(plain, strict=False, assign=True)
    left = [n for n, p in model.named_parameters() if p.device.type == "meta"]
    if left:
        raise ValueError(f"{Path(path).name} lacks tensors for {left[:3]}")
    return model.eval()


def load_int8_t5(folder: Path, dtype: torch.dtype) -> Any:
    """transformers' T5EncoderModel from ``folder`` (config.json + the LLM.int8 weights),
    every linear layer an Int8Linear."""
    import torch
    from safetensors.torch import load_file
    from transformers import T5Config, T5EncoderModel

    folder = Path(folder)
    files = sorted(folder.glob("*llm_int8*.safetensors"))
    if not files:
        raise ValueError(f"{folder}: no '*llm_int8*.safetensors' weights file")
    sd: dict[str, torch.Tensor] = {}
    for f in files:
        sd.update(load_file(str(f)))
    cfg = T5Config.from_dict(json.loads((folder / "config.json").read_text(encoding="utf-8")))
    with torch.device("meta"):
        model = T5EncoderModel(cfg)
    int8_linear = int8_linear_class()
    for name, mod in list(model.named_modules()):
        if not isinstance(mod, torch.nn.Linear):
            continue
        weight, scb = sd.pop(name + ".weight", None), sd.pop(name + ".SCB", None)
        sd.pop(name + ".weight_format", None)
        if weight is None or scb is None:
            raise ValueError(f"{folder.name}: layer {name} lacks its int8 weight or SCB scales")
        if weight.dtype != torch.int8 or tuple(weight.shape) != (mod.out_features, mod.in_features):
            raise ValueError(f"{folder.name}: {name}.weight is not int8 of the layer's shape")
        bias = sd.pop(name + ".bias", None)
        parent, _, child = name.rpartition(".")
        new = int8_linear(weight, scb.float(), bias.to(dtype) if bias is not None else None)
        setattr(model.get_submodule(parent) if parent else model, child, new)
    plain = {k: v.to(dtype) for k, v in sd.items() if not k.endswith("weight_format")}
    if "shared.weight" in plain:  # the embedding is stored once
        plain.setdefault("encoder.embed_tokens.weight", plain["shared.weight"])
    _, unexpected = model.load_state_dict(plain, strict=False, assign=True)
    if unexpected:
        raise ValueError(f"{folder.name}: unexpected tensors {unexpected[:3]}")
    model.encoder.embed_tokens = model.shared  # tied, as transformers ties them
    left = [n for n, p in model.named_parameters() if p.device.type == "meta"]
    if left:
        raise ValueError(f"{folder.name} lacks tensors for {left[:3]}")
    return model.eval()
