"""Tiny random-weight FLUX.1 models, built offline in a few seconds, for tests and benchmarks.

They have the shapes InvokeAI's probe reads (a transformer with ``guidance_embeds`` for
dev, without for schnell, 64 packed input channels, a 16-channel VAE with 8x downscale, a
768-wide CLIP-L and a T5 encoder) and are tiny everywhere else: two 32-wide heads, one
double and one single block, a 32-wide two-layer T5. Tokenizers are written locally (the
CLIP BPE of :mod:`invoke_nb.testing.tokenizer` and a small T5 unigram vocabulary).

Files written, as InvokeAI lays them out:
- a diffusers ``FluxPipeline`` folder per variant (what diffusers' pipelines load);
- a T5 encoder folder (``text_encoder_2/`` + ``tokenizer_2/``, InvokeAI's ``t5_encoder``
  format), a CLIP-L folder (``text_encoder/`` + ``tokenizer/``), a FLUX VAE folder;
- the transformer as a BFL single-file ``.safetensors`` (``double_blocks.0.img_attn.qkv``...).

The VAE encoder's log-variance is pushed far negative, so sampling its latent distribution
returns the mean whatever the generator: diffusers' img2img pipelines sample it with the
user's generator and our ``flux_vae_encode`` with a fixed one, and the parity tests compare
what follows.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Literal

import torch

from invoke_nb.testing.tiny_models import _init_, _write_text_encoder
from invoke_nb.testing.tokenizer import vocab_size, write_clip_tokenizer

__all__ = [
    "T5_WORDS",
    "make_flux",
    "make_flux_clip",
    "make_flux_file",
    "make_flux_gguf",
    "make_flux_lora",
    "make_flux_set",
    "make_flux_t5",
    "make_flux_vae",
    "write_t5_tokenizer",
]

T5_WORDS = [
    "a", "an", "the", "of", "and", "with", "in", "on", "photo", "portrait", "painting",
    "cat", "dog", "tiger", "cub", "cute", "red", "blue", "green", "house", "tree", "sky",
    "blurry", "ugly", "mountain", "river", "night", "sun", "moon", "forest",
]  # fmt: skip
_T5_CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?-'\"():;")

HIDDEN = 64
HEAD = 32
T5_WIDTH = 32


def write_t5_tokenizer(dest: Path, max_length: int = 512) -> Path:
    """A T5 unigram tokenizer (pad 0, eos 1, unk 2) that ``T5TokenizerFast`` loads offline."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [("\u2581" + w, -1.0) for w in T5_WORDS] + [("\u2581", -2.0)]
    vocab += [(c, -5.0) for c in _T5_CHARS]
    tok = Tokenizer(models.Unigram(vocab, unk_id=2, byte_fallback=False))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    tok.save(str(dest / "tokenizer.json"))
    config = {
        "tokenizer_class": "T5Tokenizer",
        "model_max_length": max_length,
        "pad_token": "<pad>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "extra_ids": 0,
        "additional_special_tokens": [],
    }
    (dest / "tokenizer_config.json").write_text(json.dumps(config, indent=1))
    return dest


def _fresh(dest: Path) -> Path:
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    return dest


