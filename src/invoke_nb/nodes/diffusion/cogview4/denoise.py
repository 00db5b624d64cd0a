"""``cogview4_denoise``: CogView4's flow-matching loop with classifier-free guidance.

One Euler step per schedule entry: ``x += (sigma_next - sigma) * v`` with
``v = v_neg + cfg * (v_pos - v_neg)``. img2img starts from ``s0 * noise + (1 - s0) * x0``;
with a denoise mask the kept region is put back on its noisy trajectory after every step
(InvokeAI's rectified-flow inpainting). ``seeding`` is ours: see :mod:`.sampling`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import torch

from invoke_nb.nodes.base import Input, InputField, node
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.cogview4.fields import (
    CogView4ConditioningField,
    TransformerField,
)
from invoke_nb.nodes.diffusion.cogview4.sampling import (
    diffusers_schedule,
    invokeai_schedule,
    make_noise,
)
from invoke_nb.nodes.diffusion.cogview4.steps import StepReporter
from invoke_nb.nodes.diffusion.cogview4.text_encoder import CogView4Conditioning
from invoke_nb.nodes.diffusion.cogview4.vae import WithBoard
from invoke_nb.nodes.diffusion.devices import execution_device
from invoke_nb.nodes.diffusion.fields import LatentsOutput
from invoke_nb.nodes.diffusion.sd.denoise import resize_mask
from invoke_nb.nodes.types import DenoiseMaskField, LatentsField

__all__ = ["CogView4DenoiseNode", "CogView4InputError"]


class CogView4InputError(ValueError):
    """Inputs of a CogView4 node that do not fit together; the message names node and field."""


def _repaint_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """InvokeAI's mask (1 keep, 0 repaint) as 1 = repaint, at latent size."""
    return 1.0 - resize_mask(mask, size)


