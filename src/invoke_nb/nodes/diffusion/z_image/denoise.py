"""``z_image_denoise`` and ``z_image_denoise_meta``: Z-Image's flow-matching loop.

``"invokeai"`` seeding (default), InvokeAI 6.11's rule: float32 CPU noise from
``manual_seed(seed)``; sigmas ``exp(mu) / (exp(mu) + 1/t - 1)`` on ``t = 1 - i/steps``
with ``mu`` linear in the image's patch count (0.5 at 256, 1.15 at 4096), cut by index at
``denoising_start``/``end``; the model sees ``1 - sigma`` and predicts ``-v``; Euler steps
in our loop, Heun and LCM through diffusers' flow-matching schedulers.

``"diffusers"``: ``ZImagePipeline``'s schedule (the model's scheduler config, sigmas
``linspace(1, 1/steps, steps)``, ``scheduler.step``) and its draw order (img2img noise is
the generator's second draw, after the VAE's sample), Euler only.

With ``control``, diffusers' ``ZImageControlNetModel`` adds its hints to the transformer's
layers on the steps ``begin <= step/steps <= end`` (InvokeAI's rule).

Classifier-free guidance runs when ``guidance_scale`` > 1 and a negative prompt is
connected: ``v = v_neg + g * (v_pos - v_neg)`` (diffusers' ``guidance_scale`` is ``g - 1``).
"""

from __future__ import annotations

import inspect
import math
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import torch

from invoke_nb.nodes.base import Input, InputField, Node, node
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.denoise_meta import LatentsMetaOutput
from invoke_nb.nodes.diffusion.cogview4.fields import TransformerField
from invoke_nb.nodes.diffusion.cogview4.steps import StepReporter
from invoke_nb.nodes.diffusion.devices import execution_device
from invoke_nb.nodes.diffusion.fields import LatentsOutput, VAEField
from invoke_nb.nodes.diffusion.sd.denoise import resize_mask
from invoke_nb.nodes.diffusion.z_image.control import attached, control_latents, step_applies
from invoke_nb.nodes.diffusion.z_image.fields import ZImageConditioningField, ZImageControlField
from invoke_nb.nodes.diffusion.z_image.lora import z_image_lora_patch
from invoke_nb.nodes.diffusion.z_image.text_encoder import ZImageConditioning
from invoke_nb.nodes.types import DenoiseMaskField, LatentsField

__all__ = [
    "ZImageDenoiseMetaNode",
    "ZImageDenoiseNode",
    "ZImageInputError",
    "invokeai_sigmas",
]

Cond = ZImageConditioningField | list[ZImageConditioningField]


class ZImageInputError(ValueError):
    """Inputs of a Z-Image node that do not fit together; the message names node and field."""


def shift_mu(seq_len: int) -> float:
    """Z-Image's resolution shift: linear from (256, 0.5) to (4096, 1.15)."""
    m = (1.15 - 0.5) / (4096 - 256)
    return seq_len * m + (0.5 - m * 256)


def invokeai_sigmas(steps: int, seq_len: int, start: float, end: float) -> list[float]:
    """InvokeAI's sigma list (one more entry than steps run)."""
    mu = math.exp(shift_mu(seq_len))
    sigmas = []
    for i in range(steps + 1):
        t = 1.0 - i / steps
        sigmas.append(0.0 if t <= 0 else 1.0 if t >= 1 else mu / (mu + (1 / t - 1)))
    if start > 0 or end < 1:
        n = len(sigmas) - 1
        sigmas = sigmas[int(start * n) : int(end * n) + 1]
    return sigmas


