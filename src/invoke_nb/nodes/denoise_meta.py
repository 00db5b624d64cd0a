"""``denoise_latents_meta``: SD denoising that also reports what it did as metadata.

InvokeAI's "Denoise + Metadata" runs the plain denoise node and adds its settings (size,
steps, CFG, scheduler, model, LoRAs, seed, adapters) to the metadata passing through, so a
workflow can save the image with them without a ``core_metadata`` node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from invoke_nb.nodes.base import Input, InputField, OutputField, node, output
from invoke_nb.nodes.diffusion.fields import LatentsOutput
from invoke_nb.nodes.diffusion.sd.latents import DenoiseLatentsNode

if TYPE_CHECKING:
    from invoke_nb.nodes.context import Context

__all__ = ["LatentsMetaOutput"]


@output("latents_meta_output")
class LatentsMetaOutput(LatentsOutput):
    """Latents, their image size, and metadata."""

    metadata: dict[str, Any] = OutputField(description="Metadata Dict")


def _dumps(items: Any) -> list[dict[str, Any]]:
    items = items if isinstance(items, list) else [items]
    return [
        i.model_dump(mode="json", exclude_none=True) if isinstance(i, BaseModel) else dict(i)
        for i in items
    ]


@node(
    "denoise_latents_meta",
    title="Denoise - SD1.5, SDXL + Metadata",
    category="latents",
    tags=["latents", "denoise", "txt2img", "t2i", "t2l", "img2img", "i2i", "l2l"],
    version="1.1.1",
)
class DenoiseLatentsMetaNode(DenoiseLatentsNode):
    """Denoises like ``denoise_latents`` and adds its settings to the incoming metadata."""

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
            cfg_scale=self.cfg_scale,
            cfg_rescale_multiplier=self.cfg_rescale_multiplier,
            denoising_start=self.denoising_start,
            denoising_end=self.denoising_end,
            scheduler=self.scheduler,
            model=self.unet.unet.model_dump(mode="json", exclude_none=True),
        )
        for key, value in (
            ("controlnets", self.control),
            ("ipAdapters", self.ip_adapter),
            ("t2iAdapters", self.t2i_adapter),
        ):
            if value:
                md[key] = _dumps(value)
        if self.unet.loras:
            md["loras"] = [
                {"model": x.lora.model_dump(mode="json", exclude_none=True), "weight": x.weight}
                for x in self.unet.loras
            ]
        if self.noise is not None:
            md["seed"] = self.noise.seed
        return LatentsMetaOutput(
            latents=out.latents, width=out.width, height=out.height, metadata=md
        )