@node(
    "cogview4_denoise",
    title="Denoise - CogView4",
    category="image",
    tags=["image", "cogview4"],
    version="1.0.0",
)
class CogView4DenoiseNode(WithBoard):
    """Run the denoising process with a CogView4 model."""

    latents: LatentsField | None = InputField(
        default=None, description="Latents tensor", input=Input.CONNECTION
    )
    denoise_mask: DenoiseMaskField | None = InputField(
        default=None,
        description="A mask of the region to apply the denoising process to. Values of 0.0 represent the regions to be fully denoised, and 1.0 represent the regions to be preserved.",
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
    transformer: TransformerField = InputField(
        description="CogView4 model (Transformer) to load",
        input=Input.CONNECTION,
        title="Transformer",
    )
    positive_conditioning: CogView4ConditioningField = InputField(
        description="Positive conditioning tensor", input=Input.CONNECTION
    )
    negative_conditioning: CogView4ConditioningField = InputField(
        description="Negative conditioning tensor", input=Input.CONNECTION
    )
    cfg_scale: float | list[float] = InputField(
        default=3.5,
        description="Classifier-Free Guidance scale",
        title="CFG Scale",
    )
    width: int = InputField(
        default=1024, multiple_of=32, description="Width of the generated image."
    )
    height: int = InputField(
        default=1024, multiple_of=32, description="Height of the generated image."
    )
    steps: int = InputField(default=25, gt=0, description="Number of steps to run")
    seed: int = InputField(default=0, description="Randomness seed for reproducibility.")
    seeding: Literal["invokeai", "diffusers"] = InputField(
        default="invokeai",
        description="Noise and schedule convention: InvokeAI's (default) or CogView4Pipeline's",
        extension=True,
    )

    def _fail(self, ctx: Context, field: str, problem: str) -> CogView4InputError:
        return CogView4InputError(f"node {ctx.node_id!r} (cogview4_denoise): {field}: {problem}")

    def _embeds(self, ctx: Context, field: str) -> torch.Tensor:
        ref = getattr(self, field)
        cond = ctx.conditioning.load(ref.conditioning_name)
        if not isinstance(cond, CogView4Conditioning):
            raise self._fail(ctx, field, f"not a CogView4 conditioning ({type(cond).__name__})")
        return cond.glm_embeds

    def _cfg(self, ctx: Context, n: int) -> list[float]:
        if isinstance(self.cfg_scale, list):
            if len(self.cfg_scale) != n:
                raise self._fail(
                    ctx,
                    "cfg_scale",
                    f"a list needs one value per step ({n}), got {len(self.cfg_scale)}",
                )
            return list(self.cfg_scale)
        return [float(self.cfg_scale)] * n

    def invoke(self, ctx: Context) -> LatentsOutput:
        import torch

        if self.width % 32 or self.height % 32:
            raise self._fail(
                ctx, "width/height", f"must be multiples of 32, got {self.width}x{self.height}"
            )
        if self.denoising_start > self.denoising_end:
            raise self._fail(ctx, "denoising_start", "must not be above denoising_end")
        rec = ctx.models.record(self.transformer.transformer)
        if rec.base != "cogview4":
            raise self._fail(
                ctx, "transformer", f"{rec.name!r} is a {rec.base} model, not cogview4"
            )
        if self.transformer.loras:
            raise self._fail(
                ctx, "transformer", "CogView4 LoRAs are not supported (nor by InvokeAI)"
            )
        pos = self._embeds(ctx, "positive_conditioning")
        neg = self._embeds(ctx, "negative_conditioning")
        init = ctx.tensors.load(self.latents) if self.latents is not None else None
        if init is None and self.denoising_start > 1e-5:
            raise self._fail(ctx, "denoising_start", "must be 0 when no latents are connected")
        if init is not None and tuple(init.shape[-2:]) != (self.height // 8, self.width // 8):
            raise self._fail(
                ctx,
                "latents",
                f"latents {tuple(init.shape)} do not match {self.width}x{self.height}",
            )
        if self.denoise_mask is not None and init is None:
            raise self._fail(ctx, "denoise_mask", "a mask needs latents to keep")
        device = execution_device(ctx)
        with torch.inference_mode(), ctx.models.load(self.transformer.transformer) as transformer:
            result = self._run(ctx, transformer, pos, neg, init, device)
        name = ctx.tensors.save(result)
        return LatentsOutput.of(name, result)

    def _run(
        self,
        ctx: Context,
        transformer: Any,
        pos: torch.Tensor,
        neg: torch.Tensor,
        init: torch.Tensor | None,
        device: str,
    ) -> torch.Tensor:
        import torch

        cfg = transformer.config
        dtype = next(transformer.parameters()).dtype
        seq_len = (self.height // 8) * (self.width // 8) // cfg.patch_size**2
        noise = make_noise(self.seed, cfg.in_channels, self.height, self.width, self.seeding)
        noise = noise.to(device)
        sched = None
        if self.seeding == "invokeai":
            ts, sigmas = invokeai_schedule(
                self.steps, self.denoising_start, self.denoising_end, seq_len
            )
            model_t = [t * 1000 for t in ts[:-1]]
            scales = self._cfg(ctx, len(ts) - 1)
            guided = True
        else:
            with ctx.models.load(self.transformer.transformer.with_submodel("scheduler")) as sc:
                sched, timesteps = diffusers_schedule(sc, self.steps, seq_len)
            all_sigmas = sched.sigmas.tolist()
            first = int(self.steps * self.denoising_start)
            sched.set_begin_index(first)
            last = self.steps - int(self.steps * (1 - self.denoising_end))
            model_t = timesteps[first:last].tolist()
            sigmas = all_sigmas[first : last + 1]
            scales = self._cfg(ctx, self.steps)[first:last]
            guided = all(s > 1 for s in scales)
        x0 = init.to(device, torch.float32) if init is not None else None
        latents = noise if x0 is None else sigmas[0] * noise + (1.0 - sigmas[0]) * x0
        repaint = None
        if self.denoise_mask is not None:
            mask = ctx.tensors.load(self.denoise_mask.mask_name)
            repaint = _repaint_mask(mask, tuple(latents.shape[-2:])).to(device)
        size = torch.tensor([[self.height, self.width]], dtype=dtype, device=device)
        crop = torch.tensor([[0, 0]], dtype=dtype, device=device)
        cond = pos.to(device, dtype)
        uncond = neg.to(device, dtype)
        total = len(model_t)
        report = StepReporter(ctx, "cogview4", device)
        for i, t in enumerate(model_t):
            ctx.check_cancelled()
            x = latents.to(dtype)
            tt = torch.full((1,), t, device=device)
            kw = dict(
                timestep=tt,
                original_size=size,
                target_size=size,
                crop_coords=crop,
                return_dict=False,
            )
            v = transformer(hidden_states=x, encoder_hidden_states=cond, **kw)[0]
            if guided:  # InvokeAI mixes in float32, CogView4Pipeline in the model's dtype
                v_neg = transformer(hidden_states=x, encoder_hidden_states=uncond, **kw)[0]
                if self.seeding == "invokeai":
                    v, v_neg = v.float(), v_neg.float()
                v = v_neg + scales[i] * (v - v_neg)
            if self.seeding == "diffusers":  # the scheduler scales v in its dtype, as there
                latents = sched.step(v, model_t[i], latents, return_dict=False)[0]
            else:
                latents = latents + (sigmas[i + 1] - sigmas[i]) * v.float()
            if self.seeding == "invokeai":
                latents = latents.to(dtype).float()
            if repaint is not None:
                s = sigmas[i + 1]
                keep = torch.where(repaint >= s + 1e-4, 1.0, 0.0)
                noisy = noise * s + (1.0 - s) * x0
                latents = latents * keep + noisy * (1.0 - keep)
            report.step(i + 1, total, latents)
        report.finish()
        return latents.to("cpu", torch.float32)
