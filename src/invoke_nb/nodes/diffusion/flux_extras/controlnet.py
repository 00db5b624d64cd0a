"""FLUX ControlNets (InstantX / diffusers layout): the node and the residuals per step.

``flux_controlnet`` bundles a control image, the model and its schedule. XLabs ControlNets
read the control image itself (in [-1, 1]) and their residuals cycle over the transformer's
double blocks. For InstantX ones ``flux_denoise`` encodes the control image with the FLUX VAE (resized to the output size, sampled with a
generator seeded 0 as InvokeAI's VAE encode does), and on each step within
``begin_step_percent``..``end_step_percent`` (InvokeAI's floor/ceil rule) runs the
ControlNet on the noisy latents; each ControlNet's block residuals, scaled by its weight
(a list gives one weight per step), are spread over the transformer's blocks and summed.
The negative (CFG) pass runs without them, as InvokeAI's does.
"""

from __future__ import annotations

import math
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, Literal

from invoke_nb.nodes.base import InputField, Node, Output, OutputField, UIHint, node, output
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.flux.fields import FluxControlNetField
from invoke_nb.nodes.types import ImageField, ModelIdentifierField

if TYPE_CHECKING:
    import torch

__all__ = ["ControlNets", "FluxControlNetNode", "FluxControlNetOutput", "vae_draws"]


@output("flux_controlnet_output")
class FluxControlNetOutput(Output):
    """FLUX ControlNet info"""

    control: FluxControlNetField = OutputField(description="ControlNet(s) to apply")


@node(
    "flux_controlnet",
    title="FLUX ControlNet",
    category="controlnet",
    tags=["controlnet", "flux"],
    version="1.0.0",
)
class FluxControlNetNode(Node):
    """Collect FLUX ControlNet info to pass to other nodes."""

    image: ImageField = InputField(description="The control image")
    control_model: ModelIdentifierField = InputField(
        description="ControlNet model to load",
        ui_hint=UIHint.MODEL,
        ui_model_base=["flux"],
        ui_model_type=["controlnet"],
    )
    control_weight: float | list[float] = InputField(
        default=1.0, ge=-1, le=2, description="The weight given to the ControlNet"
    )
    begin_step_percent: float = InputField(
        default=0, ge=0, le=1, description="When the ControlNet is first applied (% of total steps)"
    )
    end_step_percent: float = InputField(
        default=1, ge=0, le=1, description="When the ControlNet is last applied (% of total steps)"
    )
    resize_mode: Literal["just_resize", "crop_resize", "fill_resize", "just_resize_simple"] = (
        InputField(default="just_resize", description="The resize mode used")
    )
    instantx_control_mode: int | None = InputField(
        default=-1, description="The control mode for InstantX ControlNet union models."
    )

    def invoke(self, ctx: Context) -> FluxControlNetOutput:
        if self.begin_step_percent > self.end_step_percent:
            raise ValueError(
                f"node {ctx.node_id!r} field 'begin_step_percent': "
                f"{self.begin_step_percent} is after end_step_percent {self.end_step_percent}"
            )
        return FluxControlNetOutput(
            control=FluxControlNetField(
                image=self.image,
                control_model=self.control_model,
                control_weight=self.control_weight,
                begin_step_percent=self.begin_step_percent,
                end_step_percent=self.end_step_percent,
                resize_mode=self.resize_mode,
                instantx_control_mode=self.instantx_control_mode,
            )
        )


def _weight(field: Any, step: int, total: int) -> float:
    first = math.floor(field.begin_step_percent * total)
    last = math.ceil(field.end_step_percent * total)
    if step < first or step > last:
        return 0.0
    w = field.control_weight
    return float(w[step]) if isinstance(w, list) else float(w)


