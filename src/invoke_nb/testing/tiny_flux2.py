"""Tiny random FLUX.2 Klein models, built offline in about a second.

A diffusers ``Flux2KleinPipeline`` folder with every part shrunk: a two-block
``Flux2Transformer2DModel`` (128 packed channels, no guidance embedding: Klein is
distilled), a 28-layer Qwen3 text encoder 16 wide (Klein reads hidden states 9, 18 and 27,
so the layers must exist), a byte-level BPE tokenizer written here with Qwen's chat
template, a four-level ``AutoencoderKLFlux2`` (8x down, 32 latent channels, batch-norm
statistics away from 0/1 so their use shows) and the flow-match scheduler config
Klein ships. Weights come from numpy's frozen stream, seeded by tensor name, so the
model is the same on every machine. Real sizes differ; shapes and code paths are the same.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

from invoke_nb.testing.tokenizer import WORDS

__all__ = ["QWEN_HIDDEN", "build_tiny_flux2", "deterministic_weights", "write_qwen_tokenizer"]

QWEN_HIDDEN = 16
"""Width of the tiny Qwen3 encoder; the transformer reads 3x this per token."""

_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]

# Qwen3's template reduced to what Klein uses: user turns, the assistant prefix, and the
# empty thinking block written when thinking is off.
_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}"
)


def _byte_symbols() -> dict[int, str]:
    """GPT-2's byte -> printable character map (byte-level BPE's alphabet)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars = list(keep)
    n = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(keep, chars, strict=True)}


def write_qwen_tokenizer(folder: Path) -> int:
    """Write a Qwen2-style tokenizer (vocab, merges, chat template) and return its size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    symbols = _byte_symbols()
    vocab: dict[str, int] = {}
    for b in range(256):
        vocab[symbols[b]] = len(vocab)
    merges: list[tuple[str, str]] = []
    space = symbols[ord(" ")]
    for word in WORDS:
        for form in (word, space + word):
            parts = [symbols[b] for b in form.encode()]
            while len(parts) > 1:
                merged = parts[0] + parts[1]
                if merged not in vocab:
                    vocab[merged] = len(vocab)
                    merges.append((parts[0], parts[1]))
                parts = [merged, *parts[2:]]
    bpe = models.BPE(vocab=vocab, merges=merges)
    tok = Tokenizer(bpe)
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=_SPECIAL[1:],
        model_max_length=131072,
    )
    fast.add_special_tokens({"additional_special_tokens": _SPECIAL[1:]})
    fast.chat_template = _CHAT_TEMPLATE
    fast.save_pretrained(str(folder))
    cfg_file = folder / "tokenizer_config.json"
    cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
    cfg["tokenizer_class"] = "Qwen2Tokenizer"
    cfg_file.write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    return len(fast)


def _transformer(text_width: int):  # type: ignore[no-untyped-def]
    from diffusers import Flux2Transformer2DModel

    return Flux2Transformer2DModel(
        patch_size=1,
        in_channels=128,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=text_width,
        timestep_guidance_channels=32,
        mlp_ratio=2.0,
        axes_dims_rope=(4, 4, 4, 4),
        guidance_embeds=False,
    )


def _text_encoder(vocab_size: int):  # type: ignore[no-untyped-def]
    from transformers import Qwen3Config, Qwen3ForCausalLM

    cfg = Qwen3Config(
        vocab_size=vocab_size,
        hidden_size=QWEN_HIDDEN,
        intermediate_size=32,
        num_hidden_layers=28,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=8,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
    )
    return Qwen3ForCausalLM(cfg).eval()


def _vae():  # type: ignore[no-untyped-def]
    from diffusers import AutoencoderKLFlux2

    vae = AutoencoderKLFlux2(
        block_out_channels=(8, 8, 16, 16),
        layers_per_block=1,
        norm_num_groups=4,
        latent_channels=32,
        sample_size=64,
    )
    return vae.eval()


def _values(name: str, shape: tuple[int, ...]) -> Any:
    """Weights from numpy's frozen legacy stream, seeded by the tensor's name.

    The same bits on every machine and library release, so reference outputs made once with
    another program (InvokeAI's own backend, in its venv) stay valid. Norm scales are 1;
    batch-norm variances are kept positive.
    """
    import numpy as np

    n = int(np.prod(shape)) if shape else 1
    if name.endswith("weight") and len(shape) == 1 and "norm" in name:
        return np.ones(shape, np.float32)
    rs = np.random.RandomState(zlib.crc32(name.encode()))
    u = rs.randint(-(2**23), 2**23, size=n, dtype=np.int64).astype(np.float64) / 2**23
    if name.endswith("running_var"):
        return (1.0 + np.abs(u)).astype(np.float32).reshape(shape)
    if name.endswith("running_mean"):
        return (0.1 * u).astype(np.float32).reshape(shape)
    fan_in = n // shape[0] if len(shape) > 1 else 0
    width = np.sqrt(3.0) * (0.02 if fan_in == 0 else 1.0 / np.sqrt(fan_in))
    return (u * width).astype(np.float32).reshape(shape)


def deterministic_weights(folder: Path) -> None:
    """Replace every float tensor of the folder's safetensors files by :func:`_values`."""
    import torch
    from safetensors.torch import load_file, save_file

    for path in sorted(folder.rglob("*.safetensors")):
        tensors = load_file(str(path))
        out = {
            k: (torch.from_numpy(_values(k, tuple(v.shape))) if v.is_floating_point() else v)
            for k, v in sorted(tensors.items())
        }
        save_file(out, str(path), metadata={"format": "pt"})


def build_tiny_flux2(folder: str | Path) -> Path:
    """Write a tiny ``Flux2KleinPipeline`` diffusers folder to ``folder`` and return it."""
    from diffusers import FlowMatchEulerDiscreteScheduler, Flux2KleinPipeline

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    tok_dir = root / "tokenizer"
    tok_dir.mkdir(exist_ok=True)
    vocab_size = write_qwen_tokenizer(tok_dir)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir), local_files_only=True)
    pipe = Flux2KleinPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(
            num_train_timesteps=1000,
            shift=3.0,
            use_dynamic_shifting=True,
            base_shift=0.5,
            max_shift=1.15,
            base_image_seq_len=256,
            max_image_seq_len=4096,
            time_shift_type="exponential",
        ),
        vae=_vae(),
        text_encoder=_text_encoder(vocab_size),
        tokenizer=tokenizer,
        transformer=_transformer(3 * QWEN_HIDDEN),
        is_distilled=True,
    )
    pipe.save_pretrained(str(root), safe_serialization=True)
    deterministic_weights(root)
    return root
