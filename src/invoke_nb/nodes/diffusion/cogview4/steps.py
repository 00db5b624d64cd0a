"""Per-step progress of the transformer families' loops, with latent previews when asked.

The host sets ``preview_every`` when something shows previews; the picture is made on the
device from the family's latent-to-RGB map and handed out once its copy has landed
(:class:`~invoke_nb.nodes.diffusion.preview.LatentPreviews`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from invoke_nb.nodes.diffusion.preview import LatentPreviews

__all__ = ["StepReporter"]


class StepReporter:
    """``step(n, total, latents)`` after each step, ``finish()`` after the loop."""

    def __init__(self, ctx: Any, base: str, device: Any) -> None:
        self._ctx = ctx
        every = getattr(ctx.services, "preview_every", 0) if ctx.services.emit else 0
        self._previews = LatentPreviews(base, device, every) if every else None
        self._where = (0, 0)

    def step(self, n: int, total: int, latents: torch.Tensor) -> None:
        self._where = (n, total)
        image = None
        if self._previews is not None:
            if self._previews.due(n, total):
                self._previews.submit(latents)
            image = self._previews.take()
        self._ctx.progress(step=n, total=total, message="Denoising", image=image)

    def finish(self) -> None:
        """Hand out the last step's picture once its copy has landed."""
        last = self._previews.take(wait=True) if self._previews is not None else None
        if last is not None:
            self._ctx.progress(
                step=self._where[0], total=self._where[1], message="Denoising", image=last
            )
