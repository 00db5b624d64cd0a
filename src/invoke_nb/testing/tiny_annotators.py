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


# file name in lllyasviel/Annotators -> builder of its tiny stand-in
ANNOTATOR_FILES = {
    "ControlNetHED.pth": make_hed,
    "table5_pidinet.pth": make_pidi,
    "sk_model.pth": make_lineart,
    "sk_model2.pth": lambda seed=0: make_lineart(seed + 1),
    "netG.pth": make_lineart_anime,
}


def write_annotator(folder: str | Path, filename: str, seed: int = 0) -> Path:
    """Save the tiny stand-in for ``filename`` into ``folder`` (as torch.save pickles)."""
    import torch

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(ANNOTATOR_FILES[filename](seed), out / filename)
    return out / filename


if __name__ == "__main__":
    for name in ANNOTATOR_FILES:
        print(write_annotator(sys.argv[1], name))
