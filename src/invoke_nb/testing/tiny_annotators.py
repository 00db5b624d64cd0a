"""Tiny random annotator networks in the published key layouts (HED, ...), saved as ``.pth``
pickles like the files of ``lllyasviel/Annotators``: a few KB each, built in milliseconds.

Run as a script to write them all to a folder (the reference maps in
tests/fixtures/preprocessors are made from these files by InvokeAI's own code).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

__all__ = [
    "ANNOTATOR_FILES",
    "make_hed",
    "make_lineart",
    "make_lineart_anime",
    "make_pidi",
    "write_annotator",
]


def make_hed(seed: int = 0) -> dict[str, Any]:
    """HED with stage widths 4, 4, 8, 8, 8 (published: 64..512) and the published layer
    counts; weights scaled so the side outputs are not all saturated."""
    import torch

    from invoke_nb.models.annotators.hed import HedNet

    torch.manual_seed(seed)
    net = HedNet([4, 4, 8, 8, 8], [2, 2, 3, 3, 3])
    with torch.no_grad():
        net.norm.copy_(torch.tensor([120.0, 110.0, 100.0]).view(1, 3, 1, 1))
        for p in net.parameters():
            if p.ndim == 4:
                p.mul_(3 / 60.0 if p.shape[1] == 3 else 3.0)
    return {k: v.contiguous() for k, v in net.state_dict().items()}


def make_pidi(seed: int = 0) -> dict[str, Any]:
    """PiDiNet with width 4 and 4 dilation channels (published: 60 and 24), wrapped as the
    published file is: ``{"state_dict": {"module.<key>": tensor}}``."""
    import torch

    from invoke_nb.models.annotators.pidi import PiDiNet

    torch.manual_seed(seed)
    net = PiDiNet(width=4, dil=4)
    with torch.no_grad():
        for p in net.parameters():
            if p.ndim == 4:
                p.copy_(torch.randn_like(p) * 0.3)
        net.classifier.weight.fill_(4.0)  # spread the fused map over the grey levels
        net.classifier.bias.fill_(0.5)
    return {"state_dict": {f"module.{k}": v.contiguous() for k, v in net.state_dict().items()}}


def make_lineart(seed: int = 0) -> dict[str, Any]:
    """Lineart generator with width 4 (published: 64) and one residual block (3)."""
    import torch

    from invoke_nb.models.annotators.lineart import LineartGenerator

    torch.manual_seed(seed)
    net = LineartGenerator(width=4, blocks=1)
    with torch.no_grad():
        net.model4[1].bias.add_(2.0)  # some pixels fall under the 12-level noise floor
    return {k: v.contiguous() for k, v in net.state_dict().items()}


def make_lineart_anime(seed: int = 0) -> dict[str, Any]:
    """Anime U-Net with ngf 2 (published: 64) and the published 8 levels, keys with the
    ``module.`` prefix the published file has."""
    import torch

    from invoke_nb.models.annotators.lineart_anime import lineart_anime_net

    torch.manual_seed(seed)
    net = lineart_anime_net(ngf=2, levels=8)
    return {f"module.{k}": v.contiguous() for k, v in net.state_dict().items()}


def _mlsd_template(div: int) -> dict[str, Any]:
    """Empty tensors with the shapes M-LSD's builder reads, at the published widths / div
    (the 16 output maps stay 16)."""
    import torch

    def w(cout: int, cin: int, k: int = 1) -> Any:
        return torch.empty(cout, cin, k, k)

    sd = {"backbone.features.0.0.weight": w(32 // div, 4, 3)}
    cin, i = 32 // div, 1
    for t, c, n in [(1, 16, 1), (6, 24, 2), (6, 32, 3), (6, 64, 4), (6, 96, 3)]:
        for _ in range(n):
            p, hidden, cout = f"backbone.features.{i}.conv", cin * t, c // div
            sd[f"{p}.0.0.weight"] = w(hidden, cin if t > 1 else 1, 1 if t > 1 else 3)
            sd[f"{p}.{2 if t > 1 else 1}.weight"] = w(cout, hidden)
            if t > 1:
                sd[f"{p}.3.weight"] = torch.empty(cout)
            cin, i = cout, i + 1
    d = 64 // div
    for n, skip, deep in [(15, 64, 96), (17, 32, d), (19, 24, d), (21, 16, d)]:
        sd[f"block{n}.conv1.0.weight"] = w(d, deep // div if n == 15 else deep)
        sd[f"block{n}.conv2.0.weight"] = w(d, skip // div)
        sd[f"block{n + 1}.conv2.0.weight"] = w(d, 2 * d, 3)
    sd["block23.conv3.weight"] = w(16, d)
    return sd


def make_mlsd(seed: int = 0) -> dict[str, Any]:
    """M-LSD at a quarter of the published widths, with random batch-norm statistics and the
    displacement outputs scaled so some segments pass the default 20-pixel length."""
    import torch

    from invoke_nb.models.annotators.mlsd import MLSD

    torch.manual_seed(seed)
    net = MLSD(_mlsd_template(4))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn_like(m.running_mean) * 0.1)
                m.running_var.copy_(torch.rand_like(m.running_var) + 0.5)
        # the random trunk leaves little spatial contrast: amplify it into the centre
        # logits (7) and end displacements (8-11), then set their biases on a seeded noise
        # image so displacements centre on zero and a tenth of the centres score > 0.1
        net.block23.conv3.weight[7:12].mul_(1500.0)
        net.block23.conv3.bias[7:12].fill_(0.0)
        noise = torch.rand(1, 4, 64, 64, generator=torch.Generator().manual_seed(seed)) * 2 - 1
        noise[:, 3] = 1 / 127.5 - 1  # the constant fourth channel
        out = net.eval()(noise)[0]
        net.block23.conv3.bias[8:12].sub_(out[1:5].mean(dim=(1, 2)))
        net.block23.conv3.bias[7].sub_(torch.quantile(out[0].flatten(), 0.9) + 2.2)
    return {k: v.contiguous() for k, v in net.state_dict().items()}


def _divisible(v: float, divisor: int = 8) -> int:
    """EfficientNet's channel rounding (to a multiple, never more than 10% down)."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


