"""M-LSD line segment detector (``mlsd_large_512_fp32.pth``): a MobileNetV2 trunk (its first
14 layers, TFLite-style padding on strided convs, a fourth input channel of ones) and a
top-down decoder whose last 9 channels hold a line-centre heat map and the displacements to
both ends. Every width is read off the tensors."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["MLSD", "from_state_dict"]

# stride of each inverted-residual layer of the trunk (MobileNetV2's first five stages)
_STRIDES = [1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1]
_TAPS = (1, 3, 6, 10, 13)  # trunk layers whose outputs feed the decoder


def _shape(sd: dict[str, Any], key: str) -> tuple[int, ...]:
    return tuple(int(n) for n in sd[key].shape)


class _ConvBnRelu6(nn.Sequential):
    """Conv (no bias), batch norm, ReLU6; stride-2 convs pad one pixel right and bottom only,
    as TensorFlow's 'same' padding does."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> None:
        pad = 0 if stride == 2 else (k - 1) // 2
        conv = nn.Conv2d(cin, cout, k, stride, pad, groups=groups, bias=False)
        super().__init__(conv, nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 2:
            x = F.pad(x, (0, 1, 0, 1))
        return super().forward(x)


class _InvertedResidual(nn.Module):
    def __init__(self, cin: int, hidden: int, cout: int, stride: int, expand: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [_ConvBnRelu6(cin, hidden, 1)] if expand else []
        layers += [
            _ConvBnRelu6(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


def _seq(*mods: nn.Module) -> nn.Sequential:
    return nn.Sequential(*mods)


def _cbr(cin: int, cout: int, k: int, dilation: int = 1) -> nn.Sequential:
    pad = dilation * (k - 1) // 2
    return _seq(
        nn.Conv2d(cin, cout, k, padding=pad, dilation=dilation), nn.BatchNorm2d(cout), nn.ReLU()
    )


class _Merge(nn.Module):
    """Decoder block A: 1x1 conv both the skip (``a``) and the deeper map (``b``), upsample
    ``b`` twice (bilinear, corners aligned) unless told not to, concatenate."""

    def __init__(self, sd: dict[str, Any], prefix: str, upscale: bool) -> None:
        super().__init__()
        out2, in2 = _shape(sd, f"{prefix}.conv1.0.weight")[:2]
        out1, in1 = _shape(sd, f"{prefix}.conv2.0.weight")[:2]
        self.conv1, self.conv2, self.upscale = _cbr(in2, out2, 1), _cbr(in1, out1, 1), upscale

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        b = self.conv1(b)
        if self.upscale:
            b = F.interpolate(b, scale_factor=2.0, mode="bilinear", align_corners=True)
        return torch.cat((self.conv2(a), b), dim=1)


class _Refine(nn.Module):
    """Decoder block B: a residual 3x3 conv, then a 3x3 conv to the block's width."""

    def __init__(self, sd: dict[str, Any], prefix: str) -> None:
        super().__init__()
        cout, cin = _shape(sd, f"{prefix}.conv2.0.weight")[:2]
        self.conv1, self.conv2 = _cbr(cin, cin, 3), _cbr(cin, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x) + x)


class _Head(nn.Module):
    """Decoder block C: dilated 3x3, 3x3, then 1x1 to the output maps."""

    def __init__(self, sd: dict[str, Any], prefix: str) -> None:
        super().__init__()
        cout, cin = _shape(sd, f"{prefix}.conv3.weight")[:2]
        self.conv1, self.conv2 = _cbr(cin, cin, 3, dilation=5), _cbr(cin, cin, 3)
        self.conv3 = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(self.conv2(self.conv1(x)))


class _Trunk(nn.Module):
    def __init__(self, sd: dict[str, Any]) -> None:
        super().__init__()
        cout, cin = _shape(sd, "backbone.features.0.0.weight")[:2]
        layers: list[nn.Module] = [_ConvBnRelu6(cin, cout, 3, stride=2)]
        for i, stride in enumerate(_STRIDES, start=1):
            p = f"backbone.features.{i}.conv"
            expand = f"{p}.3.weight" in sd
            hidden = _shape(sd, f"{p}.0.0.weight")[0]
            out = _shape(sd, f"{p}.{2 if expand else 1}.weight")[0]
            layers.append(_InvertedResidual(cout, hidden, out, stride, expand))
            cout = out
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _TAPS:
                taps.append(x)
        return taps


class MLSD(nn.Module):
    """Input: RGB + a ones channel, in [-1, 1] (NCHW); output at half the input size: the
    last 9 decoder channels (0: centre logits, 1-4: end displacements)."""

    def __init__(self, sd: dict[str, Any]) -> None:
        super().__init__()
        self.backbone = _Trunk(sd)
        for n in (15, 17, 19, 21):
            setattr(self, f"block{n}", _Merge(sd, f"block{n}", upscale=n != 15))
            setattr(self, f"block{n + 1}", _Refine(sd, f"block{n + 1}"))
        self.block23 = _Head(sd, "block23")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c1, c2, c3, c4, c5 = self.backbone(x)
        x = c5
        for n, skip in zip((15, 17, 19, 21), (c4, c3, c2, c1), strict=True):
            x = getattr(self, f"block{n + 1}")(getattr(self, f"block{n}")(skip, x))
        return self.block23(x)[:, 7:]


def from_state_dict(sd: dict[str, Any]) -> MLSD:
    net = MLSD(sd)
    net.load_state_dict(sd, strict=True)
    return net
