"""The FLUX.2 Klein denoiser: txt2img, img2img (denoising_start/end) and inpainting.

Written on diffusers' ``Flux2Transformer2DModel`` and flow-match schedulers, following
InvokeAI 6.11's ``flux2_denoise``: a full txt2img run steps a scheduler over Klein's linear
sigmas shifted by ``mu``; a clipped or masked run steps plain Euler over the clipped,
unshifted sigmas, merging the kept region back after every step. The transformer works on
batch-normalized packed latents; the output is de-normalized with the VAE's statistics.
Init latents are normalized before noise is mixed in (InvokeAI 6.11 mixed raw latents;
6.14 fixed it, InvokeAI issue #8964).

Reference images (``kontext_conditioning``, from ``flux_kontext``) are Klein's built-in
editing: their normalized latent tokens join every transformer call after the image's and
are never stepped (as diffusers and InvokeAI 6.14 do; 6.11 stepped them too).

LoRAs (``flux2_klein_lora_loader``, InvokeAI 6.14) are patched into the transformer for the
node's duration (:mod:`.lora`).

``seeding`` (ours) picks the starting noise and the shift: ``invokeai`` (default) or
``diffusers`` (reproduces ``Flux2KleinPipeline``), see :mod:`.sampling`.
"""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import torch

from invoke_nb.nodes.base import Input, InputField, Node, node
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.devices import execution_device
from invoke_nb.nodes.diffusion.fields import LatentsOutput, VAEField
from invoke_nb.nodes.diffusion.flux.fields import (
    FluxConditioningField,
    FluxKontextConditioningField,
    TransformerField,
)
from invoke_nb.nodes.diffusion.flux2 import sampling
from invoke_nb.nodes.diffusion.flux2.errors import input_error
from invoke_nb.nodes.diffusion.flux2.lora import apply_transformer_loras
from invoke_nb.nodes.diffusion.flux2.text_encoder import Flux2Conditioning
from invoke_nb.nodes.diffusion.flux2.vae import flux2_vae
from invoke_nb.nodes.types import DenoiseMaskField, LatentsField

__all__ = ["FLUX2_SCHEDULERS", "Flux2DenoiseNode", "make_scheduler"]

FLUX2_SCHEDULERS = {"euler": "Euler", "heun": "Heun (2nd order)", "lcm": "LCM"}

# Klein's scheduler settings (as InvokeAI builds them; the model folders ship the same).
_DYNAMIC = {
    "num_train_timesteps": 1000,
    "shift": 3.0,
    "use_dynamic_shifting": True,
    "base_shift": 0.5,
    "max_shift": 1.15,
    "base_image_seq_len": 256,
    "max_image_seq_len": 4096,
    "time_shift_type": "exponential",
}


def make_scheduler(name: str) -> Any:
    """A fresh diffusers flow-match scheduler for ``name`` (euler, heun, lcm)."""
    import diffusers

    if name == "heun":
        return diffusers.FlowMatchHeunDiscreteScheduler(num_train_timesteps=1000, shift=3.0)
    cls = (
        diffusers.FlowMatchLCMScheduler
        if name == "lcm"
        else diffusers.FlowMatchEulerDiscreteScheduler
    )
    return cls(**_DYNAMIC)


@dataclass
class _Text:
    embeds: torch.Tensor
    ids: torch.Tensor


class _Inpaint:
    """Keeps the unmasked region on the noise trajectory of the init latents (packed)."""

    def __init__(self, init: torch.Tensor, repaint: torch.Tensor, noise: torch.Tensor) -> None:
        self.init, self.repaint, self.noise = init, repaint, noise

    def merge(self, x: torch.Tensor, t_prev: float) -> torch.Tensor:
        import torch

        mask = torch.where(self.repaint >= t_prev + 1e-4, 1.0, 0.0).to(x.dtype)
        kept = self.noise * t_prev + (1.0 - t_prev) * self.init
        return x * mask + kept * (1.0 - mask)


