"""A tiny random-weight CogView4 diffusers folder, built offline in about a second.

Same layout and classes as ``THUDM/CogView4-6B`` (``CogView4Pipeline`` with a
``CogView4Transformer2DModel``, a GLM text encoder, a 16-channel ``AutoencoderKL`` and the
flow-matching scheduler config with CogView4's linear time shift) at toy widths, so the
probe, the loader, the nodes and diffusers' own pipeline all run on it in seconds.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from invoke_nb.testing.word_tokenizer import write_word_tokenizer

__all__ = ["make_cogview4"]

SCHEDULER: dict[str, Any] = {
    "_class_name": "FlowMatchEulerDiscreteScheduler",
    "base_image_seq_len": 256,
    "base_shift": 0.25,
    "max_image_seq_len": 4096,
    "max_shift": 0.75,
    "num_train_timesteps": 1000,
    "shift": 1.0,
    "time_shift_type": "linear",
    "use_dynamic_shifting": True,
}

TEXT_WIDTH = 32


def _vae_config(latent_channels: int) -> dict[str, Any]:
    return {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "up_block_types": ["UpDecoderBlock2D"] * 4,
        "block_out_channels": [8, 8, 16, 16],
        "layers_per_block": 1,
        "latent_channels": latent_channels,
        "norm_num_groups": 4,
        "sample_size": 64,
        "scaling_factor": 1.0,
        "use_quant_conv": False,
        "use_post_quant_conv": False,
    }


def write_vae(dest: Path, latent_channels: int = 16, *, sharp: bool = False, **extra: Any) -> None:
    """A 4-block (scale 8) VAE with ``latent_channels`` channels, saved to ``dest``.

    ``sharp`` pins the encoder's log-variance at its floor (std ~ 3e-7), so an image
    encodes to the same latents whichever generator draws the sample: pixel comparisons
    with pipelines that sample from their own generator then test everything else.
    """
    from diffusers import AutoencoderKL

    vae = AutoencoderKL(**{**_vae_config(latent_channels), **extra})
    if sharp:
        conv = vae.encoder.conv_out
        with torch.no_grad():
            conv.weight[latent_channels:] = 0.0
            conv.bias[latent_channels:] = -40.0
    vae.save_pretrained(dest)


def make_cogview4(dest: Path, *, seed: int = 0) -> Path:
    """Write a tiny CogView4 diffusers folder to ``dest`` (replaced if present)."""
    from diffusers import CogView4Transformer2DModel
    from transformers import GlmConfig, GlmModel

    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    torch.manual_seed(seed)
    write_word_tokenizer(
        dest / "tokenizer",
        specials=["<|endoftext|>", "[gMASK]", "<sop>"],
        pad_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        padding_side="left",
        prefix=("[gMASK]", "<sop>"),
    )
    n_vocab = len(json.loads((dest / "tokenizer" / "tokenizer.json").read_text())["model"]["vocab"])
    glm = GlmModel(
        GlmConfig(
            vocab_size=n_vocab + 8,
            hidden_size=TEXT_WIDTH,
            intermediate_size=64,
            num_hidden_layers=3,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=16,
            max_position_embeddings=1024,
            pad_token_id=1,
        )
    )
    glm.save_pretrained(dest / "text_encoder")
    CogView4Transformer2DModel(
        patch_size=2,
        in_channels=16,
        out_channels=16,
        num_layers=2,
        attention_head_dim=8,
        num_attention_heads=2,
        text_embed_dim=TEXT_WIDTH,
        time_embed_dim=16,
        condition_dim=8,
        pos_embed_max_size=32,
        sample_size=32,
        rope_axes_dim=(32, 32),
    ).save_pretrained(dest / "transformer")
    write_vae(dest / "vae")
    (dest / "scheduler").mkdir()
    (dest / "scheduler" / "scheduler_config.json").write_text(json.dumps(SCHEDULER, indent=1))
    index = {
        "_class_name": "CogView4Pipeline",
        "_diffusers_version": "0.42.1",
        "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
        "text_encoder": ["transformers", "GlmModel"],
        "tokenizer": ["transformers", "PreTrainedTokenizerFast"],
        "transformer": ["diffusers", "CogView4Transformer2DModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (dest / "model_index.json").write_text(json.dumps(index, indent=1))
    return dest
