"""LaMa (large-mask inpainting) networks of any width, built with spandrel's architecture.

spandrel recognises LaMa state dicts but always builds the full-size big-lama generator;
here the width (``ngf``) and the number of residual blocks are read from the tensors, so
the published big-lama (ngf 64, 18 blocks) and small test networks load alike.
"""

from __future__ import annotations

import re
from typing import Any

from invoke_nb.models.errors import ModelLoadError
from invoke_nb.models.load_spandrel import import_spandrel

__all__ = ["is_lama", "lama_from_state_dict", "make_lama"]

_FIRST = "model.model.1.ffc.convl2l.weight"


def is_lama(keys: Any) -> bool:
    """Whether tensor names are LaMa's (``model.model.*`` or ``generator.model.*``)."""
    return any(k in keys for k in (_FIRST, "generator.model.1.ffc.convl2l.weight"))


def _build(in_nc: int, out_nc: int, ngf: int, n_blocks: int) -> Any:
    import_spandrel()
    from spandrel.architectures.LaMa import LaMa
    from spandrel.architectures.LaMa.__arch.LaMa import FFCResNetGenerator

    net = LaMa(in_nc=in_nc, out_nc=out_nc) if (ngf, n_blocks) == (64, 18) else None
    if net is None:
        import torch

        net = LaMa.__new__(LaMa)  # LaMa() would first build a full-size generator
        torch.nn.Module.__init__(net)
        net.model = FFCResNetGenerator(in_nc, out_nc, ngf=ngf, n_blocks=n_blocks)
    return net


def lama_from_state_dict(state_dict: dict[str, Any], label: str = "model") -> Any:
    """A LaMa network (``forward(image, mask)``, both in [0, 1], mask 1 = fill) in eval
    mode."""
    sd = {k.replace("generator.model", "model.model"): v for k, v in state_dict.items()}
    if _FIRST not in sd:
        raise ModelLoadError(f"{label}: not a LaMa state dict (no {_FIRST})")
    blocks = {int(m[1]) for k in sd if (m := re.match(r"model\.model\.(\d+)\.conv1\.", k))}
    ngf, in_nc = sd[_FIRST].shape[:2]
    last = max(int(m[1]) for k in sd if (m := re.match(r"model\.model\.(\d+)\.", k)))
    out_nc = sd[f"model.model.{last}.weight"].shape[0]
    net = _build(int(in_nc), int(out_nc), int(ngf), len(blocks))
    try:
        net.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise ModelLoadError(f"{label}: LaMa weights do not fit: {e}") from e
    return net.eval()


def make_lama(ngf: int = 8, n_blocks: int = 1, seed: int = 0) -> dict[str, Any]:
    """A random LaMa state dict in the published layout (for tests: ngf 8 is ~0.2 MB)."""
    import torch

    torch.manual_seed(seed)
    net = _build(4, 3, ngf, n_blocks)
    return {k: v.contiguous() for k, v in net.state_dict().items()}