@node(
    "flux2_denoise",
    title="FLUX2 Denoise",
    category="image",
    tags=["image", "flux", "flux2", "klein", "denoise"],
    version="1.3.0",
)
class Flux2DenoiseNode(Node):
    """Run denoising process with a FLUX.2 Klein transformer model."""

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
    positive_text_conditioning: FluxConditioningField = InputField(
        description="Positive conditioning tensor", input=Input.CONNECTION
    )
    negative_text_conditioning: FluxConditioningField | None = InputField(
        default=None,
        description="Negative conditioning tensor. Can be None if cfg_scale is 1.0.",
        input=Input.CONNECTION,
    )
    cfg_scale: float = InputField(
        default=1.0, description="Classifier-Free Guidance scale", title="CFG Scale"
    )
    width: int = InputField(
        default=1024, multiple_of=16, description="Width of the generated image."
    )
    height: int = InputField(
        default=1024, multiple_of=16, description="Height of the generated image."
    )
    num_steps: int = InputField(
        default=4,
        description="Number of diffusion steps. Use 4 for distilled models, 28+ for base models.",
    )
    scheduler: Literal["euler", "heun", "lcm"] = InputField(
        default="euler", description="Scheduler (sampler) for the denoising process."
    )
    seed: int = InputField(default=0, description="Randomness seed for reproducibility.")
    vae: VAEField = InputField(
        description="FLUX.2 VAE model (required for BN statistics).", input=Input.CONNECTION
    )
    kontext_conditioning: (
        FluxKontextConditioningField | list[FluxKontextConditioningField] | None
    ) = InputField(
        default=None,
        description="FLUX Kontext conditioning (reference images for multi-reference image editing).",
        input=Input.CONNECTION,
        title="Reference Images",
    )
    seeding: Literal["invokeai", "diffusers"] = InputField(
        default="invokeai",
        description="invoke-nb: 'invokeai' reproduces InvokeAI's images; 'diffusers' reproduces diffusers' pipelines",
        extension=True,
    )

    # -- inputs ------------------------------------------------------------------------
    def _text(self, ctx: Context, field: str, ref: FluxConditioningField, device: str) -> _Text:
        cond = ctx.conditioning.load(ref.conditioning_name)
        if not isinstance(cond, Flux2Conditioning):
            raise input_error(
                ctx,
                field,
                f"needs FLUX.2 Klein conditioning (flux2_klein_text_encoder); got {type(cond).__name__}",
            )
        return _Text(cond.embeds.to(device), sampling.text_ids(cond.embeds.shape[1], device))

    def _check(self, ctx: Context) -> None:
        for name in ("width", "height"):
            if getattr(self, name) % 16:
                raise input_error(ctx, name, f"{getattr(self, name)} is not a multiple of 16")
        if self.num_steps < 1:
            raise input_error(ctx, "num_steps", "must be at least 1")
        if self.denoising_start > self.denoising_end:
            raise input_error(ctx, "denoising_start", "is after denoising_end")
        if self.latents is None and self.denoising_start > 1e-5:
            raise input_error(ctx, "denoising_start", "must be 0 when no initial latents are given")
        if not math.isclose(self.cfg_scale, 1.0) and self.negative_text_conditioning is None:
            raise input_error(
                ctx, "negative_text_conditioning", f"is required for cfg_scale {self.cfg_scale}"
            )
        rec = ctx.models.record(self.transformer.transformer)
        if rec.base != "flux2" or rec.type != "main":
            raise input_error(
                ctx,
                "transformer",
                f"{rec.name!r} is {rec.base}/{rec.type}; a FLUX.2 model is needed",
            )
        if self.transformer.loras and rec.format not in ("checkpoint", "diffusers"):
            raise input_error(
                ctx, "transformer", f"LoRAs on a {rec.format} FLUX.2 model are not supported yet"
            )

    def _repaint_mask(self, ctx: Context, like: torch.Tensor) -> torch.Tensor | None:
        """Packed 1 = repaint mask (InvokeAI's masks are 1 = keep), resized to the latents."""
        import torch.nn.functional as F

        if self.denoise_mask is None:
            return None
        mask = ctx.tensors.load(self.denoise_mask.mask_name).float()
        while mask.ndim < 4:
            mask = mask.unsqueeze(0)
        mask = F.interpolate(1.0 - mask, size=like.shape[-2:], mode="bilinear", align_corners=False)
        return sampling.pack(mask.expand_as(like).contiguous())

    # -- run ---------------------------------------------------------------------------
    def invoke(self, ctx: Context) -> LatentsOutput:
        import torch

        self._check(ctx)
        device = execution_device(ctx)
        with flux2_vae(ctx, self.vae) as vae:
            bn = vae.bn
            bn_mean = bn.running_mean.detach().to(device, torch.float32).clone()
            bn_std = torch.sqrt(bn.running_var.detach().float() + bn.eps).to(device)
            refs = None
            if self.kontext_conditioning not in (None, []):
                refs = _reference_tokens(self, ctx, vae, bn_mean, bn_std, device)
        pos = self._text(ctx, "positive_text_conditioning", self.positive_text_conditioning, device)
        neg = None
        if self.negative_text_conditioning is not None and not math.isclose(self.cfg_scale, 1.0):
            neg = self._text(
                ctx, "negative_text_conditioning", self.negative_text_conditioning, device
            )

        noise = sampling.noise(self.seed, self.height, self.width, self.seeding).to(device)
        tokens = noise.shape[1]
        sigmas = sampling.linear_sigmas(self.num_steps)
        mu = (
            sampling.diffusers_mu(tokens, self.num_steps)
            if self.seeding == "diffusers"
            else sampling.INVOKEAI_MU
        )
        sigmas = sampling.clip_schedule(sigmas, self.denoising_start, self.denoising_end)

        init = None
        if self.latents is not None:
            raw = ctx.tensors.load(self.latents).to(device, torch.float32)
            h, w = sampling.latent_size(self.height, self.width)
            if raw.ndim != 4 or tuple(raw.shape[1:]) != (32, h, w):
                raise input_error(
                    ctx,
                    "latents",
                    f"shape {tuple(raw.shape)} does not fit a {self.width}x{self.height} FLUX.2 image "
                    f"(1, 32, {h}, {w})",
                )
            init = (sampling.pack(raw) - bn_mean) / bn_std
        if len(sigmas) <= 1:
            out = init if init is not None else noise
        else:
            x = (
                noise
                if init is None
                else (sigmas[0] * noise + (1 - sigmas[0]) * init if self.add_noise else init)
            )
            repaint = self._repaint_mask(
                ctx,
                torch.zeros(1, 32, *sampling.latent_size(self.height, self.width), device=device),
            )
            inpaint = None
            if repaint is not None:
                if init is None:
                    raise input_error(ctx, "denoise_mask", "needs initial latents to keep")
                inpaint = _Inpaint(init, repaint, noise)
            clipped = self.denoise_mask is not None or self.denoising_start > 1e-5
            scheduler = None if clipped else make_scheduler(self.scheduler)
            with ExitStack() as stack:
                model = stack.enter_context(ctx.models.load(self.transformer.transformer))
                if self.transformer.loras:
                    apply_transformer_loras(ctx, stack, model, self.transformer.loras)
                stack.enter_context(torch.inference_mode())
                out = _denoise(
                    ctx,
                    model,
                    x,
                    sampling.image_ids(self.height, self.width, device),
                    pos,
                    neg,
                    self.cfg_scale,
                    sigmas,
                    scheduler,
                    mu,
                    inpaint,
                    self.seed,
                    refs,
                )
        latents = sampling.unpack(out * bn_std + bn_mean, self.height, self.width)
        latents = latents.to("cpu", torch.float32)
        return LatentsOutput.of(ctx.tensors.save(latents), latents)