# EfficientNet stages: (kind, repeats, kernel, expansion, channels)
_EFFNET = [
    ("ds", 1, 3, 1, 16),
    ("ir", 2, 3, 6, 24),
    ("ir", 2, 5, 6, 40),
    ("ir", 3, 3, 6, 80),
    ("ir", 3, 5, 6, 112),
    ("ir", 4, 5, 6, 192),
    ("ir", 1, 3, 6, 320),
]


def _normal_bae_template(width: float, depth: float, dec: int) -> dict[str, Any]:
    """Shapes of Normal BAE with an EfficientNet of multipliers ``width``/``depth`` (B5 when
    published: 1.6/2.2) and a decoder ``dec`` times narrower than published."""
    import math

    import torch

    def w(cout: int, cin: int, k: int = 1) -> Any:
        return torch.empty(cout, cin, k, k)

    p = "encoder.original_model"
    stem = _divisible(32 * width)
    sd = {f"{p}.conv_stem.weight": w(stem, 3, 3)}
    cin, taps = stem, []
    for s, (kind, reps, k, e, c) in enumerate(_EFFNET):
        cout = _divisible(c * width)
        for b in range(math.ceil(reps * depth)):
            q = f"{p}.blocks.{s}.{b}"
            mid = _divisible(cin * e) if kind == "ir" else cin
            red = max(1, int(cin * 0.25 + 0.5))
            if kind == "ir":
                sd[f"{q}.conv_pw.weight"] = w(mid, cin)
                sd[f"{q}.conv_pwl.weight"] = w(cout, mid)
            else:
                sd[f"{q}.conv_pw.weight"] = w(cout, mid)
            sd[f"{q}.conv_dw.weight"] = w(mid, 1, k)
            sd[f"{q}.se.conv_reduce.weight"] = w(red, mid)
            cin = cout
        taps.append(cout)
    head = _divisible(1280 * width)
    sd[f"{p}.conv_head.weight"] = w(head, cin)
    d = [1024 // dec, 512 // dec, 256 // dec, 128 // dec]
    sd["decoder.conv2.weight"] = w(head, head)
    ups = [(head, taps[4]), (d[0], taps[2]), (d[1], taps[1]), (d[2], taps[0])]
    for i, (deep, skip) in enumerate(ups, start=1):
        sd[f"decoder.up{i}._net.0.weight"] = w(d[i - 1], deep + skip, 3)
    sd["decoder.out_conv_res8.weight"] = w(4, d[1], 3)
    for r, feat in ((4, d[1]), (2, d[2]), (1, d[3])):
        for i, (co, ci) in enumerate([(d[3], feat + 4), (d[3], d[3]), (d[3], d[3]), (4, d[3])]):
            sd[f"decoder.out_conv_res{r}.{2 * i}.weight"] = torch.empty(co, ci, 1)
    return sd


def make_normal_bae(seed: int = 0) -> dict[str, Any]:
    """Normal BAE with a quarter-width, shallow EfficientNet (multipliers 0.25/0.3) and a
    decoder 16 times narrower, random batch-norm statistics, saved as the published file
    is: ``{"model": {"module.<key>": tensor}}``."""
    import torch

    from invoke_nb.models.annotators.normal_bae import NormalBae

    torch.manual_seed(seed)
    net = NormalBae(_normal_bae_template(0.25, 0.3, 16))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn_like(m.running_mean) * 0.1)
                m.running_var.copy_(torch.rand_like(m.running_var) + 0.5)
        # no biases in the output layers, so the normals' direction follows the image
        dec = net.decoder
        for m in [dec.out_conv_res8, *dec.out_conv_res4, *dec.out_conv_res2, *dec.out_conv_res1]:
            if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d)):
                m.bias.zero_()
    return {"model": {f"module.{k}": v.contiguous() for k, v in net.state_dict().items()}}


