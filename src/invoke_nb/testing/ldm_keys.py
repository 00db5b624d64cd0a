"""Rename diffusers state dicts to the original Stable Diffusion (LDM) checkpoint layout.

Single-file checkpoints (A1111, civitai downloads) use the CompVis key names; tests need
such files to exercise ``from_single_file``. The rules below follow the LDM module layout:
UNet ``input_blocks``/``middle_block``/``output_blocks``, VAE ``down``/``mid``/``up``,
the text encoder under ``cond_stage_model.transformer``.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["controlnet_to_ldm", "diffusers_to_ldm", "unet_to_ldm", "vae_to_ldm"]

_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "time_emb_proj": "emb_layers.1",
    "conv_shortcut": "skip_connection",
}


def _resnet(rest: str) -> str:
    head, _, tail = rest.partition(".")
    return f"{_RESNET.get(head, head)}.{tail}"


def unet_to_ldm(sd: dict[str, torch.Tensor], cfg: dict[str, Any]) -> dict[str, torch.Tensor]:
    """UNet2DConditionModel keys -> ``model.diffusion_model.*`` keys."""
    per = cfg["layers_per_block"]
    n = len(cfg["block_out_channels"])
    up_has_attn = ["CrossAttn" in t for t in cfg["up_block_types"]]
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        p = key.split(".")
        if key.startswith("time_embedding.linear_1"):
            new = "time_embed.0." + p[-1]
        elif key.startswith("time_embedding.linear_2"):
            new = "time_embed.2." + p[-1]
        elif key.startswith("conv_in."):
            new = "input_blocks.0.0." + p[-1]
        elif key.startswith("conv_norm_out."):
            new = "out.0." + p[-1]
        elif key.startswith("conv_out."):
            new = "out.2." + p[-1]
        elif key.startswith("add_embedding.linear_1"):
            new = "label_emb.0.0." + p[-1]
        elif key.startswith("add_embedding.linear_2"):
            new = "label_emb.0.2." + p[-1]
        elif p[0] == "down_blocks":
            i, kind, j = int(p[1]), p[2], int(p[3])
            rest = ".".join(p[4:])
            if kind == "resnets":
                new = f"input_blocks.{(per + 1) * i + j + 1}.0.{_resnet(rest)}"
            elif kind == "attentions":
                new = f"input_blocks.{(per + 1) * i + j + 1}.1.{rest}"
            else:  # downsamplers.0.conv
                new = f"input_blocks.{(per + 1) * (i + 1)}.0.op.{p[-1]}"
        elif p[0] == "mid_block":
            kind, j = p[1], int(p[2])
            rest = ".".join(p[3:])
            if kind == "resnets":
                new = f"middle_block.{2 * j}.{_resnet(rest)}"
            else:
                new = f"middle_block.1.{rest}"
        elif p[0] == "up_blocks":
            i, kind, j = int(p[1]), p[2], int(p[3])
            rest = ".".join(p[4:])
            if kind == "resnets":
                new = f"output_blocks.{(per + 1) * i + j}.0.{_resnet(rest)}"
            elif kind == "attentions":
                new = f"output_blocks.{(per + 1) * i + j}.1.{rest}"
            else:  # upsamplers.0.conv
                slot = 2 if up_has_attn[i] else 1
                new = f"output_blocks.{(per + 1) * i + per}.{slot}.conv.{p[-1]}"
        else:
            raise KeyError(f"no LDM name for UNet key {key!r}")
        out["model.diffusion_model." + new] = value
    del n
    return out


def controlnet_to_ldm(
    sd: dict[str, torch.Tensor], cfg: dict[str, Any], *, prefix: str = ""
) -> dict[str, torch.Tensor]:
    """ControlNetModel keys -> lllyasviel's layout (``prefix`` ``""`` as in the v1.1 files,
    ``"control_model."`` as in v1.0): the UNet-encoder part named as the UNet's, plus
    ``zero_convs.N.0``, ``middle_block_out.0`` and ``input_hint_block.N`` (convs at even N,
    SiLUs between them)."""
    shared: dict[str, torch.Tensor] = {}
    out: dict[str, torch.Tensor] = {}
    n_blocks = len({k.split(".")[2] for k in sd if k.startswith("controlnet_cond_embedding.b")})
    for key, value in sd.items():
        p = key.split(".")
        if p[0] == "controlnet_down_blocks":
            out[f"zero_convs.{p[1]}.0.{p[-1]}"] = value
        elif p[0] == "controlnet_mid_block":
            out[f"middle_block_out.0.{p[-1]}"] = value
        elif p[0] == "controlnet_cond_embedding":
            index = {"conv_in": 0, "conv_out": 2 * n_blocks + 2}.get(p[1])
            if index is None:  # blocks.j
                index = 2 * int(p[2]) + 2
            out[f"input_hint_block.{index}.{p[-1]}"] = value
        else:
            shared[key] = value
    unet_cfg = {**cfg, "up_block_types": []}
    for key, value in unet_to_ldm(shared, unet_cfg).items():
        out[key.removeprefix("model.diffusion_model.")] = value
    return {prefix + k: v for k, v in out.items()}


def vae_to_ldm(
    sd: dict[str, torch.Tensor], cfg: dict[str, Any], *, prefix: str = "first_stage_model."
) -> dict[str, torch.Tensor]:
    """AutoencoderKL keys -> LDM VAE keys (attention projections as 1x1 convs)."""
    n = len(cfg["block_out_channels"])
    attn_names = {
        "group_norm": "norm",
        "to_q": "q",
        "to_k": "k",
        "to_v": "v",
        "to_out.0": "proj_out",
    }
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        p = key.split(".")
        side = p[0]
        if side in ("quant_conv", "post_quant_conv"):
            out[prefix + key] = value
            continue
        sub = p[1]
        if sub in ("conv_in", "conv_out"):
            new = key
        elif sub == "conv_norm_out":
            new = f"{side}.norm_out.{p[-1]}"
        elif sub in ("down_blocks", "up_blocks"):
            i, kind = int(p[2]), p[3]
            block = "down" if sub == "down_blocks" else "up"
            idx = i if block == "down" else n - 1 - i
            if kind == "resnets":
                rest = ".".join(p[5:]).replace("conv_shortcut", "nin_shortcut")
                new = f"{side}.{block}.{idx}.block.{p[4]}.{rest}"
            else:
                new = f"{side}.{block}.{idx}.{'downsample' if block == 'down' else 'upsample'}.conv.{p[-1]}"
        elif sub == "mid_block":
            kind, j = p[2], int(p[3])
            rest = ".".join(p[4:])
            if kind == "resnets":
                new = f"{side}.mid.block_{j + 1}.{rest.replace('conv_shortcut', 'nin_shortcut')}"
            else:
                name, _, param = rest.rpartition(".")
                new = f"{side}.mid.attn_1.{attn_names[name]}.{param}"
                if value.ndim == 2:
                    value = value[:, :, None, None]
        else:
            raise KeyError(f"no LDM name for VAE key {key!r}")
        out[prefix + new] = value
    return out


def diffusers_to_ldm(
    unet: dict[str, torch.Tensor],
    vae: dict[str, torch.Tensor],
    text_encoder: dict[str, torch.Tensor],
    unet_cfg: dict[str, Any],
    vae_cfg: dict[str, Any],
) -> dict[str, torch.Tensor]:
    """One SD1 checkpoint state dict from the three diffusers parts."""
    out = unet_to_ldm(unet, unet_cfg)
    out.update(vae_to_ldm(vae, vae_cfg))
    for key, value in text_encoder.items():
        # transformers >= 5.6 saves CLIPTextModel without the ``text_model.`` level.
        hf_key = key if key.startswith("text_model.") else "text_model." + key
        out["cond_stage_model.transformer." + hf_key] = value
    return out
