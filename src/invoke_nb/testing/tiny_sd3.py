"""Tiny random-weight SD3 / SD3.5 models, built offline in seconds, for tests and benchmarks.

They keep the shapes that identify the family and its parts: a 16-channel VAE with four
blocks (latent scale 8) and SD3's scaling/shift factors, two CLIP text encoders with projection
(CLIP-L and CLIP-G, 32 and 64 wide here: real widths would cost megabytes), a T5 encoder whose width is the transformer's
``joint_attention_dim``, and an ``SD3Transformer2DModel`` with two joint blocks. The
"medium" layout is SD3.5 Medium's (MMDiT-X: a second attention in block 0, RMS q/k norms),
"large" is SD3.5 Large's (q/k norms, no second attention), "sd3" is SD3 Medium's (neither).

:func:`make_sd3_single_file` writes the same weights in the layout of Stability's SD3.5
single files (``model.diffusion_model.`` MMDiT keys, ``first_stage_model.`` LDM VAE keys,
``text_encoders.{clip_l,clip_g,t5xxl}.transformer.`` encoders). Weights come from a fixed
torch seed: the same call writes the same tensors every time.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Literal

import torch

from invoke_nb.testing.tiny_models import _init_
from invoke_nb.testing.tokenizer import WORDS, vocab_size, write_clip_tokenizer

__all__ = ["make_sd3", "make_sd3_single_file", "write_t5_tokenizer"]

Layout = Literal["medium", "large", "sd3"]

CLIP_L, CLIP_G = 32, 64  # real: 768, 1280
JOINT_DIM = 128  # T5 width = joint_attention_dim; > CLIP_L + CLIP_G, so CLIP embeds get padded
SCHEDULER = {
    "_class_name": "FlowMatchEulerDiscreteScheduler",
    "_diffusers_version": "0.31.0",
    "num_train_timesteps": 1000,
    "shift": 3.0,
}
VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [8, 8, 16, 16],
    "layers_per_block": 1,
    "latent_channels": 16,
    "norm_num_groups": 4,
    "sample_size": 64,
    "scaling_factor": 1.5305,
    "shift_factor": 0.0609,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
}


def _transformer_config(layout: Layout) -> dict[str, Any]:
    return {
        "sample_size": 32,
        "patch_size": 2,
        "in_channels": 16,
        "num_layers": 2,
        "attention_head_dim": 8,
        "num_attention_heads": 4,
        "joint_attention_dim": JOINT_DIM,
        "caption_projection_dim": 32,
        "pooled_projection_dim": CLIP_L + CLIP_G,
        "out_channels": 16,
        "pos_embed_max_size": 16,
        "dual_attention_layers": [0] if layout == "medium" else [],
        "qk_norm": None if layout == "sd3" else "rms_norm",
    }


def write_t5_tokenizer(dest: Path, *, max_length: int = 512) -> Path:
    """A small SentencePiece-style (Unigram) T5 tokenizer from :data:`WORDS`, built locally.

    Ids 0/1/2 are ``<pad>``/``</s>``/``<unk>`` as in T5; every text ends with ``</s>``.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    dest.mkdir(parents=True, exist_ok=True)
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [("▁" + w, -1.0) for w in WORDS]
    pieces += [(c, -5.0) for c in "abcdefghijklmnopqrstuvwxyz0123456789,.!?-'"]
    tok = Tokenizer(models.Unigram(pieces, unk_id=2, byte_fallback=False))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    fast = T5TokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        extra_ids=0,
        model_max_length=max_length,
    )
    fast.save_pretrained(dest)
    # transformers 4.x (InvokeAI 6.11's) reads a list here as a dict: leave the empty one out
    cfg_file = dest / "tokenizer_config.json"
    cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
    if not cfg.get("extra_special_tokens"):
        cfg.pop("extra_special_tokens", None)
        cfg_file.write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    return dest


def _t5_vocab(folder: Path) -> int:
    from transformers import AutoTokenizer

    return len(AutoTokenizer.from_pretrained(folder, local_files_only=True))


def _clip(dest: Path, vocab: int, hidden: int, heads: int, identity_projection: bool) -> None:
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    cfg = CLIPTextConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=heads,
        max_position_embeddings=77,
        projection_dim=hidden,
        hidden_act="gelu",
        bos_token_id=vocab - 2,
        eos_token_id=vocab - 1,
        pad_token_id=vocab - 1,
    )
    model = _init_(CLIPTextModelWithProjection(cfg))
    if identity_projection:  # SD3 single files carry no CLIP-L projection (diffusers uses eye)
        with torch.no_grad():
            model.text_projection.weight.copy_(torch.eye(hidden))
    model.save_pretrained(dest, safe_serialization=True)


