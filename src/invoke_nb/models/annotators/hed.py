"""HED soft-edge network (ControlNet's Apache-2.0 re-implementation, ``ControlNetHED.pth``):
five VGG-like stages, each projected to one edge logit map."""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

__all__ = ["HedNet", "from_state_dict"]


class _Stage(nn.Module):
    """3x3 conv + ReLU layers (after an optional 2x max-pool) and a 1x1 projection to one
    channel, which is one of the five side outputs."""

    def __init__(self, cin: int, cout: int, layers: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            *(nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1) for i in range(layers))
        )
        self.projection = nn.Conv2d(cout, 1, 1)

    def forward(self, x: torch.Tensor, pool: bool) -> tuple[torch.Tensor, torch.Tensor]:
        if pool:
            x = nn.functional.max_pool2d(x, 2, 2)
        for conv in self.convs:
            x = torch.relu(conv(x))
        return x, self.projection(x)


class HedNet(nn.Module):
    """Input: 0-255 RGB floats (NCHW); output: the five side logits, coarse ones smaller."""

    def __init__(self, widths: list[int], layers: list[int]) -> None:
        super().__init__()
        self.norm = nn.Parameter(torch.zeros(1, 3, 1, 1))
        cins = [3, *widths[:-1]]
        for i, (cin, cout, n) in enumerate(zip(cins, widths, layers, strict=True), start=1):
            setattr(self, f"block{i}", _Stage(cin, cout, n))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = x - self.norm
        sides = []
        for i in range(1, 6):
            h, side = getattr(self, f"block{i}")(h, pool=i > 1)
            sides.append(side)
        return sides


def from_state_dict(sd: dict[str, Any]) -> HedNet:
    """Widths and layer counts read off the tensors (64..512 and 2,2,3,3,3 when published)."""
    widths, layers = [], []
    for i in range(1, 6):
        idx = [int(m[1]) for k in sd if (m := re.match(rf"block{i}\.convs\.(\d+)\.weight$", k))]
        widths.append(int(sd[f"block{i}.convs.0.weight"].shape[0]))
        layers.append(max(idx) + 1)
    net = HedNet(widths, layers)
    net.load_state_dict(sd, strict=True)
    return net