def make_noise(seed: int, height: int, width: int, draws: int = 1) -> torch.Tensor:
    """The ``draws``-th float32 CPU draw of shape (1, 16, height/8, width/8) from ``seed``."""
    import torch

    gen = torch.Generator("cpu").manual_seed(seed)
    shape = (1, 16, height // 8, width // 8)
    for _ in range(draws - 1):
        torch.randn(shape, generator=gen, dtype=torch.float32)
    return torch.randn(shape, generator=gen, dtype=torch.float32)


@node(
    "z_image_denoise",
    title="Denoise - Z-Image",
    category="image",
    tags=["image", "z-image"],
    version="1.4.0",
)
class ZImageDenoiseNode(Node):
    """Run the denoising process with a Z-Image model."""

    latents: LatentsField | None = InputField(
        default=None, description="Latents tensor", input=Input.CONNECTION
    )
    denoise_mask: DenoiseMaskField | None = InputField(
        default=None,
        description="A mask of the region to apply the denoising process to.",
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
        description="Z-Image model (Transformer) to load",
        input=Input.CONNECTION,
        title="Transformer",
    )
    positive_conditioning: Cond = InputField(
        description="Positive conditioning tensor", input=Input.CONNECTION
    )
    negative_conditioning: Cond | None = InputField(
        default=None, description="Negative conditioning tensor", input=Input.CONNECTION
    )
    guidance_scale: float = InputField(
        default=1.0,
        ge=1.0,
        description="Guidance scale for classifier-free guidance. 1.0 = no CFG (recommended for Z-Image-Turbo).",
        title="Guidance Scale",
    )
    width: int = InputField(
        default=1024, multiple_of=16, description="Width of the generated image."
    )
    height: int = InputField(
        default=1024, multiple_of=16, description="Height of the generated image."
    )
    steps: int = InputField(
        default=8, gt=0, description="Number of denoising steps. 8 recommended for Z-Image-Turbo."
    )
    seed: int = InputField(default=0, description="Randomness seed for reproducibility.")
    control: ZImageControlField | None = InputField(
        default=None,
        description="Z-Image control conditioning for spatial control (Canny, HED, Depth, Pose, MLSD).",
        input=Input.CONNECTION,
    )
    vae: VAEField | None = InputField(
        default=None,
        description="VAE Required for control conditioning.",
        input=Input.CONNECTION,
    )
    scheduler: Literal["euler", "heun", "lcm"] = InputField(
        default="euler",
        description="Scheduler (sampler) for the denoising process.",
    )
    seeding: Literal["invokeai", "diffusers"] = InputField(
        default="invokeai",
        description="Noise and schedule convention: InvokeAI's (default) or ZImagePipeline's",
        extension=True,
    )

    def _fail(self, ctx: Context, field: str, problem: str) -> ZImageInputError:
        return ZImageInputError(f"node {ctx.node_id!r} ({ctx.node_type}): {field}: {problem}")

    def _embeds(self, ctx: Context, field: str) -> torch.Tensor:
        import torch

        value = getattr(self, field)
        items = value if isinstance(value, list) else [value]
        if not items:
            raise self._fail(ctx, field, "empty list")
        parts = []
        for item in items:
            if item.mask is not None:
                raise self._fail(ctx, field, "regional prompt masks are not supported yet")
            cond = ctx.conditioning.load(item.conditioning_name)
            if not isinstance(cond, ZImageConditioning):
                raise self._fail(ctx, field, f"not a Z-Image conditioning ({type(cond).__name__})")
            parts.append(cond.prompt_embeds)
        return torch.cat(parts, dim=0)

    def invoke(self, ctx: Context) -> LatentsOutput:
        import torch

        if self.control is not None and self.vae is None:
            raise self._fail(ctx, "vae", "a VAE is required to encode the control image")
        if self.width % 16 or self.height % 16:
            raise self._fail(
                ctx, "width/height", f"must be multiples of 16, got {self.width}x{self.height}"
            )
        rec = ctx.models.record(self.transformer.transformer)
        if rec.base != "z-image":
            raise self._fail(ctx, "transformer", f"{rec.name!r} is a {rec.base} model, not z-image")
        quantized = rec.format == "gguf_quantized" or str(rec.path).endswith(".gguf")
        if self.transformer.loras and quantized:
            raise self._fail(
                ctx, "transformer", "LoRAs on a GGUF-quantized model are not supported yet"
            )
        if self.seeding == "diffusers" and self.scheduler != "euler":
            raise self._fail(
                ctx, "scheduler", "seeding='diffusers' follows ZImagePipeline: euler only"
            )
        pos = self._embeds(ctx, "positive_conditioning")
        cfg = self.negative_conditioning is not None and not math.isclose(self.guidance_scale, 1.0)
        neg = self._embeds(ctx, "negative_conditioning") if cfg else None
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
        models = ctx.models
        with torch.inference_mode(), ExitStack() as stack:
            transformer = stack.enter_context(models.load(self.transformer.transformer))
            loras = [
                (stack.enter_context(models.load(x.lora)), x.weight) for x in self.transformer.loras
            ]
            stack.enter_context(
                z_image_lora_patch(
                    transformer, loras, "transformer", getattr(models, "cache", None)
                )
            )
            control = None
            if self.control is not None:
                controlnet = stack.enter_context(models.load(self.control.control_model))
                stack.enter_context(attached(controlnet, transformer))
                image = ctx.images.get_pil(self.control.image_name)
                with models.load(self.vae.vae) as vae:
                    lat = control_latents(
                        vae,
                        image,
                        self.width,
                        self.height,
                        controlnet.config.control_in_dim,
                        self.seeding,
                        device,
                    )
                control = (controlnet, lat.to(device, next(transformer.parameters()).dtype))
            result = self._run(ctx, transformer, pos, neg, init, device, control)
        name = ctx.tensors.save(result)
        return LatentsOutput.of(name, result)

    def _schedule(
        self, ctx: Context, seq_len: int, device: str
    ) -> tuple[Any, list[float], list[Any]]:
        """(scheduler or None, sigmas incl. the last, the steps to run as scheduler timesteps)."""
        if self.seeding == "diffusers":
            import torch
            from diffusers import FlowMatchEulerDiscreteScheduler

            with ctx.models.load(self.transformer.transformer.with_submodel("scheduler")) as cfg:
                sched = FlowMatchEulerDiscreteScheduler.from_config(cfg)
            c = sched.config
            m = (c.get("max_shift", 1.15) - c.get("base_shift", 0.5)) / (
                c.get("max_image_seq_len", 4096) - c.get("base_image_seq_len", 256)
            )
            mu = seq_len * m + c.get("base_shift", 0.5) - m * c.get("base_image_seq_len", 256)
            sigmas = torch.linspace(1.0, 1 / self.steps, self.steps).tolist()
            sched.set_timesteps(self.steps, device=device, sigmas=sigmas, mu=mu)
            first = int(self.steps - self.steps * (1.0 - self.denoising_start))
            last = self.steps - int(self.steps * (1.0 - self.denoising_end))
            sched.set_begin_index(first)
            return sched, sched.sigmas[first : last + 1].tolist(), list(sched.timesteps[first:last])
        sigmas = invokeai_sigmas(self.steps, seq_len, self.denoising_start, self.denoising_end)
        if self.scheduler == "euler":
            return None, sigmas, list(range(len(sigmas) - 1))
        from diffusers import FlowMatchEulerDiscreteScheduler, FlowMatchHeunDiscreteScheduler

        try:
            from diffusers import FlowMatchLCMScheduler
        except ImportError:  # older diffusers
            FlowMatchLCMScheduler = FlowMatchEulerDiscreteScheduler
        cls = {"heun": FlowMatchHeunDiscreteScheduler, "lcm": FlowMatchLCMScheduler}[self.scheduler]
        sched = cls(num_train_timesteps=1000, shift=1.0)
        if (
            self.scheduler != "lcm"
            and "sigmas" in inspect.signature(sched.set_timesteps).parameters
        ):
            sched.set_timesteps(sigmas=sigmas, device=device)
        else:
            sched.set_timesteps(num_inference_steps=len(sigmas) - 1, device=device)
        return sched, sigmas, list(sched.timesteps)

    def _run(
        self,
        ctx: Context,
        transformer: Any,
        pos: torch.Tensor,
        neg: torch.Tensor | None,
        init: torch.Tensor | None,
        device: str,
        control: tuple[Any, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        import torch

        dtype = next(transformer.parameters()).dtype
        seq_len = (self.height // 16) * (self.width // 16)
        sched, sigmas, steps = self._schedule(ctx, seq_len, device)
        draws = 2 if self.seeding == "diffusers" and init is not None else 1
        noise = make_noise(self.seed, self.height, self.width, draws).to(device)
        x0 = init.to(device, torch.float32) if init is not None else None
        if x0 is None:
            latents = noise
        elif self.add_noise:
            latents = sigmas[0] * noise + (1.0 - sigmas[0]) * x0
        else:
            latents = x0
        if len(sigmas) <= 1 or not steps:
            return latents.to("cpu", torch.float32)
        repaint = None
        if self.denoise_mask is not None:
            mask = ctx.tensors.load(self.denoise_mask.mask_name)
            repaint = (1.0 - resize_mask(mask, tuple(latents.shape[-2:]))).to(device)
        cond = [pos.to(device, dtype)]
        uncond = [neg.to(device, dtype)] if neg is not None else None
        total = len(sigmas) - 1

        def predict(
            x: list[Any], t: torch.Tensor, caption: list[Any], hinted: bool
        ) -> torch.Tensor:
            hints = None
            if hinted and control is not None:
                net, lat = control
                scale = self.control.control_context_scale
                hints = net(x, t, caption, [lat], conditioning_scale=scale)
            out = transformer(x, t, caption, controlnet_block_samples=hints, return_dict=False)
            return -out[0][0].float().squeeze(1)

        def velocity(sigma: float, step: int, timestep: Any = None) -> torch.Tensor:
            x = [latents.to(dtype).unsqueeze(2)[0]]
            if self.seeding == "diffusers":  # ZImagePipeline: (1000 - t) / 1000 in float32
                t = ((1000 - timestep.float()) / 1000).reshape(1).to(device)
            else:  # InvokeAI: 1 - sigma in the model's dtype
                t = torch.tensor([1.0 - sigma], device=device, dtype=dtype)
            hinted = control is not None and step_applies(
                step, total, self.control.begin_step_percent, self.control.end_step_percent
            )
            v = predict(x, t, cond, hinted)
            if uncond is not None:
                v_neg = predict(x, t, uncond, hinted)
                v = v_neg + self.guidance_scale * (v - v_neg)
            return v.unsqueeze(0)

        done = 0
        report = StepReporter(ctx, "z-image", device)
        for i, step in enumerate(steps):
            ctx.check_cancelled()
            if sched is None:
                s, s_next = sigmas[i], sigmas[i + 1]
                latents = latents + (s_next - s) * velocity(s, i)
                latents = latents.to(dtype).float()
            else:
                s = float(step) / sched.config.num_train_timesteps
                latents = sched.step(velocity(s, done, step), step, latents, return_dict=False)[0]
                s_next = sched.sigmas[i + 1].item() if i + 1 < len(sched.sigmas) else 0.0
            first_order = getattr(sched, "state_in_first_order", True)
            if repaint is not None:
                keep = torch.where(repaint >= s_next + 1e-4, 1.0, 0.0)
                latents = latents * keep + (noise * s_next + (1.0 - s_next) * x0) * (1.0 - keep)
            if first_order and done < total:
                done += 1
                report.step(done, total, latents)
        report.finish()
        return latents.to("cpu", torch.float32)


@node(
    "z_image_denoise_meta",
    title="Denoise - Z-Image + Metadata",
    category="latents",
    tags=["z-image", "latents", "denoise", "txt2img", "t2i", "t2l", "img2img", "i2i", "l2l"],
    version="1.0.0",
)
class ZImageDenoiseMetaNode(ZImageDenoiseNode):
    """Run denoising process with a Z-Image transformer model + metadata."""

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
            steps=self.steps,
            guidance=self.guidance_scale,
            denoising_start=self.denoising_start,
            denoising_end=self.denoising_end,
            scheduler=self.scheduler,
            model=self.transformer.transformer.model_dump(mode="json", exclude_none=True),
            seed=self.seed,
        )
        if self.transformer.loras:
            md["loras"] = [
                {"model": x.lora.model_dump(mode="json", exclude_none=True), "weight": x.weight}
                for x in self.transformer.loras
            ]
        return LatentsMetaOutput(
            latents=out.latents, width=out.width, height=out.height, metadata=md
        )
