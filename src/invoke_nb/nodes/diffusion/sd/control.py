"""ControlNets, T2I-Adapters and IP-Adapters inside ``denoise_latents``, as InvokeAI runs them.

Each kind becomes extra UNet keyword arguments per step (:meth:`Controls.unet_kwargs`):

- ControlNet: ``down_block_additional_residuals`` / ``mid_block_additional_residual``,
  summed over the ControlNets active at the step (step window ``floor(begin * n)`` to
  ``ceil(end * n)``, InvokeAI's rule). "more_prompt"/"more_control" scale the residuals
  per layer (diffusers' guess mode); "more_control"/"unbalanced" run the ControlNet on the
  positive half only and give the negative half zeros.
- T2I-Adapter: the adapter runs once on the image; each step adds ``weight * features``
  (``down_intrablock_additional_residuals``).
- IP-Adapter: diffusers' IP-Adapter attention processors and image projections are set on
  the cached UNet for the run (:func:`ip_adapters_on`) and removed afterwards; each step
  sets every processor's per-adapter scale (weight inside the window and the adapter's
  target blocks, else 0).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from invoke_nb.nodes.control.fields import ControlField, IPAdapterField, T2IAdapterField
from invoke_nb.nodes.control.resize import prepare_control_image
from invoke_nb.nodes.diffusion.fields import LATENT_SCALE_FACTOR

__all__ = ["Controls", "as_list", "build_controls", "step_active"]


class ControlInputError(ValueError):
    """A control input does not fit the UNet it is applied to."""


def as_list(value: Any) -> list[Any]:
    """A single field or a list of them (or nothing) as a list."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def step_active(step: int, total: int, begin: float, end: float) -> bool:
    """InvokeAI's step window: from ``floor(begin * total)`` to ``ceil(end * total)``."""
    return math.floor(begin * total) <= step <= math.ceil(end * total)


def _weight_at(weight: float | list[float], step: int) -> float:
    if not isinstance(weight, list):
        return weight
    if step >= len(weight):
        raise ControlInputError(
            f"a weight list has {len(weight)} values but the run has more steps "
            f"(step {step + 1}); give one weight per step"
        )
    return weight[step]


@dataclass
class _ControlNet:
    model: Any
    image: torch.Tensor  # (1, 3, H, W) in [0, 1], model dtype, on the device
    weight: float | list[float]
    begin: float
    end: float
    mode: str


@dataclass
class _Adapter:
    features: list[torch.Tensor]
    weight: float | list[float]
    begin: float
    end: float


@dataclass
class _IPAdapter:
    embeds: torch.Tensor  # (2, n_images, ...): negative then positive
    weight: float | list[float]
    begin: float
    end: float
    target_blocks: list[str]
    mask: torch.Tensor | None  # (1, n_images, h, w) or None


