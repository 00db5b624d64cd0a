"""A tiny random LLaVA-OneVision model in the hub's folder layout, built offline.

The layout follows ``llava-hf/llava-onevision-qwen2-*-hf``: ``config.json`` +
``model.safetensors``, a fast tokenizer with the ``<image>``/``<video>`` tokens, the image
processor's ``preprocessor_config.json``, ``processor_config.json`` (image tokens per tile,
feature strategy, aspect-ratio rule) and ``chat_template.jinja``. Sizes are scaled down: 32 px
tiles of 8 px patches (16 image tokens per tile), a 2-layer Qwen2 and SigLIP.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["make_llava_onevision"]

_TILE = 32
_PINPOINTS = [[32, 32], [32, 64], [64, 32], [64, 64]]
_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"]
_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>\n"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _tokenizer(dest: Path) -> int:
    """Train a small byte-level BPE on a few words and save it; returns its vocab size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(["user assistant describe the image a cat on a red sofa"] * 4, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens={"image_token": "<image>", "video_token": "<video>"},
    )
    fast.save_pretrained(dest)
    return len(fast)


def make_llava_onevision(dest: Path, *, seed: int = 0) -> Path:
    """Write a tiny random LLaVA-OneVision folder at ``dest`` and return it."""
    import torch
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration

    dest.mkdir(parents=True, exist_ok=True)
    vocab = _tokenizer(dest)
    ids = {t: _SPECIALS.index(t) for t in _SPECIALS}  # trained first, so ids 0..4
    cfg = LlavaOnevisionConfig(
        text_config={
            "model_type": "qwen2",
            "vocab_size": vocab,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": 2048,
            "eos_token_id": ids["<|im_end|>"],
        },
        vision_config={
            "model_type": "siglip_vision_model",
            "image_size": _TILE,
            "patch_size": 8,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
        },
        image_token_index=ids["<image>"],
        video_token_index=ids["<video>"],
        image_grid_pinpoints=_PINPOINTS,
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
    )
    torch.manual_seed(seed)
    model = LlavaOnevisionForConditionalGeneration(cfg).eval()
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(dest)
    image = {
        "image_processor_type": "LlavaOnevisionImageProcessor",
        "size": {"height": _TILE, "width": _TILE},
        "crop_size": {"height": _TILE, "width": _TILE},
        "image_grid_pinpoints": _PINPOINTS,
        "do_pad": True,
        "do_convert_rgb": True,
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
    }
    (dest / "preprocessor_config.json").write_text(json.dumps(image, indent=2))
    processor = {
        "processor_class": "LlavaOnevisionProcessor",
        "num_image_tokens": (_TILE // 8) ** 2,
        "vision_feature_select_strategy": "full",
        "vision_aspect_ratio": "anyres_max_9",
    }
    (dest / "processor_config.json").write_text(json.dumps(processor, indent=2))
    (dest / "chat_template.jinja").write_text(_TEMPLATE)
    return dest
