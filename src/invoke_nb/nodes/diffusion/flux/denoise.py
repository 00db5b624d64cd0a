"""``flux_denoise``: FLUX.1 rectified-flow sampling on diffusers' FluxTransformer2DModel.

txt2img starts from noise; img2img from ``t0 * noise + (1 - t0) * latents`` at the first
time of the clipped schedule; inpainting keeps the preserved region on the noised-original
trajectory after every step, promoting gradient-mask pixels once ``t`` falls below their
value (InvokeAI's rule). True CFG runs the negative prompt too on the steps between
``cfg_scale_start_step`` and ``cfg_scale_end_step`` whose scale is not 1. Several prompts,
each with a region mask, are joined as InvokeAI's regional prompting joins them
(:mod:`.regional`; Redux image prompts join them, each global or masked, and Kontext
reference tokens are visible to every region). LoRAs are patched into the transformer for
the node's duration (beside the weights of a GGUF model); a control LoRA last, with its control image's latents beside
the noise (:mod:`invoke_nb.nodes.diffusion.flux_extras.control_lora`). XLabs IP-Adapters hook into the
double blocks (:mod:`invoke_nb.nodes.diffusion.flux_extras.ip_adapter`). Euler is the plain
``x += (t_prev - t) * v`` step; heun and lcm are diffusers' flow-matching schedulers driven
as InvokeAI drives them. Seeding conventions: see :mod:`.sampling`.
"""

from __future__ import annotations

import inspect
import itertools
import math
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, Literal

from invoke_nb.nodes.base import Input, InputField, Node, node
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.denoise_meta import LatentsMetaOutput
from invoke_nb.nodes.diffusion.devices import execution_device
from invoke_nb.nodes.diffusion.fields import LatentsOutput, VAEField
from invoke_nb.nodes.diffusion.flux import sampling
from invoke_nb.nodes.diffusion.flux.fields import (
    ControlLoRAField,
    FluxConditioning,
    FluxConditioningField,
    FluxControlNetField,
    FluxFillConditioningField,
    FluxKontextConditioningField,
    FluxReduxConditioningField,
    IPAdapterField,
    TransformerField,
)
from invoke_nb.nodes.diffusion.flux.position_memo import rope_once
from invoke_nb.nodes.diffusion.flux.regional import (
    Regional,
    combine,
    masked_attention,
    region_mask,
    with_reference,
)
from invoke_nb.nodes.diffusion.flux.text_vae import lora_parts
from invoke_nb.nodes.diffusion.lora import patched
from invoke_nb.nodes.types import DenoiseMaskField, LatentsField

if TYPE_CHECKING:
    import torch

__all__ = ["FluxDenoiseError", "FluxDenoiseLatentsMetaNode", "FluxDenoiseNode"]

SCHEDULER_LABELS = {"euler": "Euler", "heun": "Heun (2nd order)", "lcm": "LCM"}
DYPE_LABELS = {
    "off": "Off",
    "manual": "Manual",
    "auto": "Auto (>1536px)",
    "area": "Area (auto)",
    "4k": "4K Optimized",
}


class FluxDenoiseError(ValueError):
    """Bad or unsupported input to ``flux_denoise`` (the message names node and field)."""