@dataclass
class Controls:
    """Everything ``denoise`` adds to the UNet call of each step."""

    controlnets: list[_ControlNet] = field(default_factory=list)
    adapters: list[_Adapter] = field(default_factory=list)
    ip_adapters: list[_IPAdapter] = field(default_factory=list)
    ip_processors: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.controlnets or self.adapters or self.ip_adapters)

    def unet_kwargs(
        self,
        step: int,
        total: int,
        model_in: torch.Tensor,
        t: torch.Tensor,
        embeds: torch.Tensor,
        added: dict[str, torch.Tensor] | None,
    ) -> dict[str, Any]:
        """Extra keyword arguments of the UNet call at ``step`` (CFG batch: negative, positive)."""
        out: dict[str, Any] = {}
        down, mid = self._controlnet(step, total, model_in, t, embeds, added)
        if down is not None:
            out["down_block_additional_residuals"] = down
            out["mid_block_additional_residual"] = mid
        features = self._adapter(step, total, model_in)
        if features is not None:
            out["down_intrablock_additional_residuals"] = features
        if self.ip_adapters:
            self._set_ip_scales(step, total)
            out["added_cond_kwargs"] = {
                **(added or {}),
                "image_embeds": [a.embeds for a in self.ip_adapters],
            }
            if any(a.mask is not None for a in self.ip_adapters):
                out["cross_attention_kwargs"] = {
                    "ip_adapter_masks": [a.mask for a in self.ip_adapters]
                }
        return out

    def _controlnet(
        self,
        step: int,
        total: int,
        model_in: torch.Tensor,
        t: torch.Tensor,
        embeds: torch.Tensor,
        added: dict[str, torch.Tensor] | None,
    ) -> tuple[list[torch.Tensor] | None, torch.Tensor | None]:
        import torch

        down: list[torch.Tensor] | None = None
        mid: torch.Tensor | None = None
        for c in self.controlnets:
            if not step_active(step, total, c.begin, c.end):
                continue
            soft = c.mode in ("more_prompt", "more_control")
            positive_only = c.mode in ("more_control", "unbalanced")
            x, e, a = model_in, embeds, added
            if positive_only:
                x, e = model_in[1:], embeds[1:]
                a = {k: v[1:] for k, v in added.items()} if added else None
            image = c.image.expand(x.shape[0], -1, -1, -1)
            d, m = c.model(
                x.to(c.image.dtype),
                t,
                encoder_hidden_states=e.to(c.image.dtype),
                controlnet_cond=image,
                conditioning_scale=_weight_at(c.weight, step),
                guess_mode=soft,
                added_cond_kwargs=a,
                return_dict=False,
            )
            if positive_only:
                d = [torch.cat([torch.zeros_like(r), r]) for r in d]
                m = torch.cat([torch.zeros_like(m), m])
            if down is None:
                down, mid = list(d), m
            else:
                down = [p + q for p, q in zip(down, d, strict=True)]
                mid = mid + m
        return down, mid

    def _adapter(self, step: int, total: int, model_in: torch.Tensor) -> list[torch.Tensor] | None:
        import torch
        import torch.nn.functional as F

        acc: list[torch.Tensor] | None = None
        for a in self.adapters:
            w = _weight_at(a.weight, step) if step_active(step, total, a.begin, a.end) else 0.0
            if acc is None:
                acc = [f * w for f in a.features]
            else:
                acc = [p + f * w for p, f in zip(acc, a.features, strict=True)]
        if acc is None:
            return None
        out = []
        h, w = model_in.shape[-2:]
        for f in acc:  # odd latent sizes: pad as the UNet pads its downsampled maps
            scale = w // f.shape[-1]
            pad_w = math.ceil(w / scale) - f.shape[-1]
            pad_h = math.ceil(h / scale) - f.shape[-2]
            if pad_w or pad_h:
                f = F.pad(f, (0, pad_w, 0, pad_h))
            out.append(torch.cat([f] * model_in.shape[0]))
        return out

    def _set_ip_scales(self, step: int, total: int) -> None:
        weights = [
            _weight_at(a.weight, step) if step_active(step, total, a.begin, a.end) else 0.0
            for a in self.ip_adapters
        ]
        for name, proc in self.ip_processors.items():
            proc.scale = [
                w if any(b in name for b in a.target_blocks) else 0.0
                for w, a in zip(weights, self.ip_adapters, strict=True)
            ]


# -- building -------------------------------------------------------------------------------


def _check_base(ctx: Any, model: Any, unet_base: str, field_name: str) -> Any:
    rec = ctx.models.record(model)
    fits = rec.base == unet_base or (rec.base == "sdxl" and unet_base == "sdxl-refiner")
    if not fits:
        raise ControlInputError(
            f"node {ctx.node_id!r} ({ctx.node_type}) field {field_name!r}: {rec.type} "
            f"{rec.name!r} is for base {rec.base!r}, the UNet is {unet_base!r}"
        )
    return rec


