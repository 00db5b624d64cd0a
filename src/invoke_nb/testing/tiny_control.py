"""Tiny random-weight control models in their real file layouts, for tests and benchmarks.

- ControlNet: a diffusers folder (``config.json`` + ``diffusion_pytorch_model.safetensors``)
  made from the tiny UNet's config, every weight random (a real ControlNet's zero convs
  would make it do nothing).
- T2I-Adapter: a diffusers folder, ``full_adapter`` for SD1 and ``full_adapter_xl`` for SDXL,
  its feature maps matching the UNet's down blocks (the SDXL one needs an SDXL-shaped block
  layout: :func:`make_sdxl_adapter_unet`).
- IP-Adapter: InvokeAI's folder layout (``ip_adapter.safetensors`` with ``image_proj.*`` and
  ``ip_adapter.*`` keys as h94's files have them, plus ``image_encoder.txt`` naming the
  encoder) in the plain, plus and full-face variants.
- CLIP vision encoder: a transformers ``CLIPVisionModelWithProjection`` folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Literal

import torch

from invoke_nb.testing.tiny_models import _init_, _unet_config

__all__ = [
    "make_clip_vision",
    "make_controlnet",
    "make_controlnet_file",
    "make_embedding",
    "make_ip_adapter",
    "make_lycoris",
    "make_sdxl_adapter_unet",
    "make_t2i_adapter",
]

VISION_HIDDEN = 32
VISION_PROJECTION = 32


def _fresh(dest: Path) -> Path:
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    return dest


def make_controlnet(dest: Path, main_model: Path, *, seed: int = 11) -> Path:
    """A ControlNet for the tiny main model at ``main_model`` (its UNet's shape)."""
    from diffusers import ControlNetModel, UNet2DConditionModel

    dest = _fresh(dest)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_pretrained(main_model / "unet")
    net = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 8, 8, 16))
    _init_(net).save_pretrained(dest, safe_serialization=True)
    return dest


def make_controlnet_file(
    dest: Path, folder: Path, *, layout: Literal["ldm", "ldm-v1.0", "diffusers"] = "ldm"
) -> Path:
    """The ControlNet diffusers folder at ``folder`` as one ``.safetensors`` (or ``.pth``,
    by ``dest``'s suffix) in lllyasviel's v1.1 key layout (``ldm``), v1.0's
    (``control_model.`` prefix) or diffusers' names."""
    from safetensors.torch import load_file, save_file

    from invoke_nb.testing.ldm_keys import controlnet_to_ldm

    dest = Path(dest)
    sd = load_file(str(folder / "diffusion_pytorch_model.safetensors"))
    cfg = json.loads((folder / "config.json").read_text())
    if layout != "diffusers":
        sd = controlnet_to_ldm(sd, cfg, prefix="control_model." if layout == "ldm-v1.0" else "")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in sd.items()}, str(dest))
    else:
        torch.save(sd, dest)
    return dest


