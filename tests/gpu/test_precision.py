"""Precision per device (InvokeAI's choice), the one override, VAE upcast and metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import invoke_nb as inb
from invoke_nb.models.cache import ModelCache
from invoke_nb.models.devices import normalize_precision, resolve_dtype
from invoke_nb.models.local import LocalModels
from invoke_nb.nodes.diffusion.sd.vae import decode_latents
from invoke_nb.nodes.types import identifier


def test_auto_precision_follows_invokeai_per_device() -> None:
    assert resolve_dtype("cpu") == torch.float32
    assert resolve_dtype("mps") == torch.float16
    if not torch.cuda.is_available():  # InvokeAI falls back to float32 without the card
        assert resolve_dtype("cuda") == torch.float32
    assert resolve_dtype("cpu", "bf16") == torch.bfloat16
    assert resolve_dtype("mps", "float32") == torch.float32


def test_bad_precision_and_device_are_named() -> None:
    assert normalize_precision("FP16") == "float16"
    with pytest.raises(ValueError, match="'float8'"):
        normalize_precision("float8")
    with pytest.raises(ValueError, match="'tpu'"):
        ModelCache(device="tpu")
    with pytest.raises(ValueError, match="'half-ish'"):
        inb.Studio(Path("/nonexistent/never-made"), precision="half-ish")
    assert not Path("/nonexistent/never-made").exists()


def test_cache_loads_in_its_precision_and_turns_tf32_on(tiny_sd1: Path) -> None:
    torch.backends.cuda.matmul.allow_tf32 = False
    models = LocalModels(precision="bfloat16")
    model = identifier(models.register(tiny_sd1))
    with models.load(model, "unet") as unet, models.load(model, "text_encoder") as te:
        assert next(unet.parameters()).dtype == torch.bfloat16
        assert next(te.parameters()).dtype == torch.bfloat16
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    with models.load(model, "tokenizer") as tok:  # not a tensor model: untouched
        assert tok("a cat").input_ids


def test_changing_precision_drops_models_in_the_old_dtype(tiny_sd1: Path) -> None:
    models = LocalModels()
    model = identifier(models.register(tiny_sd1))
    with models.load(model, "vae") as vae:
        assert next(vae.parameters()).dtype == torch.float32
    models.cache.precision = "bf16"
    with models.load(model, "vae") as vae:
        assert next(vae.parameters()).dtype == torch.bfloat16
    assert models.loads == 2


def test_sdxl_vae_in_float16_is_upcast_and_keeps_its_dtype(tiny_sdxl: Path) -> None:
    models = LocalModels(precision="float16")
    rec = models.register(tiny_sdxl)
    latents = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(3))
    seen: list[torch.dtype] = []
    with models.load(identifier(rec), "vae") as vae:
        assert vae.config.force_upcast
        hook = vae.decoder.register_forward_pre_hook(lambda _m, a: seen.append(a[0].dtype))
        try:
            image = decode_latents(vae, latents, fp32=False, base="sdxl")
            assert seen == [torch.float32]
            decode_latents(vae, latents, fp32=False, base="sd-1")  # SD1 pipelines: no upcast
            assert seen[-1] == torch.float16
        finally:
            hook.remove()
        assert next(vae.parameters()).dtype == torch.float16  # the cached model is unchanged
    arr = np.asarray(image)
    assert arr.shape == (64, 64, 3) and arr.std() > 0


def test_studio_precision_is_recorded_in_image_metadata(tmp_path: Path, tiny_sd1: Path) -> None:
    studio = inb.Studio(tmp_path / "studio", precision="bfloat16")
    try:
        studio.models.install(str(tiny_sd1), name="tiny", in_place=True)
        assert studio.models.cache.dtype == torch.bfloat16
        img = studio.txt2img(
            "a cat", model="tiny", width=64, height=64, steps=2, seed=1, progress=False
        )
        assert img.metadata["precision"] == "bfloat16"
        assert np.asarray(img.pil).std() > 0
    finally:
        studio.models.cache.precision = "auto"
        studio.close()
