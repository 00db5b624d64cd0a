"""bitsandbytes checkpoints in InvokeAI's layouts, made by bitsandbytes itself in the test
factory: an NF4 FLUX transformer and an LLM.int8 T5 encoder load, run in flux_denoise on the
CPU (bitsandbytes' CPU kernels) and stay close to the float models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from flux_support import parts, register

import invoke_nb as inb
from invoke_nb.graph import standard_flux
from invoke_nb.models.errors import ModelLoadError
from invoke_nb.models.local import LocalModels, identifier
from invoke_nb.models.probe import probe

pytest.importorskip("bitsandbytes")

from invoke_nb.testing.tiny_flux_bnb import make_flux_nf4, make_flux_t5_int8

# NF4 keeps 4 bits per weight: on the tiny random model each dequantized weight is ~9% off
# (relative L2; NF4's expected error on Gaussian weights) and one transformer call ~17%;
# the 3-step denoise stays within 25% of the float model's latents (measured 15.4%).
NF4_TOLERANCE = 0.25
NF4_WEIGHT_TOLERANCE = 0.12
# LLM.int8 (int8 weights with per-row scales; activations quantized to int8 per row, columns
# above 6 kept in float): the latents of a denoise conditioned on the 8-bit T5's embeddings
# stay within 5% of the float T5's (measured 1.0%).
INT8_TOLERANCE = 0.05


@pytest.fixture(scope="module")
def nf4(flux_paths, tmp_path_factory) -> dict[bool, Path]:
    root = tmp_path_factory.mktemp("nf4")
    return {
        nested: make_flux_nf4(root / f"dev-nf4-{nested}.safetensors", flux_paths["dev_file"],
                              nested=nested)
        for nested in (False, True)
    }  # fmt: skip


@pytest.fixture(scope="module")
def t5_int8(flux_paths, tmp_path_factory) -> Path:
    return make_flux_t5_int8(tmp_path_factory.mktemp("t5int8") / "t5-int8", flux_paths["t5"])


def _latents(models: LocalModels, model, **kw) -> torch.Tensor:
    runner = inb.Runner(services=inb.Services(models=models))
    g = standard_flux.txt2img(model, "a cat", width=32, height=32, steps=3, seed=2, **kw)
    r = runner.run(g)
    return r.value(r.outputs["flux_denoise"].latents)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("nested", [False, True])
def test_nf4_file_is_identified_and_keeps_4bit_layers(flux_models, nf4, nested: bool) -> None:
    from safetensors.torch import load_file

    from invoke_nb.models.bnb_quant import bitsandbytes

    path = nf4[nested]
    r = probe(path)
    assert (r.type, r.base, r.format, r.variant) == ("main", "flux", "bnb_quantized_nf4b", "dev")
    rec = register(flux_models, path, f"flux-dev-nf4-{nested}")
    with flux_models.load(identifier(rec), "transformer") as model:
        attn = model.transformer_blocks[0].attn
        assert type(attn.to_q).__name__ == "NF4Linear"
        assert attn.to_q.packed.dtype == torch.uint8
        assert attn.to_q.packed.numel() == attn.to_q.in_features * attn.to_q.out_features // 2
        # the fused qkv split by rows: each part is exactly bitsandbytes' dequantized rows
        sd = load_file(str(path))
        prefix = "double_blocks.0.img_attn.qkv.weight."
        F = bitsandbytes().functional
        state = F.QuantState.from_dict(
            {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}, "cpu"
        )
        full = F.dequantize_4bit(sd["double_blocks.0.img_attn.qkv.weight"], state)
        ours = torch.cat([m.weight_float(torch.float32) for m in (attn.to_q, attn.to_k, attn.to_v)])
        assert torch.equal(ours, full)


def test_nf4_weights_are_within_nf4_error(flux_models, flux_paths, nf4) -> None:
    from safetensors.torch import load_file

    rec = next(iter(flux_models.store.list(name="flux-dev-nf4-False")), None) or register(
        flux_models, nf4[False], "flux-dev-nf4-False"
    )
    float_sd = load_file(str(flux_paths["dev_file"]))
    with flux_models.load(identifier(rec), "transformer") as model:
        w = model.single_transformer_blocks[0].proj_out.weight_float(torch.float32)
        err = _rel(w, float_sd["single_blocks.0.linear2.weight"])
    assert 0 < err < NF4_WEIGHT_TOLERANCE


def test_nf4_transformer_denoises_close_to_the_float_one(flux_models, flux, nf4) -> None:
    rec = register(flux_models, nf4[True], "flux-dev-nf4-run")
    ref = _latents(flux_models, flux["dev_file"], **parts(flux))
    got = _latents(flux_models, identifier(rec), **parts(flux))
    assert got.shape == ref.shape and torch.isfinite(got).all()
    assert 0 < _rel(got, ref) < NF4_TOLERANCE


def test_lora_on_nf4_runs_beside_the_4bit_weights(flux_models, flux) -> None:
    rec = next(iter(flux_models.store.list(name="flux-dev-nf4-run")))
    lora = [(flux["lora_kohya"], 1.0)]
    ref = _latents(flux_models, flux["dev_file"], loras=lora, **parts(flux))
    got = _latents(flux_models, identifier(rec), loras=lora, **parts(flux))
    plain = _latents(flux_models, identifier(rec), **parts(flux))
    assert _rel(got, ref) < NF4_TOLERANCE  # the LoRA acts as on the float model
    assert (got - plain).abs().max() > 1e-3
    with flux_models.load(identifier(rec), "transformer") as model:
        assert all(not m.sidecars for m in model.modules() if hasattr(m, "sidecars"))


def test_int8_t5_encodes_and_denoises_close_to_the_float_t5(
    flux_models, flux, t5_int8, monkeypatch
) -> None:
    r = probe(t5_int8)
    assert (r.type, r.base, r.format) == ("t5_encoder", "any", "bnb_quantized_int8b")
    rec = register(flux_models, t5_int8, "flux-t5-int8")
    with flux_models.load(identifier(rec), "text_encoder_2") as t5:
        q = t5.encoder.block[0].layer[0].SelfAttention.q
        assert type(q).__name__ == "Int8Linear" and q.weight.dtype == torch.int8
        assert t5.encoder.embed_tokens.weight is t5.shared.weight
    from invoke_nb.models.bnb_quant import bitsandbytes

    F = bitsandbytes().functional
    quantized = []  # LLM.int8 proper: each layer call quantizes its activations to int8
    real = F.int8_vectorwise_quant
    monkeypatch.setattr(
        F, "int8_vectorwise_quant", lambda *a, **k: quantized.append(1) or real(*a, **k)
    )
    ref = _latents(flux_models, flux["dev_file"], **parts(flux))
    assert not quantized
    got = _latents(flux_models, flux["dev_file"], **{**parts(flux), "t5_encoder": identifier(rec)})
    assert len(quantized) >= 2 * 7  # two blocks of q, k, v, o, wi_0, wi_1, wo
    assert 0 < _rel(got, ref) < INT8_TOLERANCE


def test_missing_bitsandbytes_is_a_clear_error(monkeypatch) -> None:
    import sys

    from invoke_nb.models.bnb_quant import bitsandbytes

    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # as if not installed
    with pytest.raises(ImportError, match=r"invoke-nb\[bnb\]"):
        bitsandbytes.__wrapped__()


def test_corrupt_nf4_quant_state_is_a_model_error(tmp_path: Path, flux_paths) -> None:
    from safetensors.torch import load_file, save_file

    sd = load_file(str(flux_paths["dev_file"]))
    sd["double_blocks.0.img_attn.qkv.weight.quant_state.bitsandbytes__nf4"] = torch.zeros(
        8, dtype=torch.uint8
    )
    path = tmp_path / "flux-nf4.safetensors"
    save_file(sd, str(path))
    models = LocalModels()
    rec = register(models, path, "flux-nf4")
    assert rec.format == "bnb_quantized_nf4b"
    with (
        pytest.raises(ModelLoadError, match="flux-nf4"),
        models.load(identifier(rec), "transformer"),
    ):
        pass
    assert models.cache.keys() == []


def test_bitsandbytes_hub_kernel_fetch_is_refused(tmp_path: Path) -> None:
    import subprocess
    import sys

    import kernels

    from invoke_nb.models.offline_kernels import REFUSED

    # in this process: guarded as kernels loaded, or when invoke_nb was imported
    for repo in REFUSED:
        with pytest.raises(RuntimeError, match="does not download"):
            kernels.get_kernel(repo)
    # kernels loaded before invoke_nb: guarded when invoke_nb is imported
    code = (
        "import kernels, invoke_nb\n"
        "try:\n    kernels.get_kernel('kernels-community/quantization-bitsandbytes')\n"
        "except RuntimeError as e:\n    print('refused:', e)\n"
    )
    src = Path(__file__).resolve().parents[2] / "src"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
        cwd=tmp_path, env={"PYTHONPATH": str(src), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert "refused: invoke-nb does not download" in done.stdout, done.stderr[-2000:]
