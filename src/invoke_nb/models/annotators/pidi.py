"""PiDiNet (pixel difference network, ``table5_pidinet.pth``: the "carv4" layout with
compact dilation and spatial attention modules). Its pixel-difference convolutions are
plain convolutions with kernels rearranged from the stored 3x3 weights, so the stored
tensors are those of ordinary conv layers."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["PiDiNet", "from_state_dict"]

# difference type of the 16 layers: central, angular, radial, vanilla (repeated 4 times)
CARV4 = ["cd", "ad", "rd", "cv"] * 4
# angular difference: each tap minus its clockwise neighbour in the 3x3 ring
_CLOCKWISE = [3, 0, 1, 6, 4, 2, 7, 8, 5]
# radial difference: the 8 outer taps go to the 5x5 ring, minus themselves one step in
_OUTER = [0, 2, 4, 10, 14, 20, 22, 24]
_INNER = [6, 7, 8, 11, 13, 16, 17, 18]


def difference_conv(kind: str, x: torch.Tensor, w: torch.Tensor, groups: int) -> torch.Tensor:
    """A 3x3 pixel-difference convolution (stride 1, padding 'same') of ``kind``."""
    if kind == "cv":
        return F.conv2d(x, w, padding=1, groups=groups)
    if kind == "cd":  # sum of w * (neighbour - centre)
        centre = F.conv2d(x, w.sum(dim=(2, 3), keepdim=True), groups=groups)
        return F.conv2d(x, w, padding=1, groups=groups) - centre
    o, i = w.shape[:2]
    flat = w.reshape(o, i, 9)
    if kind == "ad":
        return F.conv2d(x, (flat - flat[:, :, _CLOCKWISE]).view_as(w), padding=1, groups=groups)
    if kind == "rd":
        big = w.new_zeros(o, i, 25)
        big[:, :, _OUTER] = flat[:, :, 1:]
        big[:, :, _INNER] = -flat[:, :, 1:]
        return F.conv2d(x, big.view(o, i, 5, 5), padding=2, groups=groups)
    raise ValueError(f"unknown pixel difference {kind!r}")


class _DiffConv(nn.Module):
    """Holds the stored 3x3 weight (key ``weight``) of a difference convolution."""

    def __init__(self, kind: str, cin: int, cout: int, groups: int = 1) -> None:
        super().__init__()
        self.kind, self.groups = kind, groups
        self.weight = nn.Parameter(torch.empty(cout, cin // groups, 3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return difference_conv(self.kind, x, self.weight, self.groups)


class _Block(nn.Module):
    """Depthwise difference conv, ReLU, pointwise conv, residual (2x pooled and 1x1
    projected when the stage changes width)."""

    def __init__(self, kind: str, cin: int, cout: int, down: bool) -> None:
        super().__init__()
        self.down = down
        if down:
            self.shortcut = nn.Conv2d(cin, cout, 1)
        self.conv1 = _DiffConv(kind, cin, cin, groups=cin)
        self.conv2 = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.down:
            x = F.max_pool2d(x, 2, 2)
        y = self.conv2(torch.relu(self.conv1(x)))
        return y + (self.shortcut(x) if self.down else x)


class _Dilations(nn.Module):
    """Compact dilation module: 1x1 squeeze then four dilated 3x3 convs summed."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 1)
        for n, d in enumerate((5, 7, 9, 11), start=1):
            setattr(self, f"conv2_{n}", nn.Conv2d(cout, cout, 3, padding=d, dilation=d, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(torch.relu(x))
        return sum(getattr(self, f"conv2_{n}")(x) for n in range(1, 5))


class _Attention(nn.Module):
    """Compact spatial attention: a sigmoid mask from two small convs scales the input."""

    def __init__(self, channels: int, mid: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, mid, 1)
        self.conv2 = nn.Conv2d(mid, 1, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.conv2(self.conv1(torch.relu(x))))


class _Reduce(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class PiDiNet(nn.Module):
    """Input: BGR images as 0-1 floats (NCHW); output: four side maps and the fused map,
    all sigmoid probabilities at the input size."""

    def __init__(self, width: int, dil: int, mid: int = 4) -> None:
        super().__init__()
        self.init_block = _DiffConv(CARV4[0], 3, width)
        widths = [width, 2 * width, 4 * width, 4 * width]
        layer, cin = 1, width
        for stage, cout in enumerate(widths, start=1):
            for n in range(1, 4 if stage == 1 else 5):
                down = stage > 1 and n == 1
                block = _Block(CARV4[layer], cin, cout, down)
                setattr(self, f"block{stage}_{n}", block)
                layer, cin = layer + 1, cout
        self.dilations = nn.ModuleList(_Dilations(c, dil) for c in widths)
        self.attentions = nn.ModuleList(_Attention(dil, mid) for _ in widths)
        self.conv_reduces = nn.ModuleList(_Reduce(dil) for _ in widths)
        self.classifier = nn.Conv2d(4, 1, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        size = x.shape[2:]
        h = self.init_block(x)
        sides = []
        for stage in range(1, 5):
            for n in range(1, 4 if stage == 1 else 5):
                h = getattr(self, f"block{stage}_{n}")(h)
            i = stage - 1
            e = self.conv_reduces[i](self.attentions[i](self.dilations[i](h)))
            sides.append(F.interpolate(e, size, mode="bilinear", align_corners=False))
        sides.append(self.classifier(torch.cat(sides, dim=1)))
        return [torch.sigmoid(s) for s in sides]


def from_state_dict(sd: dict[str, Any]) -> PiDiNet:
    """Width (60 published), dilation channels (24) and attention width read off the
    tensors."""
    net = PiDiNet(
        width=int(sd["init_block.weight"].shape[0]),
        dil=int(sd["dilations.0.conv1.weight"].shape[0]),
        mid=int(sd["attentions.0.conv1.weight"].shape[0]),
    )
    net.load_state_dict(sd, strict=True)
    return net
