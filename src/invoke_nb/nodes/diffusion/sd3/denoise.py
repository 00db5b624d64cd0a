"""``sd3_denoise``: txt2img, img2img (``latents`` + ``denoising_start``/``end``) and inpaint.

InvokeAI's SD3 sampler by default; ``seeding="diffusers"`` reproduces diffusers' SD3
pipelines (see :mod:`invoke_nb.nodes.diffusion.sd3.sampling`). Classifier-free guidance
runs negative and positive as one batch of two, as both do. Sizes the transformer cannot
place (beyond its position-embedding table) and mismatched inputs are refused before the
loop, naming the field.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Literal

from invoke_nb.nodes.base import Input, InputField, Node, node
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.devices import execution_device
from invoke_nb.nodes.diffusion.fields import LatentsOutput, TransformerField
from invoke_nb.nodes.diffusion.sd.denoise import resize_mask
from invoke_nb.nodes.diffusion.sd3 import sampling
from invoke_nb.nodes.diffusion.sd3.fields import (
    SD3Conditioning,
    SD3ConditioningField,
    SD3InputError,
    check_part,
)
from invoke_nb.nodes.diffusion.sd3.text_encoder import SD3_T5_MAX_SEQ_LEN
from invoke_nb.nodes.types import BoardField, DenoiseMaskField, LatentsField

if TYPE_CHECKING:
    import torch

__all__ = ["SD3DenoiseNode"]

# SD3/SD3.5 VAE factors, used when the model's VAE config cannot be read
_SCALING, _SHIFT = 1.5305, 0.0609


@node(
    "sd3_denoise", title="Denoise - SD3", category="image", tags=["image", "sd3"], version="1.1.1"
)
class SD3DenoiseNode(Node):
    """Run denoising process with a SD3 model."""

    board: BoardField | None = InputField(
        default=None, description="The board to save the image to", input=Input.DIRECT
    )
    metadata: dict[str, Any] | None = InputField(
        default=None,
        description="Optional metadata to be saved with the image",
        input=Input.CONNECTION,
    )
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
        description="SD3 model (MMDiTX) to load", input=Input.CONNECTION, title="Transformer"
    )
    positive_conditioning: SD3ConditioningField = InputField(
        description="Positive conditioning tensor", input=Input.CONNECTION
    )
    negative_conditioning: SD3ConditioningField = InputField(
        description="Negative conditioning tensor", input=Input.CONNECTION
    )
    cfg_scale: float | list[float] = InputField(
        default=3.5, description="Classifier-Free Guidance scale", title="CFG Scale"
    )
    width: int = InputField(
        default=1024, multiple_of=16, description="Width of the generated image."
    )
    height: int = InputField(
        default=1024, multiple_of=16, description="Height of the generated image."
    )
    steps: int = InputField(default=10, gt=0, description="Number of steps to run")
    seed: int = InputField(default=0, description="Randomness seed for reproducibility.")
    seeding: Literal["invokeai", "diffusers"] = InputField(
        default="invokeai",
        description="invoke-nb: 'invokeai' reproduces InvokeAI's images; 'diffusers' reproduces diffusers' pipelines",
        extension=True,
    )

    # -- inputs -----------------------------------------------------------------------------
    def _conditioning(self, ctx: Context, field: str, dim: int, device: Any, dtype: Any):
        import torch

        ref: SD3ConditioningField = getattr(self, field)
        try:
            cond = ctx.conditioning.load(ref.conditioning_name)
        except Exception as exc:
            raise SD3InputError(ctx, field, f"no conditioning {ref.conditioning_name!r}") from exc
        if not isinstance(cond, SD3Conditioning):
            raise SD3InputError(
                ctx, field, f"{type(cond).__name__} is not SD3 conditioning (use sd3_text_encoder)"
            )
        t5 = cond.t5_embeds
        if t5 is None:
            t5 = torch.zeros((1, SD3_T5_MAX_SEQ_LEN, dim))
        if t5.shape[-1] != dim:
            raise SD3InputError(
                ctx, field, f"T5 width {t5.shape[-1]} differs from the transformer's {dim}"
            )
        clip = torch.cat([cond.clip_l_embeds, cond.clip_g_embeds], dim=-1)
        if clip.shape[-1] > dim:
            raise SD3InputError(
                ctx, field, f"CLIP width {clip.shape[-1]} exceeds the transformer's {dim}"
            )
        clip = torch.nn.functional.pad(clip.to(device, dtype), (0, dim - clip.shape[-1]))
        embeds = torch.cat([clip, t5.to(device, dtype)], dim=-2)
        pooled = torch.cat([cond.clip_l_pooled_embeds, cond.clip_g_pooled_embeds], dim=-1)
        return embeds, pooled.to(device, dtype)

    def _check(self, ctx: Context) -> Any:
        rec = check_part(ctx, "transformer", self.transformer.transformer, "transformer")
        if self.transformer.loras:
            raise SD3InputError(ctx, "transformer", "LoRAs on SD3 are not supported")
        if self.denoising_start > self.denoising_end:
            raise SD3InputError(
                ctx,
                "denoising_start",
                f"{self.denoising_start} is after denoising_end {self.denoising_end}",
            )
        if self.latents is None and self.denoising_start > 1e-5:
            raise SD3InputError(ctx, "denoising_start", "must be 0 without input latents")
        if self.denoise_mask is not None and self.latents is None:
            raise SD3InputError(ctx, "denoise_mask", "an inpaint mask needs input latents")
        if any(s <= 0 for s in self._cfg_list(1)):
            raise SD3InputError(ctx, "cfg_scale", f"must be positive, got {self.cfg_scale}")
        return rec

    def _cfg_list(self, n: int) -> list[float]:
        if isinstance(self.cfg_scale, list):
            return list(self.cfg_scale)
        return [float(self.cfg_scale)] * n

    def _check_size(self, ctx: Context, cfg: dict[str, Any] | None) -> None:
        """Refuse sizes beyond the transformer's position-embedding table (before loading)."""
        if not cfg or not cfg.get("pos_embed_max_size"):
            return
        limit = cfg["pos_embed_max_size"] * cfg.get("patch_size", 2) * 8
        for field in ("width", "height"):
            if getattr(self, field) > limit:
                raise SD3InputError(
                    ctx, field, f"{getattr(self, field)} px exceeds this model's {limit} px"
                )

    def _vae_factors(self, ctx: Context) -> tuple[float, float]:
        """The model's VAE scaling and shift factors, from its config (no weights loaded)."""
        cfg = _config_of(ctx.models.record(self.transformer.transformer), "vae") or {}
        return float(cfg.get("scaling_factor", _SCALING)), float(
            cfg.get("shift_factor", _SHIFT) or 0.0
        )

    # -- run --------------------------------------------------------------------------------
    def invoke(self, ctx: Context) -> LatentsOutput:
        import torch

        rec = self._check(ctx)
        device = execution_device(ctx)
        init = ctx.tensors.load(self.latents) if self.latents is not None else None
        if init is not None and tuple(init.shape[-2:]) != (self.height // 8, self.width // 8):
            raise SD3InputError(
                ctx,
                "latents",
                f"latents of {init.shape[-1] * 8}x{init.shape[-2] * 8} px do not match "
                f"width x height {self.width}x{self.height}",
            )
        mask = None
        if self.denoise_mask is not None:
            mask = 1.0 - resize_mask(
                ctx.tensors.load(self.denoise_mask.mask_name), tuple(init.shape[-2:])
            )
        self._check_size(ctx, _config_of(rec, "transformer"))
        with torch.inference_mode(), ctx.models.load(self.transformer.transformer) as model:
            self._check_size(ctx, dict(model.config))
            cfg = model.config
            dtype = next(model.parameters()).dtype
            dim = cfg.joint_attention_dim
            neg, neg_pooled = self._conditioning(ctx, "negative_conditioning", dim, device, dtype)
            pos, pos_pooled = self._conditioning(ctx, "positive_conditioning", dim, device, dtype)
            embeds = torch.cat([neg, pos])
            pooled = torch.cat([neg_pooled, pos_pooled])
            if self.seeding == "diffusers":
                out = self._diffusers(ctx, model, embeds, pooled, init, mask, device, dtype)
            else:
                out = self._invokeai(ctx, model, embeds, pooled, init, mask, device, dtype)
        result = out.detach().to("cpu")
        return LatentsOutput.of(ctx.tensors.save(result), result)

    def _predict(self, model: Any, latents: Any, t: Any, embeds: Any, pooled: Any, cfg: float):
        import torch

        batch = torch.cat([latents] * 2)
        pred = model(
            hidden_states=batch,
            timestep=t.expand(batch.shape[0]),
            encoder_hidden_states=embeds,
            pooled_projections=pooled,
            return_dict=False,
        )[0]
        uncond, cond = pred.chunk(2)
        return uncond + cfg * (cond - uncond)

    def _invokeai(self, ctx, model, embeds, pooled, init, mask, device, dtype) -> torch.Tensor:
        import torch

        ts = sampling.clip_schedule(self.steps, self.denoising_start, self.denoising_end)
        n = len(ts) - 1
        cfg = self._cfg_list(n)
        if len(cfg) != n:
            raise SD3InputError(ctx, "cfg_scale", f"a list needs one value per step ({n})")
        channels = model.config.in_channels
        noise = sampling.invokeai_noise(self.seed, channels, self.height, self.width)
        noise = noise.to(device, dtype)
        if init is not None:
            init = init.to(device, dtype)
            latents = ts[0] * noise + (1.0 - ts[0]) * init
        else:
            latents = noise
        if n < 1:
            return latents
        repaint = mask.to(device, dtype) if mask is not None else None
        for i, (t, t_prev) in enumerate(itertools.pairwise(ts)):
            ctx.check_cancelled()
            timestep = torch.tensor([t * 1000], device=device)
            pred = self._predict(model, latents, timestep, embeds, pooled, cfg[i])
            latents = (latents.float() + (t_prev - t) * pred.float()).to(latents.dtype)
            if repaint is not None:
                latents = sampling.merge_inpaint(latents, init, noise, repaint, t_prev)
            ctx.progress(step=i + 1, total=n, message="Denoising")
        return latents

    def _diffusers(self, ctx, model, embeds, pooled, init, mask, device, dtype) -> torch.Tensor:
        scaling, shift = self._vae_factors(ctx)
        with ctx.models.load(self.transformer.transformer.with_submodel("scheduler")) as config:
            patch = model.config.patch_size
            seq = (self.height // 8 // patch) * (self.width // 8 // patch)
            sched = sampling.flow_scheduler(dict(config), self.steps, seq, device)
        start = (
            sampling.diffusers_start_index(self.steps, self.denoising_start)
            if init is not None
            else 0
        )
        stop = self.steps - sampling.diffusers_start_index(self.steps, 1.0 - self.denoising_end)
        timesteps = sched.timesteps[start:stop]
        sched.set_begin_index(start)
        cfg = self._cfg_list(len(timesteps))
        if len(cfg) != len(timesteps):
            raise SD3InputError(
                ctx, "cfg_scale", f"a list needs one value per step ({len(timesteps)})"
            )
        shape = (1, model.config.in_channels, self.height // 8, self.width // 8)
        noise = sampling.diffusers_noise(self.seed, shape, dtype).to(device)
        if init is not None:
            init = (init.to(device).float() - shift * scaling).to(dtype)  # diffusers' space
            latents = sched.scale_noise(init, timesteps[:1], noise) if len(timesteps) else init
        else:
            latents = noise
        repaint = mask.to(device, dtype) if mask is not None else None
        guided = max(cfg, default=1.0) > 1.0
        for i, t in enumerate(timesteps):
            ctx.check_cancelled()
            if guided:
                pred = self._predict(model, latents, t, embeds, pooled, cfg[i])
            else:  # the pipeline runs the positive prompt alone when guidance is off
                pred = model(
                    hidden_states=latents,
                    timestep=t.expand(1),
                    encoder_hidden_states=embeds[1:],
                    pooled_projections=pooled[1:],
                    return_dict=False,
                )[0]
            latents = sched.step(pred, t, latents, return_dict=False)[0]
            if repaint is not None:
                sigma_next = float(sched.sigmas[sched.step_index])
                latents = sampling.merge_inpaint(latents, init, noise, repaint, sigma_next)
            ctx.progress(step=i + 1, total=len(timesteps), message="Denoising")
        return latents.float() + shift * scaling  # InvokeAI's (unshifted) latents, in fp32


def _config_of(rec: Any, part: str) -> dict[str, Any] | None:
    """``part``'s config.json in the model's folder (or a single file's config folder)."""
    import json
    from pathlib import Path

    for root in (rec.path, rec.config_path):
        if not root:
            continue
        for cfg in (Path(root) / part / "config.json", Path(root) / "config.json"):
            if cfg.is_file():
                data = json.loads(cfg.read_text(encoding="utf-8"))
                if part != "transformer" or "joint_attention_dim" in data:
                    return data
    return None