class ControlNets:
    """The loaded ControlNets of one ``flux_denoise`` run and their encoded control images."""

    def __init__(self, den: Any, ctx: Context, stack: ExitStack, device: str) -> None:
        import numpy as np
        import torch
        from PIL import Image

        from invoke_nb.nodes.diffusion.flux import sampling
        from invoke_nb.nodes.diffusion.flux.text_vae import vae_encode

        fields = den.control if isinstance(den.control, list) else [den.control]
        self.items: list[tuple[Any, Any, torch.Tensor, torch.Tensor | None]] = []
        models = []
        for f in fields:
            rec = ctx.models.record(f.control_model)
            if rec.base != "flux" or rec.type != "controlnet":
                raise ValueError(
                    f"node {ctx.node_id!r} field 'control': {rec.name!r} is {rec.base}/"
                    f"{rec.type}, not a FLUX ControlNet"
                )
            models.append(stack.enter_context(ctx.models.load(f.control_model)))
        with ctx.models.load(den.controlnet_vae.vae) as vae:
            conds = []
            for f, model in zip(fields, models, strict=True):
                pil = ctx.images.get_pil(f.image, mode="RGB")
                if pil.size != (den.width, den.height):
                    pil = pil.resize((den.width, den.height), Image.Resampling.LANCZOS)
                if model.input_hint_block is not None:  # XLabs: the image itself, in [-1, 1]
                    arr = np.asarray(pil, dtype=np.float32) / 127.5 - 1.0
                    conds.append(torch.from_numpy(arr).permute(2, 0, 1)[None])
                else:  # InstantX: packed VAE latents
                    conds.append(sampling.pack(vae_encode(vae, pil, device)))
        for f, cond, model in zip(fields, conds, models, strict=True):
            mode = f.instantx_control_mode
            mode_t = None
            if mode is not None and mode >= 0 and model.config.num_mode:
                mode_t = torch.tensor([[mode]], dtype=torch.long, device=device)
            self.items.append((f, model, cond.to(device), mode_t))

    def __call__(
        self,
        x: torch.Tensor,
        t: float,
        step: int,
        total: int,
        cond: Any,
        ids: torch.Tensor,
        guidance: float,
        n_double: int,
        n_single: int,
    ) -> dict[str, Any]:
        """Transformer keyword arguments with the summed residuals (empty when none apply)."""
        import torch

        doubles: list[torch.Tensor] | None = None
        singles: list[torch.Tensor] | None = None
        for field, model, image, mode in self.items:
            w = _weight(field, step, total)
            if abs(w) < 1e-6:
                continue
            dtype = next(model.parameters()).dtype
            t5 = cond.t5_embeds.to(x.device, dtype)
            g = (
                torch.full((x.shape[0],), guidance, device=x.device, dtype=dtype)
                if model.config.guidance_embeds
                else None
            )
            block, single = model(
                hidden_states=x.to(dtype),
                controlnet_cond=image.to(dtype),
                controlnet_mode=mode,
                conditioning_scale=w,
                encoder_hidden_states=t5,
                pooled_projections=cond.clip_embeds.to(x.device, dtype),
                timestep=torch.full((x.shape[0],), t, device=x.device, dtype=dtype),
                img_ids=ids.to(dtype),
                txt_ids=torch.zeros(t5.shape[1], 3, device=x.device, dtype=dtype),
                guidance=g,
                return_dict=False,
            )
            repeat = model.input_hint_block is not None  # XLabs cycles its few blocks
            doubles = _add(doubles, _spread(block, n_double, repeat))
            singles = _add(singles, _spread(single, n_single, repeat))
        out: dict[str, Any] = {}
        if doubles is not None:
            out["controlnet_block_samples"] = doubles
        if singles is not None:
            out["controlnet_single_block_samples"] = singles
        return out


def _spread(samples: Any, blocks: int, repeat: bool = False) -> list[torch.Tensor] | None:
    """One residual per transformer block: InstantX's each cover ceil(n/k) consecutive
    blocks; XLabs' repeat in turn (block i gets residual i mod k)."""
    if not samples:
        return None
    if repeat:
        return [samples[i % len(samples)] for i in range(blocks)]
    every = math.ceil(blocks / len(samples))
    return [samples[i // every] for i in range(blocks)]


def vae_draws(ctx: Context, fields: list[Any]) -> int:
    """How many control images diffusers' pipeline VAE-encodes (InstantX layouts) before it
    draws the noise, for ``seeding="diffusers"``."""
    import json
    from pathlib import Path

    n = 0
    for f in fields:
        rec = ctx.models.record(f.control_model)
        path = Path(rec.path)
        if path.is_dir():
            cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
            n += cfg.get("conditioning_embedding_channels") is None
        else:
            from invoke_nb.models.probe import read_safetensors_header

            shapes, _ = read_safetensors_header(path)
            n += not any(k.startswith("input_hint_block.") for k in shapes)
    return n


def _add(acc: list[torch.Tensor] | None, new: list[torch.Tensor] | None) -> Any:
    if new is None:
        return acc
    if acc is None:
        return list(new)
    return [a + b for a, b in zip(acc, new, strict=True)]