def make_sdxl_adapter_unet(main_model: Path) -> Path:
    """Give the tiny SDXL at ``main_model`` SDXL's down-block layout (plain block first, two
    cross-attention blocks), which ``full_adapter_xl`` feature maps fit."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(5)
    cfg = _unet_config(
        2048,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=6 * 8 + 1280,
        transformer_layers_per_block=1,
        use_linear_projection=True,
    )
    cfg.update(
        down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
        block_out_channels=[32, 64, 64],
    )
    shutil.rmtree(main_model / "unet")
    _init_(UNet2DConditionModel(**cfg)).save_pretrained(
        main_model / "unet", safe_serialization=True
    )
    return main_model


def make_t2i_adapter(dest: Path, base: Literal["sd-1", "sdxl"] = "sd-1", *, seed: int = 12) -> Path:
    """A T2I-Adapter whose features fit the tiny SD1 UNet (``sd-1``) or the SDXL layout UNet
    of :func:`make_sdxl_adapter_unet` (``sdxl``)."""
    from diffusers import T2IAdapter

    dest = _fresh(dest)
    torch.manual_seed(seed)
    if base == "sd-1":
        adapter = T2IAdapter(
            in_channels=3,
            channels=[32, 64],
            num_res_blocks=1,
            downscale_factor=8,
            adapter_type="full_adapter",
        )
    else:
        adapter = T2IAdapter(
            in_channels=3,
            channels=[32, 64, 64, 64],
            num_res_blocks=1,
            downscale_factor=16,
            adapter_type="full_adapter_xl",
        )
    _init_(adapter).save_pretrained(dest, safe_serialization=True)
    return dest


def make_clip_vision(dest: Path, *, seed: int = 13) -> Path:
    """A tiny ``CLIPVisionModelWithProjection`` folder (224 px input, as CLIPImageProcessor)."""
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    dest = _fresh(dest)
    torch.manual_seed(seed)
    cfg = CLIPVisionConfig(
        hidden_size=VISION_HIDDEN,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=224,
        patch_size=32,
        projection_dim=VISION_PROJECTION,
    )
    _init_(CLIPVisionModelWithProjection(cfg)).save_pretrained(dest, safe_serialization=True)
    CLIPImageProcessor().save_pretrained(dest)
    return dest


def _cross_attention_widths(main_model: Path) -> tuple[int, list[int]]:
    """The UNet's cross-attention width and the hidden width of each attn2, in processor
    order (the ``ip_adapter.<n>`` numbering counts every attention processor)."""
    from diffusers import UNet2DConditionModel

    cfg = json.loads((main_model / "unet" / "config.json").read_text())
    unet = UNet2DConditionModel.from_config(cfg)
    widths = []
    for name in unet.attn_processors:
        if name.endswith("attn2.processor"):
            widths.append(unet.get_submodule(name.rsplit(".", 1)[0]).to_k.out_features)
    return int(cfg["cross_attention_dim"]), widths


def make_ip_adapter(
    dest: Path,
    main_model: Path,
    variant: Literal["plain", "plus", "full"] = "plain",
    *,
    encoder: str = "InvokeAI/ip_adapter_sd_image_encoder",
    seed: int = 14,
) -> Path:
    """An IP-Adapter for the tiny main model in InvokeAI's folder layout."""
    from safetensors.torch import save_file

    dest = _fresh(dest)
    gen = torch.Generator().manual_seed(seed)
    cross, widths = _cross_attention_widths(main_model)

    def rnd(*shape: int) -> torch.Tensor:
        fan_in = shape[-1] if len(shape) > 1 else 1
        return torch.randn(*shape, generator=gen) / fan_in**0.5

    def norm(prefix: str, width: int) -> dict[str, torch.Tensor]:
        return {f"{prefix}.weight": 1 + 0.1 * rnd(width), f"{prefix}.bias": 0.1 * rnd(width)}

    proj: dict[str, torch.Tensor] = {}
    if variant == "plain":
        proj = {"proj.weight": rnd(cross * 4, VISION_PROJECTION), "proj.bias": 0.1 * rnd(cross * 4)}
        proj.update(norm("norm", cross))
    elif variant == "full":
        e = VISION_HIDDEN
        proj = {"proj.0.weight": rnd(e, e), "proj.0.bias": 0.1 * rnd(e)}
        proj.update({"proj.2.weight": rnd(cross, e), "proj.2.bias": 0.1 * rnd(cross)})
        proj.update(norm("proj.3", cross))
    else:  # plus: a 4-layer perceiver resampler, 64 wide, one 64-dim head
        h, e, queries = 64, VISION_HIDDEN, 4
        proj = {"latents": rnd(1, queries, h), "proj_in.weight": rnd(h, e)}
        proj["proj_in.bias"] = 0.1 * rnd(h)
        proj.update({"proj_out.weight": rnd(cross, h), "proj_out.bias": 0.1 * rnd(cross)})
        proj.update(norm("norm_out", cross))
        for i in range(4):
            p = f"layers.{i}"
            proj.update(norm(f"{p}.0.norm1", h))
            proj.update(norm(f"{p}.0.norm2", h))
            proj[f"{p}.0.to_q.weight"] = rnd(h, h)
            proj[f"{p}.0.to_kv.weight"] = rnd(2 * h, h)
            proj[f"{p}.0.to_out.weight"] = rnd(h, h)
            proj.update(norm(f"{p}.1.0", h))
            proj[f"{p}.1.1.weight"] = rnd(4 * h, h)
            proj[f"{p}.1.3.weight"] = rnd(h, 4 * h)
    sd = {f"image_proj.{k}": v for k, v in proj.items()}
    for i, width in enumerate(widths):
        n = 2 * i + 1
        sd[f"ip_adapter.{n}.to_k_ip.weight"] = rnd(width, cross)
        sd[f"ip_adapter.{n}.to_v_ip.weight"] = rnd(width, cross)
    save_file({k: v.contiguous() for k, v in sd.items()}, str(dest / "ip_adapter.safetensors"))
    (dest / "image_encoder.txt").write_text(encoder + "\n")
    return dest