@node(
    "flux_denoise", title="FLUX Denoise", category="image", tags=["image", "flux"], version="4.5.1"
)
class FluxDenoiseNode(Node):
    """Run denoising process with a FLUX transformer model."""

    latents: LatentsField | None = InputField(
        default=None, description="Latents tensor", input=Input.CONNECTION
    )
    denoise_mask: DenoiseMaskField | None = InputField(
        default=None,
        description="A mask of the region to apply the denoising process to. Values of 0.0 "
        "represent the regions to be fully denoised, and 1.0 represent the regions to be preserved.",
        input=Input.CONNECTION,
    )
    denoising_start: float = InputField(
        default=0.0,
        ge=0,
        le=1,
        description="When to start denoising, expressed a percentage of total steps",
    )
    denoising_end: float = InputField(
        default=1.0,
        ge=0,
        le=1,
        description="When to stop denoising, expressed a percentage of total steps",
    )
    add_noise: bool = InputField(default=True, description="Add noise based on denoising start.")
    transformer: TransformerField = InputField(
        description="Flux model (Transformer) to load", input=Input.CONNECTION, title="Transformer"
    )
    control_lora: ControlLoRAField | None = InputField(
        default=None,
        description="Control LoRA model to load",
        input=Input.CONNECTION,
        title="Control LoRA",
    )
    positive_text_conditioning: FluxConditioningField | list[FluxConditioningField] = InputField(
        description="Positive conditioning tensor", input=Input.CONNECTION
    )
    negative_text_conditioning: FluxConditioningField | list[FluxConditioningField] | None = (
        InputField(
            default=None,
            description="Negative conditioning tensor. Can be None if cfg_scale is 1.0.",
            input=Input.CONNECTION,
        )
    )
    redux_conditioning: FluxReduxConditioningField | list[FluxReduxConditioningField] | None = (
        InputField(
            default=None, description="FLUX Redux conditioning tensor.", input=Input.CONNECTION
        )
    )
    fill_conditioning: FluxFillConditioningField | None = InputField(
        default=None, description="FLUX Fill conditioning.", input=Input.CONNECTION
    )
    cfg_scale: float | list[float] = InputField(
        default=1.0, description="Classifier-Free Guidance scale", title="CFG Scale"
    )
    cfg_scale_start_step: int = InputField(
        default=0,
        title="CFG Scale Start Step",
        description="Index of the first step to apply cfg_scale. Negative indices count "
        "backwards from the the last step (e.g. a value of -1 refers to the final step).",
    )
    cfg_scale_end_step: int = InputField(
        default=-1,
        title="CFG Scale End Step",
        description="Index of the last step to apply cfg_scale. Negative indices count "
        "backwards from the last step (e.g. a value of -1 refers to the final step).",
    )
    width: int = InputField(
        default=1024, multiple_of=16, description="Width of the generated image."
    )
    height: int = InputField(
        default=1024, multiple_of=16, description="Height of the generated image."
    )
    num_steps: int = InputField(
        default=4,
        description="Number of diffusion steps. Recommended values are schnell: 4, dev: 50.",
    )
    scheduler: Literal["euler", "heun", "lcm"] = InputField(
        default="euler",
        description="Scheduler (sampler) for the denoising process. 'euler' is fast and "
        "standard. 'heun' is 2nd-order (better quality, 2x slower). 'lcm' is optimized for few steps.",
    )
    guidance: float = InputField(
        default=4.0,
        description="The guidance strength. Higher values adhere more strictly to the prompt, "
        "and will produce less diverse images. FLUX dev only, ignored for schnell.",
    )
    seed: int = InputField(default=0, description="Randomness seed for reproducibility.")
    control: FluxControlNetField | list[FluxControlNetField] | None = InputField(
        default=None, description="ControlNet models.", input=Input.CONNECTION
    )
    controlnet_vae: VAEField | None = InputField(
        default=None, description="VAE", input=Input.CONNECTION
    )
    ip_adapter: IPAdapterField | list[IPAdapterField] | None = InputField(
        default=None, description="IP-Adapter to apply", title="IP-Adapter", input=Input.CONNECTION
    )
    kontext_conditioning: (
        FluxKontextConditioningField | list[FluxKontextConditioningField] | None
    ) = InputField(
        default=None,
        description="FLUX Kontext conditioning (reference image).",
        input=Input.CONNECTION,
    )
    dype_preset: Literal["off", "manual", "auto", "area", "4k"] = InputField(
        default="off",
        description="DyPE preset for high-resolution generation.",
        ui_order=100,
    )
    dype_scale: float | None = InputField(
        default=None, ge=0.0, le=8.0, description="DyPE magnitude (λs).", ui_order=101
    )
    dype_exponent: float | None = InputField(
        default=None, ge=0.0, le=1000.0, description="DyPE decay speed (λt).", ui_order=102
    )
    seeding: Literal["invokeai", "diffusers"] = InputField(
        default="invokeai",
        description="invoke-nb: 'invokeai' reproduces InvokeAI's images; 'diffusers' "
        "reproduces diffusers' Flux pipelines",
        extension=True,
    )

    # -- checks ------------------------------------------------------------------------
    def _err(self, ctx: Context, field: str, problem: str) -> FluxDenoiseError:
        return FluxDenoiseError(f"node {ctx.node_id!r} (flux_denoise), field {field!r}: {problem}")

    def _refuse_unsupported(self, ctx: Context, variant: str | None) -> None:
        if self.kontext_conditioning not in (None, []) and self.controlnet_vae is None:
            raise self._err(ctx, "controlnet_vae", "Kontext conditioning needs the VAE here")
        if self.control not in (None, []) and self.controlnet_vae is None:
            raise self._err(ctx, "controlnet_vae", "ControlNets need the VAE here")
        if self.control_lora is not None:
            if variant == "schnell":
                raise self._err(
                    ctx, "control_lora", "Control LoRAs cannot be used with FLUX Schnell"
                )
            if variant == "dev_fill":
                raise self._err(ctx, "control_lora", "Control LoRAs cannot be used with FLUX Fill")
            if self.controlnet_vae is None:
                raise self._err(ctx, "controlnet_vae", "a Control LoRA needs the VAE here")
        if self.fill_conditioning is not None and variant != "dev_fill":
            raise self._err(ctx, "fill_conditioning", "the model is not a FLUX Fill model")
        if variant == "dev_fill":
            if self.fill_conditioning is None:
                raise self._err(ctx, "fill_conditioning", "a FLUX Fill model needs it")
            if self.controlnet_vae is None:
                raise self._err(ctx, "controlnet_vae", "a FLUX Fill model needs the VAE here")
        if self.dype_preset != "off":
            raise self._err(ctx, "dype_preset", "DyPE is not supported yet (use 'off')")
        if self.latents is None and self.denoising_start > 1e-5:
            raise self._err(ctx, "denoising_start", "must be 0 when no latents are given")
        if self.denoise_mask is not None and self.latents is None:
            raise self._err(ctx, "denoise_mask", "inpainting needs the image's latents")
        if self.denoising_start > self.denoising_end:
            raise self._err(ctx, "denoising_start", "must not exceed denoising_end")
        if self.num_steps < 1:
            raise self._err(ctx, "num_steps", "must be at least 1")

    def _redux(self, ctx: Context, packed_h: int, packed_w: int) -> list[tuple[Any, Any]]:
        """Every Redux image prompt's T5-space tokens with its packed region mask (or None)."""
        r = self.redux_conditioning
        fields = [] if r in (None, []) else (r if isinstance(r, list) else [r])
        out = []
        for f in fields:
            mask = None
            if f.mask is not None:
                mask = region_mask(ctx.tensors.load(f.mask), packed_h, packed_w)
            out.append((ctx.tensors.load(f.conditioning), mask))
        return out

    def _control_draws(self, ctx: Context) -> int:
        if not self._controls():
            return 0
        from invoke_nb.nodes.diffusion.flux_extras.controlnet import vae_draws

        return vae_draws(ctx, self._controls())

    def _controls(self) -> list[Any]:
        c = self.control
        return [] if c in (None, []) else (c if isinstance(c, list) else [c])

    def _conditioning(
        self, ctx: Context, field: str, packed_h: int, packed_w: int, redux: list[Any] | None = None
    ) -> Regional:
        """The field's conditionings (and ``redux`` image prompts) joined as InvokeAI's
        regional prompting joins them."""
        value = getattr(self, field)
        items = value if isinstance(value, list) else [value]
        if not items:
            raise self._err(ctx, field, "no conditioning given")
        loaded = []
        for item in items:
            cond = ctx.conditioning.load(item.conditioning_name)
            if not isinstance(cond, FluxConditioning):
                raise self._err(ctx, field, f"not FLUX conditioning ({type(cond).__name__})")
            mask = None
            if item.mask is not None:
                mask = region_mask(ctx.tensors.load(item.mask), packed_h, packed_w)
            loaded.append((cond, mask))
        return combine(loaded, packed_h * packed_w, redux or [])

    # -- run -----------------------------------------------------------------------------
    def invoke(self, ctx: Context) -> LatentsOutput:
        latents = self.run(ctx)
        name = ctx.tensors.save(latents)
        return LatentsOutput.of(name, latents)

    def run(self, ctx: Context) -> torch.Tensor:
        import torch

        from invoke_nb.nodes.diffusion.flux.loaders import require_base

        rec = require_base(ctx, self.transformer.transformer, "transformer", ("flux",), ("main",))
        variant = rec.variant
        self._refuse_unsupported(ctx, variant)
        if self.transformer.loras and rec.format not in (
            "checkpoint",
            "diffusers",
            "gguf_quantized",
            "bnb_quantized_nf4b",
        ):
            raise self._err(
                ctx, "transformer", f"LoRAs on a {rec.format} model are not supported yet"
            )
        if self.control_lora is not None and rec.format not in (
            "checkpoint",
            "diffusers",
            "gguf_quantized",  # quantized layers take it as sidecars
            "bnb_quantized_nf4b",
        ):
            raise self._err(
                ctx, "control_lora", f"control LoRAs on a {rec.format} model are not supported yet"
            )
        schnell = variant == "schnell"

        init = ctx.tensors.load(self.latents).float() if self.latents is not None else None
        noise = sampling.get_noise(
            self.seed,
            self.width,
            self.height,
            self.seeding,
            # diffusers' img2img/inpaint/Fill pipelines sample the image's latents first
            # (and each ControlNet's control image) before they draw the noise
            draws_before=(
                int(init is not None or variant == "dev_fill") + self._control_draws(ctx)
                if self.seeding == "diffusers"
                else 0
            ),
        )
        if init is not None and init.shape[-2:] != noise.shape[-2:]:
            raise self._err(
                ctx,
                "latents",
                f"latents {tuple(init.shape)} do not match width x height {self.width}x{self.height}",
            )
        _, _, lat_h, lat_w = noise.shape
        pos = self._conditioning(
            ctx,
            "positive_text_conditioning",
            lat_h // 2,
            lat_w // 2,
            redux=self._redux(ctx, lat_h // 2, lat_w // 2),  # the negative gets none (InvokeAI)
        )
        neg = (
            self._conditioning(ctx, "negative_text_conditioning", lat_h // 2, lat_w // 2)
            if self.negative_text_conditioning
            else None
        )
        seq_len = (lat_h // 2) * (lat_w // 2)
        full = sampling.schedule(self.num_steps, seq_len, shift=not schnell)
        if init is not None and self.seeding == "diffusers":
            ts = sampling.diffusers_img2img_schedule(
                full, 1.0 - self.denoising_start, self.denoising_end
            )
        else:
            ts = sampling.clip_schedule(full, self.denoising_start, self.denoising_end)

        if init is None:
            x = noise
        elif self.add_noise:
            x = ts[0] * noise + (1.0 - ts[0]) * init
        else:
            x = init
        if len(ts) <= 1:
            return x
        try:
            cfg = sampling.step_cfg_scales(
                self.cfg_scale, len(ts) - 1, self.cfg_scale_start_step, self.cfg_scale_end_step
            )
        except ValueError as e:
            raise self._err(ctx, str(e).split(":")[0], str(e)) from e
        if neg is None and any(not math.isclose(c, 1.0) for c in cfg):
            raise self._err(ctx, "negative_text_conditioning", "needed when cfg_scale is not 1.0")
        keep = None
        if self.denoise_mask is not None:
            keep = self._inpaint_mask(ctx, x)

        device = execution_device(ctx)
        img_cond = None
        if variant == "dev_fill":
            from invoke_nb.nodes.diffusion.flux_extras.fill import fill_image_conditioning

            img_cond = fill_image_conditioning(self, ctx, device)
        elif self.control_lora is not None:
            from invoke_nb.nodes.diffusion.flux_extras.control_lora import (
                control_image_conditioning,
            )

            img_cond = control_image_conditioning(self, ctx, device)
        ref_seq = None
        if self.kontext_conditioning not in (None, []):
            from invoke_nb.nodes.diffusion.flux_extras.kontext import kontext_sequence

            ref_seq = kontext_sequence(self, ctx, device)
        ip = None
        if self.ip_adapter not in (None, []):
            from invoke_nb.nodes.diffusion.flux_extras.ip_adapter import IPAdapters

            fields = self.ip_adapter if isinstance(self.ip_adapter, list) else [self.ip_adapter]
            try:
                ip = IPAdapters(fields, ctx, device)
            except ValueError as e:
                raise self._err(ctx, "ip_adapter", str(e)) from e
        loras = self.transformer.loras
        with ExitStack() as stack:
            model = stack.enter_context(ctx.models.load(self.transformer.transformer))
            inner = model.config.num_attention_heads * model.config.attention_head_dim
            parts = lora_parts(ctx, loras, "transformer", inner)
            if rec.format in ("gguf_quantized", "bnb_quantized_nf4b"):  # LoRAs run beside them
                from invoke_nb.nodes.diffusion.flux.gguf_lora import sidecar_loras

                stack.enter_context(sidecar_loras(model, parts))
            else:
                stack.enter_context(
                    patched(model, parts, "transformer", cache=getattr(ctx.models, "cache", None))
                )
            if self.control_lora is not None:  # applied last: it widens the input layer
                self._apply_control_lora(ctx, stack, model, device)
            holder: dict[str, Any] = {}
            if pos.attn_mask is not None or (neg is not None and neg.attn_mask is not None):
                stack.enter_context(masked_attention(model, holder))
            if ip is not None:
                try:
                    ip.attach(ctx, stack, model)
                except ValueError as e:
                    raise self._err(ctx, "ip_adapter", str(e)) from e
            stack.enter_context(rope_once(model))  # the same position tables every step
            stack.enter_context(torch.inference_mode())
            control = None
            if self._controls():
                from invoke_nb.nodes.diffusion.flux_extras.controlnet import ControlNets

                control = ControlNets(self, ctx, stack, device)
            dtype = _dtype(model)
            out = _sample(
                model,
                x=sampling.pack(x).to(device, dtype),
                ids=sampling.image_ids(lat_h, lat_w, device).to(dtype),
                pos=pos,
                neg=neg,
                holder=holder,
                ts=ts,
                cfg=cfg,
                guidance=self.guidance,
                scheduler=self.scheduler,
                init=sampling.pack(init).to(device, dtype) if keep is not None else None,
                noise=sampling.pack(noise).to(device, dtype) if keep is not None else None,
                keep=sampling.pack(keep).to(device, dtype) if keep is not None else None,
                img_cond=img_cond.to(device, dtype) if img_cond is not None else None,
                ref_seq=(ref_seq[0].to(device, dtype), ref_seq[1].to(dtype))
                if ref_seq is not None
                else None,
                control=control,
                ip=ip,
                on_step=self._progress(ctx, device),
                check=ctx.check_cancelled,
            )
        return sampling.unpack(out.float().cpu(), self.width, self.height)

    def _apply_control_lora(self, ctx: Context, stack: ExitStack, model: Any, device: str) -> None:
        from invoke_nb.nodes.diffusion.flux_extras.control_lora import control_lora_applied

        cl = self.control_lora
        with ctx.models.load(cl.lora) as sd:
            sd = dict(sd)
        try:
            stack.enter_context(control_lora_applied(model, sd, cl.weight, device))
        except ValueError as e:
            raise self._err(ctx, "control_lora", f"{cl.lora.name!r}: {e}") from e

    def _progress(self, ctx: Context, device: str) -> Any:
        """``on_step(step, total, preview_tokens)``: progress events, with a latent preview
        every ``preview_every`` steps when the host shows them."""
        from invoke_nb.nodes.diffusion.preview import LatentPreviews

        every = getattr(ctx.services, "preview_every", 0) if ctx.services.emit else 0
        previews = LatentPreviews("flux", device, every) if every else None

        def on_step(step: int, total: int, tokens: torch.Tensor) -> None:
            image = None
            if previews is not None and previews.due(step, total):
                previews.submit(sampling.unpack(tokens.float(), self.width, self.height))
                image = previews.take(wait=step == total)
            ctx.progress(step=step, total=total, message="Denoising", image=image)

        return on_step

    def _inpaint_mask(self, ctx: Context, x: torch.Tensor) -> torch.Tensor:
        """The repaint weight (1 = regenerate) at latent size, as InvokeAI prepares it."""
        import torch.nn.functional as F

        mask = ctx.tensors.load(self.denoise_mask.mask_name).float()
        while mask.dim() < 4:
            mask = mask.unsqueeze(0)
        mask = 1.0 - mask
        mask = F.interpolate(
            mask, size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False, antialias=False
        )
        return mask.expand_as(x).contiguous()


def _dtype(model: Any) -> torch.dtype:
    import torch

    for p in model.parameters():
        if p.dtype.is_floating_point:
            return p.dtype
    return torch.float32


def _predict(
    model: Any,
    x: torch.Tensor,
    ids: torch.Tensor,
    cond: Regional,
    t: float,
    guidance: float,
    holder: dict[str, Any],
    img_cond: torch.Tensor | None = None,
    ref_seq: tuple[torch.Tensor, torch.Tensor] | None = None,
    residuals: dict[str, Any] | None = None,
) -> torch.Tensor:
    import torch

    dtype, device = x.dtype, x.device
    mask = cond.attn_mask
    if mask is not None and ref_seq is not None:  # Kontext tokens join the attention
        mask = with_reference(mask, ref_seq[0].shape[1])
    holder["mask"] = mask.to(device) if mask is not None else None
    n = x.shape[1]
    if img_cond is not None:  # FLUX Fill: masked-image latents and mask beside the noise
        x = torch.cat((x, img_cond), dim=-1)
    if ref_seq is not None:  # Kontext: reference tokens after the image's, index 1
        x = torch.cat((x, ref_seq[0]), dim=1)
        ids = torch.cat((ids, ref_seq[1]), dim=0)
    t5 = cond.t5_embeds.to(device, dtype)
    vec = torch.full((x.shape[0],), t, device=device, dtype=dtype)
    g = (
        torch.full((x.shape[0],), guidance, device=device, dtype=dtype)
        if model.config.guidance_embeds
        else None
    )
    return model(
        hidden_states=x,
        encoder_hidden_states=t5,
        pooled_projections=cond.clip_embeds.to(device, dtype),
        timestep=vec,
        img_ids=ids,
        txt_ids=torch.zeros(t5.shape[1], 3, device=device, dtype=dtype),
        guidance=g,
        return_dict=False,
        **(residuals or {}),
    )[0][:, :n]


def _sample(
    model: Any,
    *,
    x: torch.Tensor,
    ids: torch.Tensor,
    pos: Regional,
    neg: Regional | None,
    holder: dict[str, Any],
    ts: list[float],
    cfg: list[float],
    guidance: float,
    scheduler: str,
    init: torch.Tensor | None,
    noise: torch.Tensor | None,
    keep: torch.Tensor | None,
    on_step: Any,
    check: Any,
    img_cond: torch.Tensor | None = None,
    ref_seq: tuple[torch.Tensor, torch.Tensor] | None = None,
    control: Any = None,
    ip: Any = None,
) -> torch.Tensor:
    import torch

    total = len(ts) - 1

    def velocity(img: torch.Tensor, t: float, step: int) -> torch.Tensor:
        residuals = None
        if control is not None:
            residuals = control(
                img,
                t,
                step,
                total,
                pos,
                ids,
                guidance,
                len(model.transformer_blocks),
                len(model.single_transformer_blocks),
            )
        if ip is not None:
            ip.select(step, total, negative=False)
        v = _predict(model, img, ids, pos, t, guidance, holder, img_cond, ref_seq, residuals)
        scale = cfg[min(step, total - 1)]
        if not math.isclose(scale, 1.0):
            assert neg is not None
            if ip is not None:
                ip.select(step, total, negative=True)
            v_neg = _predict(model, img, ids, neg, t, guidance, holder, img_cond, ref_seq)
            v = v_neg + scale * (v - v_neg)
        return v

    def merge(img: torch.Tensor, t_prev: float) -> torch.Tensor:
        if keep is None:
            return img
        m = (keep >= t_prev + 1e-4).to(img.dtype)
        return img * m + (noise * t_prev + (1.0 - t_prev) * init) * (1.0 - m)

    if scheduler == "euler":
        for i, (t, t_prev) in enumerate(itertools.pairwise(ts)):
            check()
            v = velocity(x, t, i)
            preview = merge(x - t * v, 0.0)
            x = merge(x + (t_prev - t) * v, t_prev)
            on_step(i + 1, total, preview)
        return x

    sched = _flow_scheduler(scheduler)
    params = inspect.signature(sched.set_timesteps).parameters
    if scheduler != "lcm" and "sigmas" in params:
        sched.set_timesteps(sigmas=ts, device=x.device)
    else:
        sched.set_timesteps(num_inference_steps=total, device=x.device)
    user_step = 0
    for i, timestep in enumerate(sched.timesteps):
        check()
        t = timestep.item() / sched.config.num_train_timesteps
        first_order = getattr(sched, "state_in_first_order", True)
        v = velocity(x, t, user_step)
        x = sched.step(model_output=v, timestep=timestep, sample=x).prev_sample
        t_prev = sched.sigmas[i + 1].item() if i + 1 < len(sched.sigmas) else 0.0
        x = merge(x, t_prev)
        if hasattr(sched, "state_in_first_order"):
            if not first_order:
                user_step += 1
        else:
            user_step += 1
        if user_step <= total and (not hasattr(sched, "state_in_first_order") or not first_order):
            on_step(user_step, total, merge(x - t * v, 0.0))
    if user_step < total:  # Heun's last step is first order only: report it done
        on_step(total, total, x)
    return x.to(torch.float32) if x.dtype != torch.float32 else x


def _flow_scheduler(name: str) -> Any:
    import diffusers

    cls = {"heun": "FlowMatchHeunDiscreteScheduler", "lcm": "FlowMatchLCMScheduler"}[name]
    return getattr(diffusers, cls)(num_train_timesteps=1000)


@node(
    "flux_denoise_meta",
    title="FLUX Denoise + Metadata",
    category="latents",
    tags=["flux", "latents", "denoise", "txt2img", "t2i", "t2l", "img2img", "i2i", "l2l"],
    version="1.0.1",
)
class FluxDenoiseLatentsMetaNode(FluxDenoiseNode):
    """Run denoising process with a FLUX transformer model + metadata."""

    metadata: dict[str, Any] | None = InputField(
        default=None,
        description="Optional metadata to be saved with the image",
        input=Input.CONNECTION,
    )

    def invoke(self, ctx: Context) -> LatentsMetaOutput:
        out = super().invoke(ctx)
        md = dict(self.metadata or {})
        md.update(
            width=out.width,
            height=out.height,
            steps=self.num_steps,
            guidance=self.guidance,
            denoising_start=self.denoising_start,
            denoising_end=self.denoising_end,
            scheduler=self.scheduler,
            seed=self.seed,
            model=self.transformer.transformer.model_dump(mode="json", exclude_none=True),
        )
        if self.cfg_scale != 1.0:
            md["cfg_scale"] = self.cfg_scale
        if self.transformer.loras:
            md["loras"] = [
                {"model": x.lora.model_dump(mode="json", exclude_none=True), "weight": x.weight}
                for x in self.transformer.loras
            ]
        return LatentsMetaOutput(
            latents=out.latents, width=out.width, height=out.height, metadata=md
        )
