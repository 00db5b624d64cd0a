"""Anime lineart network (``netG.pth``): a pix2pix U-Net of 8 levels (4x4 stride-2 convs
down, transposed convs up, skip connections by concatenation) with weightless instance
norms and a tanh output. Levels nest as ``model.model.<i>.model...``, as stored."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["UNetLevel", "from_state_dict", "lineart_anime_net"]


def _norm(ch: int) -> nn.Module:
    return nn.InstanceNorm2d(ch, affine=False, track_running_stats=False)


class UNetLevel(nn.Module):
    """One level: down (4x4, stride 2), the inner levels, up (transposed 4x4, stride 2);
    inner levels return their input concatenated with their output."""

    def __init__(
        self, outer: int, inner: int, sub: UNetLevel | None, cin: int | None = None
    ) -> None:
        super().__init__()
        self.outermost = cin is not None
        down = nn.Conv2d(cin or outer, inner, 4, stride=2, padding=1)
        up_in = inner if sub is None else 2 * inner
        up = nn.ConvTranspose2d(up_in, outer, 4, stride=2, padding=1)
        if self.outermost:
            layers = [down, sub, nn.ReLU(True), up, nn.Tanh()]
        elif sub is None:
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True), up, _norm(outer)]
        else:
            layers = [nn.LeakyReLU(0.2, True), down, _norm(inner), sub]
            layers += [nn.ReLU(True), up, _norm(outer)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.model(x)
        return y if self.outermost else torch.cat([x, y], 1)


def lineart_anime_net(ngf: int, levels: int, cin: int = 3, cout: int = 1) -> nn.Module:
    """The U-Net: widths ngf, 2ngf, 4ngf, then 8ngf for every deeper level. Input: RGB in
    [-1, 1] with sides a multiple of 2**levels; output: one channel in [-1, 1]."""
    level = UNetLevel(8 * ngf, 8 * ngf, None)
    for _ in range(levels - 5):
        level = UNetLevel(8 * ngf, 8 * ngf, level)
    for outer in (4 * ngf, 2 * ngf, ngf):
        level = UNetLevel(outer, 2 * outer, level)
    return _Root(UNetLevel(cout, ngf, level, cin=cin))


class _Root(nn.Module):
    """Holds the outermost level under ``model`` (the stored key prefix)."""

    def __init__(self, model: UNetLevel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def from_state_dict(sd: dict[str, Any]) -> nn.Module:
    """ngf (64 published) and the level count (8) read off the tensors."""
    first = sd["model.model.0.weight"]
    levels, prefix = 1, "model.model.1."  # the outermost level, then each nested one
    while prefix + "model.1.weight" in sd:
        levels, prefix = levels + 1, prefix + "model.3."
    last = sd["model.model.3.weight"]
    net = lineart_anime_net(int(first.shape[0]), levels, int(first.shape[1]), int(last.shape[1]))
    net.load_state_dict(sd, strict=True)
    return net
