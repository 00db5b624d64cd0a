"""Cheap latent -> RGB previews for progress events (no VAE: one 4x3 linear map per family).

The factors are the widely published least-squares fits of each family's latent channels to
RGB. Previews are opt-in (a host asks for one every N steps when something shows them): the
map runs on the execution device, the small uint8 result is copied to the host without
blocking, and the picture is handed out once the copy has landed (at the latest one step
later), so the denoise loop never waits for the device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PIL import Image

if TYPE_CHECKING:
    import torch

__all__ = ["LatentPreviews", "latents_preview"]

_SD1 = (
    [
        [0.3444, 0.1385, 0.0670],
        [0.1247, 0.4027, 0.1494],
        [-0.3192, 0.2513, 0.2103],
        [-0.1307, -0.1874, -0.7445],
    ],
    [0.0, 0.0, 0.0],
)
_SDXL = (
    [
        [0.3651, 0.4232, 0.4341],
        [-0.2533, -0.0042, 0.1068],
        [0.1076, 0.1111, -0.0362],
        [-0.3165, -0.2492, -0.2188],
    ],
    [0.1084, -0.0175, -0.0011],
)
_FLUX = (  # 16 latent channels (FLUX.1's VAE), no bias
    [
        [-0.0412, 0.0149, 0.0521],
        [0.0056, 0.0291, 0.0768],
        [0.0342, -0.0681, -0.0427],
        [-0.0258, 0.0092, 0.0463],
        [0.0863, 0.0784, 0.0547],
        [-0.0017, 0.0402, 0.0158],
        [0.0501, 0.1058, 0.1152],
        [-0.0209, -0.0218, -0.0329],
        [-0.0314, 0.0083, 0.0896],
        [0.0851, 0.0665, -0.0472],
        [-0.0534, 0.0238, -0.0024],
        [0.0452, -0.0026, 0.0048],
        [0.0892, 0.0831, 0.0881],
        [-0.1117, -0.0304, -0.0789],
        [0.0027, -0.0479, -0.0043],
        [-0.1146, -0.0827, -0.0598],
    ],
    [0.0, 0.0, 0.0],
)
_FACTORS = {"sd-1": _SD1, "sd-2": _SD1, "sdxl": _SDXL, "sdxl-refiner": _SDXL, "flux": _FLUX}


def _rgb(latents: torch.Tensor, weights: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    import torch

    lat = latents[0].detach().to(torch.float32)  # (4, h, w)
    rgb = torch.einsum("chw,cr->hwr", lat, weights) + bias
    return ((rgb + 1.0) * 127.5).clamp(0, 255).to(torch.uint8)


def _factors(base: str, device: Any) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    weights, bias = _FACTORS.get(base, _SD1)
    return (
        torch.tensor(weights, dtype=torch.float32, device=device),
        torch.tensor(bias, dtype=torch.float32, device=device),
    )


def latents_preview(latents: torch.Tensor, base: str = "sd-1") -> Image.Image:
    """An RGB image (latent size, i.e. 1/8 of the output) from the first latent of a batch."""
    w, b = _factors(base, latents.device)
    return Image.fromarray(_rgb(latents, w, b).cpu().numpy(), mode="RGB")


class LatentPreviews:
    """Previews every ``every`` steps (0 = none), computed on the device, copied async."""

    def __init__(self, base: str, device: Any, every: int) -> None:
        import torch

        self.every = max(int(every), 0)
        self._device = torch.device(device)
        self._factors: tuple[torch.Tensor, torch.Tensor] | None = None
        self._pending: tuple[torch.Tensor, Any] | None = None
        self._base = base

    def due(self, step: int, total: int) -> bool:
        """Whether ``step`` (1-based) gets a preview."""
        return bool(self.every) and (step % self.every == 0 or step == total)

    def submit(self, latents: torch.Tensor) -> None:
        """Start a preview of ``latents``; an older one not yet handed out is replaced."""
        import torch

        if self._factors is None:  # one host-to-device copy per run, not per step
            self._factors = _factors(self._base, self._device)
        rgb = _rgb(latents, *self._factors)
        event = None
        if self._device.type == "cuda":
            host = rgb.to("cpu", non_blocking=True)  # into pinned memory, asynchronously
            event = torch.cuda.Event()
            event.record()
        else:  # CPU: no copy; MPS: its copies to the host are not safe to read early
            host = rgb.to("cpu")
        self._pending = (host, event)

    def take(self, *, wait: bool = False) -> Image.Image | None:
        """The latest preview whose copy has landed (``wait``: block for it), else ``None``."""
        if self._pending is None:
            return None
        host, event = self._pending
        if event is not None and not event.query():
            if not wait:
                return None
            event.synchronize()
        self._pending = None
        return Image.fromarray(host.numpy(), mode="RGB")
