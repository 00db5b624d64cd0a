"""Tiny random-weight Z-Image models, built offline in about a second.

A ``ZImagePipeline`` folder (``ZImageTransformer2DModel``, a Qwen3 text encoder with a
locally written chat-template tokenizer, a FLUX-style 16-channel VAE with scale and shift,
Z-Image-Turbo's scheduler config), the same transformer as one single-file checkpoint, and
PEFT-format Z-Image LoRAs, all at toy widths.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from invoke_nb.testing.tiny_cogview4 import write_vae
from invoke_nb.testing.word_tokenizer import write_word_tokenizer

__all__ = [
    "make_z_image",
    "make_z_image_control",
    "make_z_image_gguf",
    "make_z_image_lora",
    "make_z_image_transformer_file",
]

SCHEDULER: dict[str, Any] = {
    "_class_name": "FlowMatchEulerDiscreteScheduler",
    "num_train_timesteps": 1000,
    "shift": 3.0,
    "use_dynamic_shifting": False,
}
TEXT_WIDTH = 32
# Qwen3's chat template, reduced to what Z-Image's prompt encoding uses
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n"
    "{% endif %}{% endif %}"
)


def _transformer() -> Any:
    from diffusers import ZImageTransformer2DModel

    return ZImageTransformer2DModel(
        in_channels=16,
        dim=32,
        n_layers=2,
        n_refiner_layers=1,
        n_heads=2,
        n_kv_heads=2,
        cap_feat_dim=TEXT_WIDTH,
        axes_dims=[4, 6, 6],
        axes_lens=[256, 32, 32],
    )


def make_z_image(dest: Path, *, seed: int = 0) -> Path:
    """Write a tiny Z-Image diffusers folder to ``dest`` (replaced if present)."""
    from transformers import Qwen3Config, Qwen3Model

    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    torch.manual_seed(seed)
    write_word_tokenizer(
        dest / "tokenizer",
        specials=["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"],
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        chat_template=CHAT_TEMPLATE,
    )
    n_vocab = len(json.loads((dest / "tokenizer" / "tokenizer.json").read_text())["model"]["vocab"])
    Qwen3Model(
        Qwen3Config(
            vocab_size=n_vocab + 8,
            hidden_size=TEXT_WIDTH,
            intermediate_size=64,
            num_hidden_layers=3,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=16,
            max_position_embeddings=1024,
        )
    ).save_pretrained(dest / "text_encoder")
    t = _transformer()
    with torch.no_grad():  # the final layer starts at zero in real training inits; not here
        for p in t.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.02)
    t.save_pretrained(dest / "transformer")
    write_vae(dest / "vae", sharp=True, scaling_factor=0.3611, shift_factor=0.1159)
    (dest / "scheduler").mkdir()
    (dest / "scheduler" / "scheduler_config.json").write_text(json.dumps(SCHEDULER, indent=1))
    index = {
        "_class_name": "ZImagePipeline",
        "_diffusers_version": "0.42.1",
        "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
        "text_encoder": ["transformers", "Qwen3Model"],
        "tokenizer": ["transformers", "PreTrainedTokenizerFast"],
        "transformer": ["diffusers", "ZImageTransformer2DModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (dest / "model_index.json").write_text(json.dumps(index, indent=1))
    return dest


def make_z_image_transformer_file(dest: Path, folder: Path, *, original: bool = False) -> Path:
    """The transformer of the Z-Image ``folder`` as one .safetensors: diffusers key names, or
    with ``original`` Tongyi's layout as single files ship it (``diffusion_model.`` prefix,
    fused ``qkv``, ``x_embedder``/``final_layer``, ``q_norm``/``k_norm``/``out``)."""
    from safetensors.torch import load_file, save_file

    sd = {}
    for f in sorted((folder / "transformer").glob("*.safetensors")):
        sd.update(load_file(str(f)))
    if original:
        sd = _to_original(sd)
    save_file(sd, str(dest))
    return dest


def _to_original(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if ".attention.to_k." in key or ".attention.to_v." in key:
            continue
        if ".attention.to_q." in key:
            head, tail = key.split(".attention.to_q.")
            parts = [sd[f"{head}.attention.{n}.{tail}"] for n in ("to_q", "to_k", "to_v")]
            out[f"diffusion_model.{head}.attention.qkv.{tail}"] = torch.cat(parts)
            continue
        key = key.replace("all_x_embedder.2-1.", "x_embedder.")
        key = key.replace("all_final_layer.2-1.", "final_layer.")
        key = key.replace(".norm_q.", ".q_norm.").replace(".norm_k.", ".k_norm.")
        key = key.replace(".attention.to_out.0.", ".attention.out.")
        out["diffusion_model." + key] = value.contiguous()
    return out


def make_z_image_lora(
    dest: Path, folder: Path, *, rank: int = 4, seed: int = 7, prefix: str = "diffusion_model."
) -> Path:
    """A PEFT-format LoRA (``lora_A``/``lora_B``) on the attention of ``folder``'s transformer."""
    from diffusers import ZImageTransformer2DModel
    from safetensors.torch import save_file

    model = ZImageTransformer2DModel.from_pretrained(folder / "transformer")
    gen = torch.Generator("cpu").manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}
    for name, mod in model.named_modules():
        if (
            isinstance(mod, torch.nn.Linear)
            and name.startswith("layers.")
            and ".attention.to_" in name
        ):
            out_f, in_f = mod.weight.shape
            sd[f"{prefix}{name}.lora_A.weight"] = torch.randn(rank, in_f, generator=gen) * 0.5
            sd[f"{prefix}{name}.lora_B.weight"] = torch.randn(out_f, rank, generator=gen) * 0.5
    save_file(sd, str(dest))
    return dest


CONTROL = {
    "control_layers_places": [0, 1],
    "control_refiner_layers_places": [0],
    "control_in_dim": 16,
    "dim": 32,
    "n_refiner_layers": 1,
    "n_heads": 2,
    "n_kv_heads": 2,
}


def make_z_image_control(dest: Path, *, seed: int = 5, single_file: bool = False) -> Path:
    """A tiny Z-Image ControlNet (VideoX-Fun layout) for ``make_z_image``'s transformer.

    A diffusers folder, or with ``single_file`` one .safetensors in the original key layout
    (InvokeAI's control-model format) whose metadata names the control layer places.
    """
    from diffusers import ZImageControlNetModel
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model = ZImageControlNetModel(**CONTROL)
    with torch.no_grad():  # zero-initialised projections would make the control a no-op
        for name, p in model.named_parameters():
            if "after_proj" in name or "before_proj" in name:
                p.normal_(0, 0.5)
    if not single_file:
        if dest.exists():
            shutil.rmtree(dest)
        model.save_pretrained(dest)
        return dest
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    meta = {"control_layers_places": json.dumps(CONTROL["control_layers_places"])}
    save_file(sd, str(dest), metadata=meta)
    return dest


def make_z_image_gguf(dest: Path, folder: Path, qtype: str = "Q8_0") -> Path:
    """``folder``'s transformer in the original layout, quantized to GGUF (``qtype`` for the
    2-D weights whose rows are whole blocks; the rest float32), as GGUF files ship it."""
    import tempfile

    from invoke_nb.testing.tiny_flux import make_flux_gguf

    with tempfile.TemporaryDirectory() as tmp:
        original = make_z_image_transformer_file(
            Path(tmp) / "zi.safetensors", folder, original=True
        )
        return make_flux_gguf(dest, original, qtype)
