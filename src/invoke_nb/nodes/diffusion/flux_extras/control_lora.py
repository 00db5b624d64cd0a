"""FLUX control LoRAs (BFL's Canny/Depth LoRAs): the loader node and how they run.

The node bundles the LoRA, its control image and weight into InvokeAI's ``ControlLoRAField``.
``flux_denoise`` runs it as InvokeAI does: the control image, resized to the output and
VAE-encoded, is packed beside the noise tokens (64 + 64 channels); the transformer's input
layer ``img_in`` (diffusers' ``x_embedder``) is widened to 128 inputs, its new columns
starting at zero, and the LoRA adds ``weight * up @ down`` (and its bias delta) to it. The
other layers of the file are LoRA layers with bias deltas, and ``*.scale`` tensors that
replace RMS-norm scales outright (whatever the weight, as BFL's and InvokeAI's code do).

Why the input layer is swapped, not resized in place: the cached model is shared by
every run (and may be partly loaded, its weights streaming from CPU copies), so for the
node's duration ``x_embedder`` becomes a small module computing
``base(x[..., :64]) + x @ delta.T + bias_delta``, which equals the widened layer; every other
change is made in place on the weights and every original is put back on exit. On a
quantized transformer (GGUF, NF4) the quantized layers keep their bytes: their LoRA runs
beside them as a ``(down, up)`` sidecar, biases and norm scales (floats there too) are
patched in place, and the widened input wraps the quantized ``img_in`` the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from invoke_nb.nodes.base import InputField, Node, Output, OutputField, UIHint, node, output
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.flux.fields import ControlLoRAField
from invoke_nb.nodes.diffusion.sd.model_loaders import check_model
from invoke_nb.nodes.types import ImageField, ModelIdentifierField

if TYPE_CHECKING:
    import torch

__all__ = [
    "FluxControlLoRALoaderNode",
    "FluxControlLoRALoaderOutput",
    "control_image_conditioning",
    "control_lora_applied",
]


@output("flux_control_lora_loader_output")
class FluxControlLoRALoaderOutput(Output):
    """Flux Control LoRA Loader Output"""

    control_lora: ControlLoRAField = OutputField(
        title="Flux Control LoRA", description="Control LoRAs to apply on model loading"
    )


@node(
    "flux_control_lora_loader",
    title="Control LoRA - FLUX",
    category="model",
    tags=["lora", "model", "flux"],
    version="1.1.1",
)
class FluxControlLoRALoaderNode(Node):
    """LoRA model and Image to use with FLUX transformer generation."""

    lora: ModelIdentifierField = InputField(
        description="Control LoRA model to load",
        title="Control LoRA",
        ui_hint=UIHint.MODEL,
        ui_model_base=["flux"],
        ui_model_type=["control_lora"],
    )
    image: ImageField = InputField(description="The image to encode.")
    weight: float = InputField(default=1.0, description="The weight of the LoRA.")

    def invoke(self, ctx: Context) -> FluxControlLoRALoaderOutput:
        lora = check_model(ctx, self.lora, "control LoRA")
        if lora.type != "control_lora":
            raise ValueError(
                f"node {ctx.node_id!r} field 'lora': {lora.name!r} is a {lora.base} "
                f"{lora.type} model, not a FLUX control LoRA"
            )
        return FluxControlLoRALoaderOutput(
            control_lora=ControlLoRAField(lora=lora, img=self.image, weight=self.weight)
        )


def control_image_conditioning(den: Any, ctx: Context, device: str) -> torch.Tensor:
    """Packed (1, tokens, 64) latents of the control image, resized (bicubic) to the output."""
    from PIL import Image

    from invoke_nb.nodes.diffusion.flux import sampling
    from invoke_nb.nodes.diffusion.flux.text_vae import vae_encode

    image = ctx.images.get_pil(den.control_lora.img, mode="RGB")
    if image.size != (den.width, den.height):
        image = image.resize((den.width, den.height), Image.Resampling.BICUBIC)
    with ctx.models.load(den.controlnet_vae.vae) as vae:
        latents = vae_encode(vae, image, device)
    return sampling.pack(latents)


def _widened(base: Any, delta: torch.Tensor, bias: torch.Tensor | None) -> Any:
    """``base`` (a Linear) as if widened to ``delta``'s inputs and patched by ``delta``."""
    import torch

    class WidenedInput(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.base = base
            self.register_buffer("delta", delta, persistent=False)
            self.register_buffer("bias_delta", bias, persistent=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.base(x[..., : base.in_features])
            extra = torch.nn.functional.linear(x.to(self.delta.dtype), self.delta, self.bias_delta)
            return out + extra.to(out.dtype)

    return WidenedInput()


def _layers(sd: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """BFL module name -> its tensors (``lora_A.weight``, ``lora_B.weight``, ``lora_B.bias``,
    ``scale``)."""
    out: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in sd.items():
        for suffix in ("lora_A.weight", "lora_B.weight", "lora_B.bias", "scale"):
            if key.endswith("." + suffix):
                module = key[: -len(suffix) - 1]
                name = suffix
                if suffix == "scale":  # a norm scale: the module is the norm itself
                    module, name = key, "scale"
                out.setdefault(module, {})[name] = value
                break
        else:
            raise ValueError(f"control LoRA key {key!r} is not a LoRA matrix, bias or scale")
    return out


Change = tuple[Any, str, Any, str]  # (module, param, value, how: add / replace / sidecar)


def _plan(
    model: Any, sd: dict[str, torch.Tensor], weight: float
) -> tuple[tuple[torch.Tensor, torch.Tensor | None], list[Change]]:
    """(img_in delta and bias delta, [(module, param, value, how)]) for the other layers;
    raises before anything changes when a layer is missing or malformed. A quantized layer
    (GGUF, NF4: it has ``sidecars``) gets its LoRA as a ``(down, up)`` pair run beside it;
    a float layer gets ``up @ down`` added to its weight."""
    from invoke_nb.models.flux_keys import _norm_map, _split_sizes, _swap_halves, module_map

    n_double, n_single = len(model.transformer_blocks), len(model.single_transformer_blocks)
    bfl, norms = module_map(n_double, n_single), _norm_map(n_double, n_single)
    inner = model.config.num_attention_heads * model.config.attention_head_dim
    modules = dict(model.named_modules())
    img_in: tuple[torch.Tensor, torch.Tensor | None] | None = None
    changes: list[Change] = []
    for name, t in _layers(sd).items():
        if "scale" in t:
            target = norms.get(name)
            if target is None:
                raise ValueError(f"control LoRA: {name!r} names no FLUX norm scale")
            mod_name, _, param = target.rpartition(".")
            changes.append((modules[mod_name], param, t["scale"].float(), "replace"))
            continue
        if "lora_A.weight" not in t or "lora_B.weight" not in t:
            raise ValueError(f"control LoRA layer {name!r} lacks its lora_A/lora_B matrices")
        down, up = t["lora_A.weight"].float(), t["lora_B.weight"].float() * weight
        if down.shape[0] != up.shape[1]:
            raise ValueError(f"control LoRA layer {name!r}: lora_A and lora_B ranks differ")
        bias = t["lora_B.bias"].float() * weight if "lora_B.bias" in t else None
        if name == "img_in":
            img_in = (up @ down, bias)
            continue
        targets = bfl.get(name)
        if targets is None:
            raise ValueError(f"control LoRA: {name!r} names no FLUX transformer layer")
        if name == "final_layer.adaLN_modulation.1":  # BFL (shift, scale) -> (scale, shift)
            up = _swap_halves(up)
            bias = _swap_halves(bias) if bias is not None else None
        sizes = _split_sizes(up.shape[0], len(targets), inner)
        if len(targets) > 1 and (sum(sizes) != up.shape[0] or min(sizes) <= 0):
            raise ValueError(
                f"control LoRA layer {name!r} has {up.shape[0]} rows; this transformer's "
                f"{len(targets)} fused layers of width {inner} do not split them"
            )
        ups = up.split(sizes) if len(targets) > 1 else [up]
        bias_pieces = (
            (bias.split(sizes) if len(targets) > 1 else [bias]) if bias is not None else []
        )
        for i, target in enumerate(targets):
            mod = modules.get(target)
            if mod is None:
                raise ValueError(f"control LoRA: the model lacks {target!r} ({name})")
            if hasattr(mod, "sidecars"):
                if ups[i].shape[0] != mod.out_features or down.shape[1] != mod.in_features:
                    raise ValueError(
                        f"control LoRA layer {name!r} is {ups[i].shape[0]} x {down.shape[1]}; "
                        f"the model's {target} is {mod.out_features} x {mod.in_features}"
                    )
                changes.append((mod, "weight", (down, ups[i].contiguous()), "sidecar"))
            else:
                changes.append((mod, "weight", ups[i] @ down, "add"))
            if bias_pieces and getattr(mod, "bias", None) is None:
                raise ValueError(f"control LoRA changes the bias of {target!r}, which has none")
            if bias_pieces:
                changes.append((mod, "bias", bias_pieces[i], "add"))
    if img_in is None:
        raise ValueError("control LoRA has no img_in layer (not a FLUX control LoRA)")
    return img_in, changes


@contextmanager
def control_lora_applied(
    model: Any, sd: dict[str, torch.Tensor], weight: float, device: str
) -> Iterator[Any]:
    """``model`` with the control LoRA ``sd`` applied at ``weight``; restored exactly on exit."""
    import torch

    from invoke_nb.nodes.diffusion.lora import _patch_target

    (delta, bias), changes = _plan(model, sd, weight)
    base = model.x_embedder
    if delta.shape[0] != base.out_features or delta.shape[1] < base.in_features:
        raise ValueError(
            f"control LoRA img_in is {tuple(delta.shape)}; the transformer's input layer is "
            f"{base.out_features} x {base.in_features}"
        )
    saved: list[tuple[torch.Tensor, torch.Tensor]] = []
    sidecars: list[tuple[Any, Any]] = []
    try:
        with torch.inference_mode():
            for mod, param, value, how in changes:
                if how == "sidecar":  # quantized weights: the LoRA runs beside them
                    entry = (value[0], value[1], 1.0)
                    mod.sidecars.append(entry)
                    sidecars.append((mod, entry))
                    continue
                target = _patch_target(mod, param)
                if value.shape != target.shape:  # what is changed so far is put back below
                    raise ValueError(
                        f"control LoRA layer for {param} of a {type(mod).__name__} is "
                        f"{tuple(value.shape)}; the model's is {tuple(target.shape)}"
                    )
                saved.append((target, target.detach().to("cpu", copy=True)))
                value = value.to(target.device, target.dtype)
                target.copy_(value) if how == "replace" else target.add_(value)
        model.x_embedder = _widened(
            base, delta.to(device), bias.to(device) if bias is not None else None
        )
        yield model
    finally:
        model.x_embedder = base
        for mod, entry in sidecars:
            mod.sidecars.remove(entry)
        with torch.inference_mode():
            for target, original in reversed(saved):
                target.copy_(original)