def make_pbr(seed: int = 0) -> dict[str, Any]:
    """A 1x RRDB (old ESRGAN layout, as the PBR material-map files) with 4 features, one
    RRDB block and the published growth width of 32 (published: 32 features, 12 blocks)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    sd: dict[str, Any] = {}

    def conv(key: str, cout: int, cin: int) -> None:
        sd[f"{key}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * (1.0 / (3 * cin**0.5))
        sd[f"{key}.bias"] = torch.randn(cout, generator=g) * 0.05

    conv("model.0", 4, 3)
    for r in (1, 2, 3):
        for n, cin in enumerate((4, 36, 68, 100, 132), start=1):
            conv(f"model.1.sub.0.RDB{r}.conv{n}.0", 32 if n < 5 else 4, cin)
    conv("model.1.sub.1", 4, 4)
    conv("model.2", 4, 4)
    conv("model.4", 3, 4)
    sd["model.4.bias"] += 0.5  # centre the outputs in the 0-1 range kept
    return sd


# file name in lllyasviel/Annotators -> builder of its tiny stand-in
ANNOTATOR_FILES = {
    "ControlNetHED.pth": make_hed,
    "table5_pidinet.pth": make_pidi,
    "sk_model.pth": make_lineart,
    "sk_model2.pth": lambda seed=0: make_lineart(seed + 1),
    "netG.pth": make_lineart_anime,
    "scannet.pt": make_normal_bae,
}
# file name in InvokeAI/pbr-material-maps -> builder of its tiny stand-in
PBR_FILES = {
    "normal_map_generator.safetensors": make_pbr,
    "franken_map_generator.safetensors": lambda seed=0: make_pbr(seed + 1),
}
# file name in lllyasviel/ControlNet -> builder of its tiny stand-in
CONTROLNET_FILES = {
    "annotator/ckpts/mlsd_large_512_fp32.pth": make_mlsd,
}


def write_annotator(folder: str | Path, filename: str, seed: int = 0) -> Path:
    """Save the tiny stand-in for ``filename`` into ``folder`` (a torch.save pickle, or
    safetensors for ``.safetensors`` names, as the published files are)."""
    import torch

    dest = Path(folder) / filename
    dest.parent.mkdir(parents=True, exist_ok=True)
    make = {**ANNOTATOR_FILES, **CONTROLNET_FILES, **PBR_FILES}[filename]
    if filename.endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file(make(seed), str(dest))
    else:
        torch.save(make(seed), dest)
    return dest


if __name__ == "__main__":
    for name in ANNOTATOR_FILES:
        print(write_annotator(sys.argv[1], name))
    for name in CONTROLNET_FILES:
        print(write_annotator(Path(sys.argv[1]) / "ControlNet", name))
    for name in PBR_FILES:
        print(write_annotator(Path(sys.argv[1]) / "pbr-material-maps", name))
