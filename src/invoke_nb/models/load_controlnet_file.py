"""Load a single-file SD1/SD2/SDXL ControlNet (LDM or diffusers key names) without the Hub.

The config comes from the record's ``config_path`` (a folder holding a ControlNetModel
``config.json``: the one the install built from the tensors' shapes, or the user's), else
from the shapes alone (:mod:`invoke_nb.models.controlnet_config`). LDM keys are renamed by
diffusers' own ``convert_controlnet_checkpoint``; two parts it leaves out are renamed here:
SDXL's size embedding (``label_emb`` -> ``add_embedding``) and hint encoders whose depth is
not SD's (diffusers assumes the conv_out at ``input_hint_block.14``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invoke_nb.models.controlnet_config import controlnet_config, controlnet_layout, hint_indices

if TYPE_CHECKING:
    import torch

    from invoke_nb.models.records import ModelRecord

__all__ = ["ldm_controlnet_to_diffusers", "load_controlnet_file", "record_controlnet_config"]


def record_controlnet_config(record: ModelRecord, shapes: dict[str, tuple[int, ...]]) -> Any:
    """The ControlNetModel config for ``record``: its ``config_path`` folder's, else inferred."""
    if record.config_path:
        folder = Path(record.config_path).expanduser()
        for candidate in (folder / "config.json", folder / "controlnet" / "config.json"):
            if candidate.is_file():
                cfg = json.loads(candidate.read_text(encoding="utf-8"))
                if cfg.get("_class_name") == "ControlNetModel":
                    return cfg
        raise ValueError(f"config_path {str(folder)!r} holds no ControlNetModel config.json")
    return controlnet_config(shapes, record.base)


def ldm_controlnet_to_diffusers(
    sd: dict[str, torch.Tensor], cfg: dict[str, Any], prefix: str = ""
) -> dict[str, torch.Tensor]:
    """LDM ControlNet tensors (``input_blocks``, ``zero_convs``, ``input_hint_block``...)
    under ``prefix`` -> ControlNetModel names."""
    from diffusers.loaders.single_file_utils import convert_controlnet_checkpoint

    own = {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}
    out = convert_controlnet_checkpoint(own, cfg)
    out = {k: v for k, v in out.items() if v is not None and not k.startswith("controlnet_cond_")}
    shapes = {k: tuple(v.shape) for k, v in own.items()}
    hint = hint_indices(shapes, "")
    names = ["conv_in"] + [f"blocks.{j}" for j in range(len(hint) - 2)] + ["conv_out"]
    for index, name in zip(hint, names, strict=True):
        for param in ("weight", "bias"):
            out[f"controlnet_cond_embedding.{name}.{param}"] = own[
                f"input_hint_block.{index}.{param}"
            ]
    for ldm, ours in (("label_emb.0.0", "add_embedding.linear_1"),
                      ("label_emb.0.2", "add_embedding.linear_2")):  # fmt: skip
        for param in ("weight", "bias"):
            if f"{ldm}.{param}" in own:
                out[f"{ours}.{param}"] = own[f"{ldm}.{param}"]
    return out


def load_controlnet_file(record: ModelRecord, path: Path, dtype: torch.dtype) -> Any:
    """The ``ControlNetModel`` of a single-file ControlNet record."""
    from accelerate import init_empty_weights
    from diffusers import ControlNetModel

    from invoke_nb.models.load_annotators import read_state_dict

    sd = read_state_dict(path)
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    cfg = record_controlnet_config(record, shapes)
    layout, prefix = controlnet_layout(shapes)
    tensors = ldm_controlnet_to_diffusers(sd, cfg, prefix) if layout == "ldm" else sd
    with init_empty_weights():
        model = ControlNetModel.from_config(cfg)
    wanted = set(model.state_dict())
    missing, unexpected = sorted(wanted - set(tensors)), sorted(set(tensors) - wanted)
    if missing or unexpected:
        raise ValueError(
            f"the ControlNet tensors do not fit its {record.base} config: "
            f"{len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} unexpected "
            f"(e.g. {unexpected[:3]})"
        )
    model.load_state_dict(tensors, strict=True, assign=True)
    return model.to(dtype=dtype).eval()
