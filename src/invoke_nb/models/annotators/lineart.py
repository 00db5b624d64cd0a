"""Lineart generator (``sk_model.pth`` fine, ``sk_model2.pth`` coarse): a CycleGAN-style
ResNet generator, 7x7 stem, two stride-2 convs down, residual blocks, two transposed convs
up, 7x7 head with a sigmoid. Instance norms carry no weights."""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

__all__ = ["LineartGenerator", "from_state_dict"]


def _norm_relu(ch: int) -> list[nn.Module]:
    return [nn.InstanceNorm2d(ch), nn.ReLU(inplace=True)]


class _Residual(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(ch, ch, 3),
            *_norm_relu(ch),
            nn.ReflectionPad2d(1),
            nn.Conv2d(ch, ch, 3),
            nn.InstanceNorm2d(ch),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class LineartGenerator(nn.Module):
    """Input: RGB 0-1 floats (NCHW); output: one 0-1 channel (1 = no line)."""

    def __init__(self, width: int, blocks: int, cin: int = 3, cout: int = 1) -> None:
        super().__init__()
        w1, w2, w4 = width, 2 * width, 4 * width
        self.model0 = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(cin, w1, 7), *_norm_relu(w1))
        self.model1 = nn.Sequential(
            nn.Conv2d(w1, w2, 3, stride=2, padding=1),
            *_norm_relu(w2),
            nn.Conv2d(w2, w4, 3, stride=2, padding=1),
            *_norm_relu(w4),
        )
        self.model2 = nn.Sequential(*(_Residual(w4) for _ in range(blocks)))
        up = {"stride": 2, "padding": 1, "output_padding": 1}
        self.model3 = nn.Sequential(
            nn.ConvTranspose2d(w4, w2, 3, **up),
            *_norm_relu(w2),
            nn.ConvTranspose2d(w2, w1, 3, **up),
            *_norm_relu(w1),
        )
        self.model4 = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(w1, cout, 7), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for part in (self.model0, self.model1, self.model2, self.model3, self.model4):
            x = part(x)
        return x


def from_state_dict(sd: dict[str, Any]) -> LineartGenerator:
    """Width (64 published) and residual block count (3) read off the tensors."""
    stem = sd["model0.1.weight"]
    blocks = {int(m[1]) for k in sd if (m := re.match(r"model2\.(\d+)\.", k))}
    net = LineartGenerator(
        width=int(stem.shape[0]),
        blocks=len(blocks),
        cin=int(stem.shape[1]),
        cout=int(sd["model4.1.weight"].shape[0]),
    )
    net.load_state_dict(sd, strict=True)
    return net
