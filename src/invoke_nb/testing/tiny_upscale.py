"""Tiny random ESRGAN / Real-ESRGAN upscalers in the real files' key layouts (offline,
milliseconds, tens of KB).

``esrgan`` is the original ESRGAN layout (``model.0.weight``, ``model.1.sub.0.RDB1...``);
``realesrgan`` is BasicSR's RRDBNet layout that Real-ESRGAN's ``RealESRGAN_x4plus.pth``
uses (``conv_first``, ``body.0.rdb1.conv1``, ``conv_body``, ``conv_up1``, ...). Both are the
same network; spandrel reads either.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["make_esrgan"]


def _to_basicsr(key: str, upsample_convs: list[int]) -> str:
    """Original ESRGAN key -> BasicSR RRDBNet key (x4: two up-convs, then hr, then last)."""
    m = re.fullmatch(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)", key)
    if m:
        return f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"
    m = re.fullmatch(r"model\.(\d+)(?:\.sub\.(\d+))?\.(weight|bias)", key)
    assert m, key
    index, sub, kind = int(m[1]), m[2], m[3]
    if index == 0:
        return f"conv_first.{kind}"
    if index == 1 and sub is not None:
        return f"conv_body.{kind}"
    names = [f"conv_up{i + 1}" for i in range(len(upsample_convs) - 2)] + ["conv_hr", "conv_last"]
    return f"{names[upsample_convs.index(index)]}.{kind}"


def make_esrgan(
    path: str | Path,
    *,
    scale: int = 4,
    num_filters: int = 8,
    num_blocks: int = 1,
    layout: str = "realesrgan",
    seed: int = 0,
) -> Path:
    """Write a random RRDBNet upscaler as a safetensors file and return its path."""
    import torch
    from safetensors.torch import save_file

    from invoke_nb.models.load_spandrel import import_spandrel

    import_spandrel()
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(seed)
    net = ESRGAN(
        in_nc=3, out_nc=3, num_filters=num_filters, num_blocks=num_blocks, scale=scale
    ).eval()
    with torch.no_grad():
        for p in net.parameters():  # small weights keep the output in a sensible range
            p.mul_(0.5)
    sd = {k: v.contiguous() for k, v in net.state_dict().items()}
    last = max(int(k.split(".")[1]) for k in sd)
    sd[f"model.{last}.bias"] = sd[f"model.{last}.bias"] + 0.5  # outputs around mid-grey
    if layout == "realesrgan":
        tails = sorted({int(k.split(".")[1]) for k in sd if not k.startswith("model.1.")} - {0})
        sd = {_to_basicsr(k, tails): v for k, v in sd.items()}
    elif layout != "esrgan":
        raise ValueError(f"layout must be 'esrgan' or 'realesrgan', not {layout!r}")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(sd, str(out))
    return out