def make_lycoris(
    dest: Path,
    kind: Literal["loha", "lokr", "full", "dora"] = "loha",
    *,
    rank: int = 4,
    seed: int = 15,
) -> Path:
    """A LyCORIS-format file (kohya ``lora_unet_*`` names) for the tiny SD1 UNet's attention
    layers: LoHa (``hada_*``), LoKr (``lokr_*``), DoRA (``lora_down/up`` + ``dora_scale``) or
    full-diff (``diff``/``diff_b``) plus norm (``w_norm``/``b_norm``) layers."""
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(seed)

    def rnd(*shape: int, scale: float = 0.3) -> torch.Tensor:
        return torch.randn(*shape, generator=gen) * scale

    sd: dict[str, torch.Tensor] = {}
    for block, width in (
        ("down_blocks_0_attentions_0_transformer_blocks_0", 32),
        ("up_blocks_1_attentions_0_transformer_blocks_0", 32),
        ("mid_block_attentions_0_transformer_blocks_0", 64),
    ):
        for proj, fan_in in (("attn1_to_q", width), ("attn2_to_k", 768), ("attn2_to_v", 768)):
            name = f"lora_unet_{block}_{proj}"
            if kind == "loha":
                for w in ("w1", "w2"):
                    sd[f"{name}.hada_{w}_a"] = rnd(width, rank)
                    sd[f"{name}.hada_{w}_b"] = rnd(rank, fan_in, scale=1 / fan_in**0.5)
                sd[f"{name}.alpha"] = torch.tensor(float(rank))
            elif kind == "lokr":
                sd[f"{name}.lokr_w1"] = rnd(4, 4)
                sd[f"{name}.lokr_w2_a"] = rnd(width // 4, rank)
                sd[f"{name}.lokr_w2_b"] = rnd(rank, fan_in // 4, scale=1 / fan_in**0.5)
                sd[f"{name}.alpha"] = torch.tensor(float(rank))
            elif kind == "dora":
                sd[f"{name}.lora_down.weight"] = rnd(rank, fan_in, scale=1 / fan_in**0.5)
                sd[f"{name}.lora_up.weight"] = rnd(width, rank)
                sd[f"{name}.dora_scale"] = rnd(1, fan_in, scale=1.0).abs() + 0.5
            else:
                sd[f"{name}.diff"] = rnd(width, fan_in, scale=0.3 / fan_in**0.5)
        if kind == "full":
            sd[f"lora_unet_{block}_attn1_to_out_0.diff"] = rnd(width, width, scale=0.05)
            sd[f"lora_unet_{block}_attn1_to_out_0.diff_b"] = rnd(width, scale=0.05)
            sd[f"lora_unet_{block}_norm1.w_norm"] = rnd(width, scale=0.2)
            sd[f"lora_unet_{block}_norm1.b_norm"] = rnd(width, scale=0.2)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_file(sd, str(dest), metadata={"format": "pt", "invoke_nb_base": "sd-1"})
    return dest


def make_embedding(
    dest: Path, base: Literal["sd-1", "sdxl"] = "sd-1", *, vectors: int = 2, seed: int = 16
) -> Path:
    """A textual-inversion embedding file: ``emb_params`` (SD1) or ``clip_l``/``clip_g`` (SDXL)."""
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(seed)
    if base == "sd-1":
        sd = {"emb_params": torch.randn(vectors, 768, generator=gen) * 0.3}
    else:
        sd = {
            "clip_l": torch.randn(vectors, 768, generator=gen) * 0.3,
            "clip_g": torch.randn(vectors, 1280, generator=gen) * 0.3,
        }
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_file(sd, str(dest))
    return dest