def build_controls(
    ctx: Any,
    stack: ExitStack,
    unet: Any,
    unet_base: str,
    latents: torch.Tensor,
    *,
    control: Any,
    t2i_adapter: Any,
    ip_adapter: Any,
    device: Any,
    dtype: torch.dtype,
) -> Controls:
    """Load and prepare every control input of a ``denoise_latents`` run.

    ControlNets stay locked in the model cache for the run (entered on ``stack``);
    T2I-Adapters and image encoders run once here and are released.
    """
    import torch

    controls = Controls()
    h, w = latents.shape[-2:]
    with torch.inference_mode():
        for c in as_list(control):
            c = c if isinstance(c, ControlField) else ControlField.model_validate(c)
            _check_base(ctx, c.control_model, unet_base, "control")
            model = stack.enter_context(ctx.models.load(c.control_model))
            mdtype = next(model.parameters()).dtype
            image = prepare_control_image(
                ctx.images.get_pil(c.image),
                w * LATENT_SCALE_FACTOR,
                h * LATENT_SCALE_FACTOR,
                c.resize_mode,
            ).to(device, mdtype)
            controls.controlnets.append(
                _ControlNet(
                    model,
                    image,
                    c.control_weight,
                    c.begin_step_percent,
                    c.end_step_percent,
                    c.control_mode,
                )
            )
        # the UNet downsamples its latents 2**(blocks-1) times (8 for SD1, 4 for SDXL)
        max_down = 2 ** (len(unet.config.block_out_channels) - 1)
        for a in as_list(t2i_adapter):
            a = a if isinstance(a, T2IAdapterField) else T2IAdapterField.model_validate(a)
            _check_base(ctx, a.t2i_adapter_model, unet_base, "t2i_adapter")
            with ctx.models.load(a.t2i_adapter_model) as adapter:
                factor = adapter.total_downscale_factor
                image = prepare_control_image(
                    ctx.images.get_pil(a.image),
                    w // max_down * factor,
                    h // max_down * factor,
                    a.resize_mode,
                    channels=adapter.config["in_channels"],
                )
                adtype = next(adapter.parameters()).dtype
                adevice = next(adapter.parameters()).device
                features = [f.to(device, dtype) for f in adapter(image.to(adevice, adtype))]
            controls.adapters.append(
                _Adapter(features, a.weight, a.begin_step_percent, a.end_step_percent)
            )
        ips = [
            a if isinstance(a, IPAdapterField) else IPAdapterField.model_validate(a)
            for a in as_list(ip_adapter)
        ]
        if ips:
            states = []
            for a in ips:
                _check_base(ctx, a.ip_adapter_model, unet_base, "ip_adapter")
                with ctx.models.load(a.ip_adapter_model) as state:
                    states.append(state)
            controls.ip_processors = stack.enter_context(ip_adapters_on(unet, states, device))
            for a, state in zip(ips, states, strict=True):
                embeds = _encode_images(ctx, a, state, device, dtype)
                mask = None
                if a.mask is not None:
                    m = ctx.tensors.load(a.mask).to(device, dtype)
                    while m.ndim < 4:
                        m = m.unsqueeze(0)
                    mask = m[:1, :1].expand(1, embeds.shape[1], -1, -1)
                controls.ip_adapters.append(
                    _IPAdapter(
                        embeds,
                        a.weight,
                        a.begin_step_percent,
                        a.end_step_percent,
                        a.target_blocks or ["block"],
                        mask,
                    )
                )
    return controls


def _encode_images(
    ctx: Any, a: IPAdapterField, state: dict[str, Any], device: Any, dtype: torch.dtype
) -> torch.Tensor:
    """(2, n_images, ...) image embeddings: zeros-image negative, then the images.

    The plain adapter takes the encoder's projected embedding (negative: zeros); plus and
    full-face adapters take its penultimate hidden states (negative: those of a black
    image), as the IP-Adapter authors and diffusers do.
    """
    import torch

    images = [ctx.images.get_pil(i, mode="RGB") for i in as_list(a.image)]
    hidden = "proj.weight" not in state["image_proj"]
    with ctx.models.load(a.image_encoder_model) as enc:
        edevice = next(enc.model.parameters()).device
        edtype = next(enc.model.parameters()).dtype
        pixels = enc.processor(images=images, return_tensors="pt").pixel_values.to(edevice, edtype)
        if hidden:
            pos = enc.model(pixels, output_hidden_states=True).hidden_states[-2]
            neg = enc.model(torch.zeros_like(pixels), output_hidden_states=True).hidden_states[-2]
        else:
            pos = enc.model(pixels).image_embeds
            neg = torch.zeros_like(pos)
    return torch.stack([neg, pos]).to(device, dtype)


@contextmanager
def ip_adapters_on(
    unet: Any, states: list[dict[str, Any]], device: Any = None
) -> Iterator[dict[str, Any]]:
    """Set diffusers' IP-Adapter processors and image projections built from ``states`` on
    ``unet`` inside the block; yields the IP processors by name. On exit the UNet has its
    own processors and no image projection again (it lives on in the model cache)."""
    from diffusers.models.embeddings import MultiIPAdapterImageProjection

    saved_procs = dict(unet.attn_processors)
    saved_proj = unet.encoder_hid_proj
    saved_type = unet.config.encoder_hid_dim_type
    param = next(unet.parameters())
    if device is None:  # the UNet's weights may sit on meta under partial loading
        device = param.device if param.device.type != "meta" else "cpu"
    procs = unet._convert_ip_adapter_attn_to_diffusers(states, low_cpu_mem_usage=False)
    projections = [
        unet._convert_ip_adapter_image_proj_to_diffusers(s["image_proj"], low_cpu_mem_usage=False)
        for s in states
    ]
    for p in procs.values():
        if hasattr(p, "to"):
            p.to(device, param.dtype)
    try:
        unet.set_attn_processor(dict(procs))
        unet.encoder_hid_proj = MultiIPAdapterImageProjection(projections).to(device, param.dtype)
        unet.config.encoder_hid_dim_type = "ip_image_proj"
        yield {n: p for n, p in procs.items() if hasattr(p, "to_k_ip")}
    finally:
        unet.encoder_hid_proj = saved_proj  # first: its attentions count as UNet layers
        unet.config.encoder_hid_dim_type = saved_type
        unet.set_attn_processor(dict(saved_procs))