def make_flux_t5(dest: Path, *, seed: int = 10) -> Path:
    """InvokeAI's ``t5_encoder`` folder: ``text_encoder_2/`` (with its index file) + ``tokenizer_2/``."""
    from transformers import T5Config, T5EncoderModel

    dest = _fresh(dest)
    tok = write_t5_tokenizer(dest / "tokenizer_2")
    n = len(json.loads((tok / "tokenizer.json").read_text())["model"]["vocab"])
    torch.manual_seed(seed)
    cfg = T5Config(
        vocab_size=n,
        d_model=T5_WIDTH,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        feed_forward_proj="gated-gelu",
        is_encoder_decoder=False,
        use_cache=False,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    model = _init_(T5EncoderModel(cfg))
    # sharded on purpose: InvokeAI's probe looks for model.safetensors.index.json
    model.save_pretrained(dest / "text_encoder_2", safe_serialization=True, max_shard_size="40KB")
    return dest


def make_flux_clip(dest: Path, *, seed: int = 11) -> Path:
    """A CLIP-L text encoder folder (``text_encoder/`` + ``tokenizer/``, hidden size 768)."""
    dest = _fresh(dest)
    torch.manual_seed(seed)
    tok = write_clip_tokenizer(dest / "tokenizer")
    _write_text_encoder(dest / "text_encoder", vocab_size(tok), hidden=768, projection=False)
    return dest


def _vae_config() -> dict[str, Any]:
    return {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "up_block_types": ["UpDecoderBlock2D"] * 4,
        "block_out_channels": [8, 8, 16, 16],
        "layers_per_block": 1,
        "latent_channels": 16,
        "norm_num_groups": 4,
        "sample_size": 64,
        "scaling_factor": 0.3611,
        "shift_factor": 0.1159,
        "use_quant_conv": False,
        "use_post_quant_conv": False,
        "force_upcast": True,
    }


def make_flux_vae(dest: Path, *, seed: int = 12) -> Path:
    """A 16-channel FLUX-style AutoencoderKL folder whose latent sample equals its mean."""
    from diffusers import AutoencoderKL

    dest = _fresh(dest)
    torch.manual_seed(seed)
    vae = _init_(AutoencoderKL(**_vae_config()))
    with torch.no_grad():
        vae.encoder.conv_out.weight[16:] = 0.0
        vae.encoder.conv_out.bias[16:] = -40.0  # logvar: std ~ 2e-9
    vae.save_pretrained(dest, safe_serialization=True)
    return dest


def _transformer(guidance: bool, seed: int, in_channels: int = 64) -> Any:
    from diffusers import FluxTransformer2DModel

    torch.manual_seed(seed)
    model = FluxTransformer2DModel(
        patch_size=1,
        in_channels=in_channels,
        out_channels=64,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=HEAD,
        num_attention_heads=HIDDEN // HEAD,
        joint_attention_dim=T5_WIDTH,
        pooled_projection_dim=768,
        guidance_embeds=guidance,
        axes_dims_rope=(HEAD // 8, HEAD * 7 // 16, HEAD * 7 // 16),
    )
    return _init_(model)


_SCHEDULERS = {
    "dev": {
        "_class_name": "FlowMatchEulerDiscreteScheduler",
        "base_image_seq_len": 256,
        "base_shift": 0.5,
        "max_image_seq_len": 4096,
        "max_shift": 1.15,
        "num_train_timesteps": 1000,
        "shift": 3.0,
        "use_dynamic_shifting": True,
    },
    "schnell": {
        "_class_name": "FlowMatchEulerDiscreteScheduler",
        "base_image_seq_len": 256,
        "base_shift": 0.5,
        "max_image_seq_len": 4096,
        "max_shift": 1.15,
        "num_train_timesteps": 1000,
        "shift": 1.0,
        "use_dynamic_shifting": False,
    },
}


def make_flux(
    dest: Path,
    variant: Literal["dev", "schnell"] = "dev",
    *,
    t5: Path,
    clip: Path,
    vae: Path,
    seed: int = 13,
) -> Path:
    """A diffusers ``FluxPipeline`` folder; encoders and VAE are copied from the given folders."""
    dest = _fresh(dest)
    _transformer(variant == "dev", seed).save_pretrained(
        dest / "transformer", safe_serialization=True
    )
    shutil.copytree(Path(t5) / "text_encoder_2", dest / "text_encoder_2")
    shutil.copytree(Path(t5) / "tokenizer_2", dest / "tokenizer_2")
    shutil.copytree(Path(clip) / "text_encoder", dest / "text_encoder")
    shutil.copytree(Path(clip) / "tokenizer", dest / "tokenizer")
    shutil.copytree(Path(vae), dest / "vae")
    (dest / "scheduler").mkdir()
    (dest / "scheduler" / "scheduler_config.json").write_text(
        json.dumps(_SCHEDULERS[variant], indent=1)
    )
    index = {
        "_class_name": "FluxPipeline",
        "_diffusers_version": "0.32.0",
        "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "text_encoder_2": ["transformers", "T5EncoderModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "tokenizer_2": ["transformers", "T5TokenizerFast"],
        "transformer": ["diffusers", "FluxTransformer2DModel"],
        "vae": ["diffusers", "AutoencoderKL"],
        "image_encoder": [None, None],
        "feature_extractor": [None, None],
    }
    (dest / "model_index.json").write_text(json.dumps(index, indent=1))
    return dest


def make_flux_file(dest: Path, folder: Path) -> Path:
    """The transformer of a diffusers FLUX folder as a BFL single-file checkpoint."""
    from safetensors.torch import load_file, save_file

    from invoke_nb.models.flux_keys import diffusers_to_bfl

    sd = {}
    for f in sorted((Path(folder) / "transformer").glob("*.safetensors")):
        sd.update(load_file(str(f)))
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_file(diffusers_to_bfl(sd), str(dest), metadata={"format": "pt"})
    return dest


def make_flux_gguf(dest: Path, bfl_file: Path, qtype: str = "Q8_0") -> Path:
    """The BFL single-file transformer quantized with the ``gguf`` package (2-D weights whose
    rows are a whole number of blocks; biases and norms stay float32)."""
    import numpy as np
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFWriter
    from gguf.quants import quantize
    from safetensors.torch import load_file

    kind = GGMLQuantizationType[qtype]
    block = GGML_QUANT_SIZES[kind][0]
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    writer = GGUFWriter(str(dest), "flux")
    for name, t in load_file(str(bfl_file)).items():
        data = t.float().numpy()
        if data.ndim == 2 and data.shape[1] % block == 0:
            writer.add_tensor(name, quantize(data, kind), raw_dtype=kind)
        else:
            writer.add_tensor(name, np.ascontiguousarray(data, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return dest


def make_flux_lora(
    dest: Path,
    format: Literal["peft", "kohya"] = "peft",
    *,
    rank: int = 4,
    seed: int = 14,
    scale: float = 0.5,
    with_clip: bool = False,
) -> Path:
    """A random LoRA for the tiny FLUX transformer (attention and MLP of every block).

    ``peft`` writes diffusers' ``transformer.<module>.lora_A/B.weight``; ``kohya`` writes
    BFL module names (``lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight`` + alpha),
    fused q/k/v included, and with ``with_clip`` CLIP layers as ``lora_te1_...``.
    """
    from safetensors.torch import save_file

    from invoke_nb.models.flux_keys import module_map

    gen = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}
    mlp = HIDDEN * 4

    def pair(fan_in: int, fan_out: int) -> tuple[torch.Tensor, torch.Tensor]:
        down = torch.randn(rank, fan_in, generator=gen) * (scale / fan_in**0.5)
        return down, torch.randn(fan_out, rank, generator=gen) * scale

    if format == "peft":
        for blk in ("transformer_blocks.0", "single_transformer_blocks.0"):
            for proj in ("to_q", "to_k", "to_v"):
                down, up = pair(HIDDEN, HIDDEN)
                sd[f"transformer.{blk}.attn.{proj}.lora_A.weight"] = down
                sd[f"transformer.{blk}.attn.{proj}.lora_B.weight"] = up
        down, up = pair(HIDDEN, mlp)
        sd["transformer.transformer_blocks.0.ff.net.0.proj.lora_A.weight"] = down
        sd["transformer.transformer_blocks.0.ff.net.0.proj.lora_B.weight"] = up
    else:
        sizes = {
            "double_blocks.0.img_attn.qkv": (HIDDEN, 3 * HIDDEN),
            "double_blocks.0.txt_attn.qkv": (HIDDEN, 3 * HIDDEN),
            "double_blocks.0.img_mlp.0": (HIDDEN, mlp),
            "single_blocks.0.linear1": (HIDDEN, 3 * HIDDEN + mlp),
            "single_blocks.0.linear2": (HIDDEN + mlp, HIDDEN),
        }
        assert set(sizes) <= set(module_map(1, 1))
        for module, (fan_in, fan_out) in sizes.items():
            down, up = pair(fan_in, fan_out)
            name = "lora_unet_" + module.replace(".", "_")
            sd[f"{name}.lora_down.weight"] = down
            sd[f"{name}.lora_up.weight"] = up
            sd[f"{name}.alpha"] = torch.tensor(float(rank) / 2)
        if with_clip:
            for proj in ("q_proj", "v_proj"):
                down, up = pair(768, 768)
                name = f"lora_te1_text_model_encoder_layers_0_self_attn_{proj}"
                sd[f"{name}.lora_down.weight"] = down
                sd[f"{name}.lora_up.weight"] = up
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_file(sd, str(dest), metadata={"format": "pt"})
    return dest


def make_flux_set(root: Path) -> dict[str, Path]:
    """Every tiny FLUX model under ``root``: name -> path (one call for fixtures and demos)."""
    root = Path(root)
    t5 = make_flux_t5(root / "flux-t5")
    clip = make_flux_clip(root / "flux-clip-l")
    vae = make_flux_vae(root / "flux-vae")
    dev = make_flux(root / "flux-dev", "dev", t5=t5, clip=clip, vae=vae)
    schnell = make_flux(root / "flux-schnell", "schnell", t5=t5, clip=clip, vae=vae, seed=15)
    return {
        "t5": t5,
        "clip": clip,
        "vae": vae,
        "dev": dev,
        "schnell": schnell,
        "dev_file": make_flux_file(root / "flux-dev-bfl.safetensors", dev),
        "lora_peft": make_flux_lora(root / "flux-lora-peft.safetensors", "peft"),
        "lora_kohya": make_flux_lora(root / "flux-lora-kohya.safetensors", "kohya"),
    }