def _denoise(
    ctx: Context,
    model: Any,
    x: torch.Tensor,
    img_ids: torch.Tensor,
    pos: _Text,
    neg: _Text | None,
    cfg_scale: float,
    sigmas: list[float],
    scheduler: Any,
    mu: float,
    inpaint: _Inpaint | None,
    seed: int,
    refs: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    import torch

    dtype = model.dtype
    n = x.shape[1]
    ids = img_ids if refs is None else torch.cat((img_ids, refs[1]), dim=1)

    def predict(x: torch.Tensor, t: float) -> torch.Tensor:
        tvec = torch.full((x.shape[0],), t, device=x.device, dtype=dtype)
        # reference tokens ride along on every call but are never stepped
        x_in = x if refs is None else torch.cat((x, refs[0]), dim=1)

        def run(text: _Text) -> torch.Tensor:
            return model(
                hidden_states=x_in.to(dtype),
                encoder_hidden_states=text.embeds.to(dtype),
                timestep=tvec,
                img_ids=ids,
                txt_ids=text.ids,
                return_dict=False,
            )[0][:, :n].float()

        pred = run(pos)
        if neg is not None:
            uncond = run(neg)
            pred = uncond + cfg_scale * (pred - uncond)
        return pred

    total = len(sigmas) - 1
    step: Callable[[int], None] = lambda i: ctx.progress(  # noqa: E731
        message="Denoising", step=i, total=total
    )
    if scheduler is None:  # clipped (img2img / inpaint): Euler on the unshifted sigmas
        for i, (t_curr, t_prev) in enumerate(itertools.pairwise(sigmas)):
            ctx.check_cancelled()
            x = x + (t_prev - t_curr) * predict(x, t_curr)
            if inpaint is not None:
                x = inpaint.merge(x, t_prev)
            step(i + 1)
        return x
    import numpy as np

    kwargs: dict[str, Any] = {"device": x.device}
    if "sigmas" in inspect.signature(scheduler.set_timesteps).parameters:
        scheduler.set_timesteps(
            sigmas=np.array(sigmas[:-1], dtype=np.float32).tolist(), mu=mu, **kwargs
        )
    else:
        scheduler.set_timesteps(num_inference_steps=total, **kwargs)
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(0)
    heun = hasattr(scheduler, "state_in_first_order")
    # LCM adds fresh noise each step; InvokeAI draws it unseeded (no two runs agree), we seed
    # it from the run's seed so a graph repeats.
    step_kw: dict[str, Any] = {}
    if "generator" in inspect.signature(scheduler.step).parameters:
        step_kw["generator"] = torch.Generator("cpu").manual_seed(seed)
    done = 0
    n_train = scheduler.config.num_train_timesteps
    for t in scheduler.timesteps:
        ctx.check_cancelled()
        first = scheduler.state_in_first_order if heun else True
        pred = predict(x, float(t) / n_train)
        x = scheduler.step(pred, t, x, return_dict=False, **step_kw)[0]
        if not heun or not first:
            done += 1
            step(done)
    return x


_MAX_PIXELS_ONE, _MAX_PIXELS_MANY = 2024**2, 1024**2  # InvokeAI's caps on reference size


def _reference_tokens(
    den: Flux2DenoiseNode,
    ctx: Context,
    vae: Any,
    bn_mean: torch.Tensor,
    bn_std: torch.Tensor,
    device: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference images as normalized packed tokens (1, n, 128) and ids (1, n, 4).

    Each image (shrunk to InvokeAI's pixel cap) is encoded to the mode of the VAE's latent
    distribution; image i gets time index 10 * (i + 1), as diffusers' Klein pipeline gives
    it, and InvokeAI's spatial tiling beside or below the previous ones.
    """
    import math

    import numpy as np
    import torch
    import torch.nn.functional as F
    from PIL import Image

    fields = den.kontext_conditioning
    fields = fields if isinstance(fields, list) else [fields]
    cap = _MAX_PIXELS_ONE if len(fields) == 1 else _MAX_PIXELS_MANY
    tokens, ids = [], []
    canvas_h = canvas_w = 0
    with torch.inference_mode():
        for i, field in enumerate(fields):
            pil = ctx.images.get_pil(field.image, mode="RGB")
            if pil.width * pil.height > cap:
                k = math.sqrt(cap / (pil.width * pil.height))
                pil = pil.resize(
                    (int(pil.width * k), int(pil.height * k)), Image.Resampling.LANCZOS
                )
            t = torch.from_numpy(np.asarray(pil, dtype=np.float32) / 255.0 * 2.0 - 1.0)
            t = t.permute(2, 0, 1)[None].to(device, vae.dtype)
            z = vae.encode(t).latent_dist.mode().float()
            h, w = z.shape[-2:]
            if h % 2 or w % 2:
                z = F.pad(z, (0, w % 2, 0, h % 2), mode="circular")
                h, w = z.shape[-2:]
            h_off = w_off = 0
            if i == 0:
                canvas_h, canvas_w = h, w
            elif canvas_h + h > canvas_w + w:
                w_off, canvas_w, canvas_h = canvas_w, canvas_w + w, max(canvas_h, h)
            else:
                h_off, canvas_h, canvas_w = canvas_h, canvas_h + h, max(canvas_w, w)
            pos = torch.zeros(h // 2, w // 2, 4, dtype=torch.long, device=device)
            pos[..., 0] = 10 + 10 * i
            pos[..., 1] = torch.arange(h // 2, device=device)[:, None] + h_off // 2
            pos[..., 2] = torch.arange(w // 2, device=device)[None, :] + w_off // 2
            tokens.append((sampling.pack(z) - bn_mean) / bn_std)
            ids.append(pos.reshape(1, -1, 4))
    return torch.cat(tokens, dim=1), torch.cat(ids, dim=1)
