"""The reference model shared with InvokeAI: the tiny SD1 factory, written the way every
transformers version reads it.

``make_sd1`` saves its CLIP text encoder with transformers 5.2x, which drops the
``text_model.`` prefix from the weight names. transformers 5.5 (what InvokeAI 6.14.2 runs)
does not map the short names back and silently starts from random weights, so InvokeAI's
images would not depend on our weights at all. Real SD1 checkpoints carry the prefix; this
module rewrites the file with it (both versions then load the same tensors) and keeps the
bytes deterministic, so the folder's blake3 hash is the one InvokeAI recorded in the
reference PNGs (see tests/fixtures/invokeai/README.md).
"""

from __future__ import annotations

from pathlib import Path

# What InvokeAI 6.14.2 recorded for this model in the reference PNGs (its own hashing).
REFERENCE_HASH = "blake3:38bf5edab79880d9b6db80662b138d25bbc014428d523c39f6956d5a181bf213"


def canonical_text_encoder(model_dir: Path) -> None:
    """Prefix the text encoder's weight names with ``text_model.`` (no-op when present)."""
    from safetensors.torch import load_file, save_file

    path = Path(model_dir) / "text_encoder" / "model.safetensors"
    tensors = load_file(path)
    if all(k.startswith("text_model.") for k in tensors):
        return
    fixed = {
        (k if k.startswith("text_model.") else f"text_model.{k}"): v for k, v in tensors.items()
    }
    save_file(dict(sorted(fixed.items())), path, metadata={"format": "pt"})


def build_reference_sd1(dest: Path) -> Path:
    """The tiny SD1 model (768-wide CLIP and cross-attention, 4-block VAE) of the fixtures."""
    from invoke_nb.testing.tiny_models import make_sd1

    folder = make_sd1(Path(dest), seed=0)
    canonical_text_encoder(folder)
    return folder
