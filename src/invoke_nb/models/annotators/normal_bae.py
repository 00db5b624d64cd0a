"""Normal BAE surface-normal network (``scannet.pt``): a TensorFlow-style EfficientNet
trunk (B5 when published: 'same' padding, swish, squeeze-excite, batch-norm eps 1e-3) and a
decoder that refines a 1/8-size normal map to full size with per-pixel 1x1 MLPs (the
inference path of the published model; training-time point sampling is left out). All
widths and block counts are read off the tensors."""

from __future__ import annotations

import math
import re
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["NormalBae", "from_state_dict"]

_STAGE_STRIDES = [1, 2, 2, 2, 1, 2, 1]  # first block of each EfficientNet stage
_BN_EPS = 1e-3  # TensorFlow's default, used by the tf_ EfficientNets


def _shape(sd: dict[str, Any], key: str) -> tuple[int, ...]:
    return tuple(int(n) for n in sd[key].shape)


class _SameConv(nn.Conv2d):
    """Conv without bias padded like TensorFlow's 'same': for stride 2 the extra pixel of
    padding goes right and bottom."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(
            cin, cout, k, stride, 0 if stride > 1 else k // 2, groups=groups, bias=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride[0] > 1:
            k, s = self.kernel_size[0], self.stride[0]
            pads = []
            for size in (x.shape[-1], x.shape[-2]):
                total = max((math.ceil(size / s) - 1) * s + k - size, 0)
                pads += [total // 2, total - total // 2]
            x = F.pad(x, pads)
        return super().forward(x)


def _bn(ch: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(ch, eps=_BN_EPS)


class _SqueezeExcite(nn.Module):
    def __init__(self, ch: int, reduced: int) -> None:
        super().__init__()
        self.conv_reduce = nn.Conv2d(ch, reduced, 1)
        self.conv_expand = nn.Conv2d(reduced, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.silu(self.conv_reduce(x.mean((2, 3), keepdim=True)))
        return x * torch.sigmoid(self.conv_expand(s))


class _Block(nn.Module):
    """Depthwise-separable (no expansion) or inverted-residual (``conv_pw`` expands first)
    block with squeeze-excite; residual when shape is kept."""

    def __init__(self, sd: dict[str, Any], p: str, stride: int) -> None:
        super().__init__()
        self.expand = f"{p}.conv_pwl.weight" in sd
        dw = _shape(sd, f"{p}.conv_dw.weight")
        mid, k = dw[0], dw[2]
        reduced = _shape(sd, f"{p}.se.conv_reduce.weight")[0]
        if self.expand:
            cin = _shape(sd, f"{p}.conv_pw.weight")[1]
            cout = _shape(sd, f"{p}.conv_pwl.weight")[0]
            self.conv_pw, self.bn1 = _SameConv(cin, mid, 1), _bn(mid)
            self.conv_dw, self.bn2 = _SameConv(mid, mid, k, stride, groups=mid), _bn(mid)
            self.se = _SqueezeExcite(mid, reduced)
            self.conv_pwl, self.bn3 = _SameConv(mid, cout, 1), _bn(cout)
        else:
            cin, cout = mid, _shape(sd, f"{p}.conv_pw.weight")[0]
            self.conv_dw, self.bn1 = _SameConv(mid, mid, k, stride, groups=mid), _bn(mid)
            self.se = _SqueezeExcite(mid, reduced)
            self.conv_pw, self.bn2 = _SameConv(mid, cout, 1), _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.expand:
            y = F.silu(self.bn1(self.conv_pw(x)))
            y = self.se(F.silu(self.bn2(self.conv_dw(y))))
            y = self.bn3(self.conv_pwl(y))
        else:
            y = self.se(F.silu(self.bn1(self.conv_dw(x))))
            y = self.bn2(self.conv_pw(y))
        return y + x if self.residual else y


class _EfficientNet(nn.Module):
    def __init__(self, sd: dict[str, Any], p: str) -> None:
        super().__init__()
        stem = _shape(sd, f"{p}.conv_stem.weight")
        self.conv_stem, self.bn1 = _SameConv(stem[1], stem[0], stem[2], 2), _bn(stem[0])
        counts: dict[int, int] = {}
        for k in sd:
            if m := re.match(rf"{re.escape(p)}\.blocks\.(\d+)\.(\d+)\.conv_dw\.weight$", k):
                counts[int(m[1])] = max(counts.get(int(m[1]), 0), int(m[2]) + 1)
        self.blocks = nn.Sequential(
            *(
                nn.Sequential(
                    *(
                        _Block(sd, f"{p}.blocks.{s}.{b}", _STAGE_STRIDES[s] if b == 0 else 1)
                        for b in range(counts[s])
                    )
                )
                for s in range(len(counts))
            )
        )
        head = _shape(sd, f"{p}.conv_head.weight")
        self.conv_head, self.bn2 = _SameConv(head[1], head[0], 1), _bn(head[0])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Outputs of stages 1, 2, 3 and 5 and of the head conv (before its norm)."""
        x = F.silu(self.bn1(self.conv_stem(x)))
        taps = []
        for i, stage in enumerate(self.blocks):
            x = stage(x)
            if i in (0, 1, 2, 4):
                taps.append(x)
        return [*taps, self.conv_head(x)]