def _t5(dest: Path, vocab: int) -> None:
    from transformers import T5Config, T5EncoderModel

    cfg = T5Config(
        vocab_size=vocab,
        d_model=JOINT_DIM,
        d_kv=8,
        d_ff=32,
        num_layers=1,
        num_heads=2,
        relative_attention_num_buckets=8,
        feed_forward_proj="gated-gelu",
        is_encoder_decoder=False,
        use_cache=False,
        tie_word_embeddings=False,
    )
    _init_(T5EncoderModel(cfg)).save_pretrained(dest, safe_serialization=True)


def make_sd3(dest: Path, *, layout: Layout = "medium", seed: int = 0, t5: bool = True) -> Path:
    """Write a tiny SD3-family diffusers folder at ``dest`` (replaced if present).

    ``t5=False`` leaves out ``text_encoder_3``/``tokenizer_3`` (the pipeline then feeds zeros
    in T5's place, as InvokeAI does without a T5 encoder).
    """
    from diffusers import AutoencoderKL, SD3Transformer2DModel

    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    torch.manual_seed(seed)
    for sub in ("tokenizer", "tokenizer_2"):
        write_clip_tokenizer(dest / sub)
    n = vocab_size(dest / "tokenizer")
    _clip(dest / "text_encoder", n, CLIP_L, 4, identity_projection=True)
    _clip(dest / "text_encoder_2", n, CLIP_G, 4, identity_projection=False)
    if t5:
        write_t5_tokenizer(dest / "tokenizer_3")
        _t5(dest / "text_encoder_3", _t5_vocab(dest / "tokenizer_3"))
    transformer = SD3Transformer2DModel(**_transformer_config(layout))
    _init_(transformer).save_pretrained(dest / "transformer", safe_serialization=True)
    _init_(AutoencoderKL(**VAE)).save_pretrained(dest / "vae", safe_serialization=True)
    (dest / "scheduler").mkdir()
    (dest / "scheduler" / "scheduler_config.json").write_text(json.dumps(SCHEDULER, indent=1))
    index = {
        "_class_name": "StableDiffusion3Pipeline",
        "_diffusers_version": "0.31.0",
        "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
        "text_encoder": ["transformers", "CLIPTextModelWithProjection"],
        "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
        "text_encoder_3": ["transformers", "T5EncoderModel"] if t5 else [None, None],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "tokenizer_2": ["transformers", "CLIPTokenizer"],
        "tokenizer_3": ["transformers", "T5TokenizerFast"] if t5 else [None, None],
        "transformer": ["diffusers", "SD3Transformer2DModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (dest / "model_index.json").write_text(json.dumps(index, indent=1))
    return dest


# -- single file ---------------------------------------------------------------------------


def _swap_halves(t: torch.Tensor) -> torch.Tensor:
    a, b = t.chunk(2, dim=0)
    return torch.cat([b, a], dim=0)


def transformer_to_mmdit(sd: dict[str, torch.Tensor], num_layers: int) -> dict[str, torch.Tensor]:
    """diffusers ``SD3Transformer2DModel`` keys -> Stability's MMDiT keys (no prefix).

    The inverse of diffusers' ``convert_sd3_transformer_checkpoint_to_diffusers``: q/k/v are
    stacked into ``qkv``, and the last context block's and the final layer's modulation keep
    shift before scale.
    """
    out: dict[str, torch.Tensor] = {
        "pos_embed": sd["pos_embed.pos_embed"],
        "x_embedder.proj.weight": sd["pos_embed.proj.weight"],
        "x_embedder.proj.bias": sd["pos_embed.proj.bias"],
        "context_embedder.weight": sd["context_embedder.weight"],
        "context_embedder.bias": sd["context_embedder.bias"],
        "final_layer.linear.weight": sd["proj_out.weight"],
        "final_layer.linear.bias": sd["proj_out.bias"],
        "final_layer.adaLN_modulation.1.weight": _swap_halves(sd["norm_out.linear.weight"]),
        "final_layer.adaLN_modulation.1.bias": _swap_halves(sd["norm_out.linear.bias"]),
    }
    for ours, theirs in (("timestep_embedder", "t_embedder"), ("text_embedder", "y_embedder")):
        for i, j in ((1, 0), (2, 2)):
            for p in ("weight", "bias"):
                out[f"{theirs}.mlp.{j}.{p}"] = sd[f"time_text_embed.{ours}.linear_{i}.{p}"]
    for i in range(num_layers):
        b, j = f"transformer_blocks.{i}", f"joint_blocks.{i}"
        last = i == num_layers - 1
        for p in ("weight", "bias"):
            out[f"{j}.x_block.attn.qkv.{p}"] = torch.cat(
                [sd[f"{b}.attn.to_{x}.{p}"] for x in "qkv"]
            )
            out[f"{j}.context_block.attn.qkv.{p}"] = torch.cat(
                [sd[f"{b}.attn.add_{x}_proj.{p}"] for x in "qkv"]
            )
            out[f"{j}.x_block.attn.proj.{p}"] = sd[f"{b}.attn.to_out.0.{p}"]
            out[f"{j}.x_block.adaLN_modulation.1.{p}"] = sd[f"{b}.norm1.linear.{p}"]
            ctx_mod = sd[f"{b}.norm1_context.linear.{p}"]
            out[f"{j}.context_block.adaLN_modulation.1.{p}"] = (
                _swap_halves(ctx_mod) if last else ctx_mod
            )
            out[f"{j}.x_block.mlp.fc1.{p}"] = sd[f"{b}.ff.net.0.proj.{p}"]
            out[f"{j}.x_block.mlp.fc2.{p}"] = sd[f"{b}.ff.net.2.{p}"]
            if not last:
                out[f"{j}.context_block.attn.proj.{p}"] = sd[f"{b}.attn.to_add_out.{p}"]
                out[f"{j}.context_block.mlp.fc1.{p}"] = sd[f"{b}.ff_context.net.0.proj.{p}"]
                out[f"{j}.context_block.mlp.fc2.{p}"] = sd[f"{b}.ff_context.net.2.{p}"]
            if f"{b}.attn2.to_q.{p}" in sd:
                out[f"{j}.x_block.attn2.qkv.{p}"] = torch.cat(
                    [sd[f"{b}.attn2.to_{x}.{p}"] for x in "qkv"]
                )
                out[f"{j}.x_block.attn2.proj.{p}"] = sd[f"{b}.attn2.to_out.0.{p}"]
        for ours, theirs in (
            ("attn.norm_q", "x_block.attn.ln_q"),
            ("attn.norm_k", "x_block.attn.ln_k"),
            ("attn.norm_added_q", "context_block.attn.ln_q"),
            ("attn.norm_added_k", "context_block.attn.ln_k"),
            ("attn2.norm_q", "x_block.attn2.ln_q"),
            ("attn2.norm_k", "x_block.attn2.ln_k"),
        ):
            if f"{b}.{ours}.weight" in sd:
                out[f"{j}.{theirs}.weight"] = sd[f"{b}.{ours}.weight"]
    return out


def _clip_keys(sd: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in sd.items():
        if not k.startswith(("text_model.", "text_projection.")):
            k = "text_model." + k  # transformers >= 5.6 saves CLIPTextModel flattened
        out[prefix + k] = v
    return out


def make_sd3_single_file(dest: Path, *, folder: Path, with_encoders: bool = True) -> Path:
    """Write ``folder``'s weights as one SD3.5-layout ``.safetensors`` at ``dest``.

    ``with_encoders=False`` writes the MMDiT and VAE only (as ``sd3.5_large.safetensors``);
    with them, CLIP-L, CLIP-G and (if the folder has one) T5 are inside too. Load it with
    ``config=folder``.
    """
    from safetensors.torch import load_file, save_file

    from invoke_nb.testing.ldm_keys import vae_to_ldm

    folder, dest = Path(folder), Path(dest)
    cfg = json.loads((folder / "transformer" / "config.json").read_text())
    mmdit = transformer_to_mmdit(
        load_file(folder / "transformer" / "diffusion_pytorch_model.safetensors"),
        cfg["num_layers"],
    )
    sd = {"model.diffusion_model." + k: v for k, v in mmdit.items()}
    vae_cfg = json.loads((folder / "vae" / "config.json").read_text())
    vae = load_file(folder / "vae" / "diffusion_pytorch_model.safetensors")
    sd.update(vae_to_ldm(vae, vae_cfg, prefix="first_stage_model."))
    if with_encoders:
        te = load_file(folder / "text_encoder" / "model.safetensors")
        te.pop("text_projection.weight", None)  # SD3 files carry none for CLIP-L
        sd.update(_clip_keys(te, "text_encoders.clip_l.transformer."))
        te2 = load_file(folder / "text_encoder_2" / "model.safetensors")
        sd.update(_clip_keys(te2, "text_encoders.clip_g.transformer."))
        if (folder / "text_encoder_3").is_dir():
            t5 = load_file(folder / "text_encoder_3" / "model.safetensors")
            sd.update({"text_encoders.t5xxl.transformer." + k: v for k, v in t5.items()})
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in sd.items()}, str(dest))
    return dest
