"""UNet patches a denoise run applies and undoes: seamless (circular) padding of the
convolutions and FreeU's backbone/skip scaling."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


log = logging.getLogger("invoke_nb.nodes.latents")


@contextmanager
def seamless(model: torch.nn.Module, axes: list[str]):
    """Make ``model``'s convolutions wrap around on ``axes`` ("x", "y") inside the block.

    Compile-safe: each padded convolution gets, once, a forward that reads its axes from a
    plain attribute; the block only flips that attribute. A compiled UNet therefore sees the
    same code every time (one specialisation per axes setting), never a swapped function.
    """
    import torch

    if not axes:
        yield model
        return
    setting = ("x" in axes, "y" in axes)
    convs = [
        m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and any(p > 0 for p in _pad(m))
    ]
    for mod in convs:
        if not hasattr(mod, "_invoke_nb_wrap"):
            mod._conv_forward = _wrapping_forward(mod, mod._conv_forward)  # type: ignore[method-assign]
        mod._invoke_nb_wrap = setting
    try:
        yield model
    finally:
        for mod in convs:
            mod._invoke_nb_wrap = (False, False)


def _pad(mod: torch.nn.Conv2d) -> tuple[int, int]:
    p = mod.padding
    return (p, p) if isinstance(p, int) else (int(p[0]), int(p[1]))  # type: ignore[arg-type]


def _wrapping_forward(mod: torch.nn.Conv2d, plain: Any) -> Any:
    import torch.nn.functional as F

    ph, pw = _pad(mod)

    def forward(inp: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        x, y = mod._invoke_nb_wrap
        if not (x or y):
            return plain(inp, weight, bias)
        inp = F.pad(inp, (pw, pw, 0, 0), mode="circular" if x else "constant")
        inp = F.pad(inp, (0, 0, ph, ph), mode="circular" if y else "constant")
        return F.conv2d(inp, weight, bias, mod.stride, 0, mod.dilation, mod.groups)

    return forward


@contextmanager
def freeu(unet: Any, config: Any):
    """FreeU's backbone/skip scales on ``unet`` inside the block (diffusers' implementation)."""
    if config is None:
        yield unet
        return
    unet.enable_freeu(s1=config.s1, s2=config.s2, b1=config.b1, b2=config.b2)
    try:
        yield unet
    finally:
        unet.disable_freeu()


# ---------------------------------------------------------------------------------------