class _Encoder(nn.Module):
    def __init__(self, sd: dict[str, Any]) -> None:
        super().__init__()
        self.original_model = _EfficientNet(sd, "encoder.original_model")


class _Up(nn.Module):
    """Upsample (bilinear, corners aligned) to the skip's size, concatenate, two 3x3
    conv + batch norm + leaky ReLU."""

    def __init__(self, sd: dict[str, Any], p: str) -> None:
        super().__init__()
        cout, cin = _shape(sd, f"{p}._net.0.weight")[:2]
        self._net = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1),
            nn.BatchNorm2d(cout),
            nn.LeakyReLU(),
            nn.Conv2d(cout, cout, 3, padding=1),
            nn.BatchNorm2d(cout),
            nn.LeakyReLU(),
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[2:], mode="bilinear", align_corners=True)
        return self._net(torch.cat([x, skip], dim=1))


def _mlp(sd: dict[str, Any], p: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in (0, 2, 4, 6):
        cout, cin = _shape(sd, f"{p}.{i}.weight")[:2]
        layers += [nn.Conv1d(cin, cout, 1)] + ([nn.ReLU()] if i < 6 else [])
    return nn.Sequential(*layers)


def _normalize(out: torch.Tensor) -> torch.Tensor:
    """Unit normal (channels 0-2) and concentration kappa = elu + 1.01 (channel 3)."""
    x, y, z, kappa = torch.split(out, 1, dim=1)
    norm = torch.sqrt(x**2.0 + y**2.0 + z**2.0) + 1e-10
    return torch.cat([x / norm, y / norm, z / norm, F.elu(kappa) + 1.01], dim=1)


class _Decoder(nn.Module):
    def __init__(self, sd: dict[str, Any]) -> None:
        super().__init__()
        ch = _shape(sd, "decoder.conv2.weight")[0]
        self.conv2 = nn.Conv2d(ch, ch, 1)
        for i in range(1, 5):
            setattr(self, f"up{i}", _Up(sd, f"decoder.up{i}"))
        cout, cin = _shape(sd, "decoder.out_conv_res8.weight")[:2]
        self.out_conv_res8 = nn.Conv2d(cin, cout, 3, padding=1)
        for r in (4, 2, 1):
            setattr(self, f"out_conv_res{r}", _mlp(sd, f"decoder.out_conv_res{r}"))

    @staticmethod
    def _refine(mlp: nn.Module, feat: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        up = [
            F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=True)
            for t in (feat, pred)
        ]
        x = torch.cat(up, dim=1)
        b, c, h, w = x.shape
        return _normalize(mlp(x.view(b, c, -1))).view(b, -1, h, w)

    def forward(self, taps: list[torch.Tensor]) -> torch.Tensor:
        s0, s1, s2, s4, head = taps
        d2 = self.up2(self.up1(self.conv2(head), s4), s2)
        d3 = self.up3(d2, s1)
        d4 = self.up4(d3, s0)
        out = _normalize(self.out_conv_res8(d2))
        out = self._refine(self.out_conv_res4, d2, out)
        out = self._refine(self.out_conv_res2, d3, out)
        return self._refine(self.out_conv_res1, d4, out)


class NormalBae(nn.Module):
    """Input: ImageNet-normalised RGB, sides multiples of 32 (NCHW); output: the full-size
    map (x, y, z in [-1, 1], kappa)."""

    def __init__(self, sd: dict[str, Any]) -> None:
        super().__init__()
        self.encoder = _Encoder(sd)
        self.decoder = _Decoder(sd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder.original_model(x))


def from_state_dict(sd: dict[str, Any]) -> NormalBae:
    """From the published file's ``model`` entry (``module.`` prefixes already gone)."""
    if "model" in sd and isinstance(sd["model"], dict):
        sd = {k.removeprefix("module."): v for k, v in sd["model"].items()}
    net = NormalBae(sd)
    net.load_state_dict(sd, strict=True)
    return net
