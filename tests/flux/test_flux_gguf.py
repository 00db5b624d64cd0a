"""GGUF-quantized FLUX transformers load and run close to the float model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from flux_support import parts, register

import invoke_nb as inb
from invoke_nb.graph import standard_flux
from invoke_nb.models.local import identifier
from invoke_nb.models.probe import probe
from invoke_nb.testing.tiny_flux import make_flux_gguf

gguf = pytest.importorskip("gguf")

# Q8_0 keeps 8 bits per weight: the tiny model's whole denoise stays within 5% (relative L2)
# of the float model's latents; measured ~1% per transformer call.
Q8_TOLERANCE = 0.05


@pytest.fixture(scope="module")
def q8(flux_paths, tmp_path_factory) -> Path:
    return make_flux_gguf(tmp_path_factory.mktemp("gguf") / "dev-q8_0.gguf", flux_paths["dev_file"])


def test_gguf_is_identified(q8: Path) -> None:
    r = probe(q8)
    assert (r.type, r.base, r.format, r.variant) == ("main", "flux", "gguf_quantized", "dev")


def test_q8_transformer_runs_close_to_the_float_one(flux_models, flux, q8) -> None:
    rec = register(flux_models, q8, "flux-dev-q8")
    runner = inb.Runner(services=inb.Services(models=flux_models))
    out = {}
    for name, model in (("float", flux["dev_file"]), ("q8", identifier(rec))):
        g = standard_flux.txt2img(
            model, "a cat", width=32, height=32, steps=3, seed=2, **parts(flux)
        )
        r = runner.run(g)
        out[name] = r.value(r.outputs["flux_denoise"].latents)
    with flux_models.load(identifier(rec), "transformer") as model:
        assert type(model.transformer_blocks[0].attn.to_q).__name__ == "GGUFLinear"
        assert model.transformer_blocks[0].attn.to_q.raw.dtype == torch.uint8
    err = ((out["q8"] - out["float"]).norm() / out["float"].norm()).item()
    assert 0 < err < Q8_TOLERANCE


@pytest.mark.parametrize("qtype", ["Q8_0", "Q4_0", "Q5_0"])
def test_torch_dequantizer_matches_gguf(qtype: str) -> None:
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize as np_dequantize
    from gguf.quants import quantize

    from invoke_nb.models.gguf_flux import dequantize

    kind = GGMLQuantizationType[qtype]
    w = np.random.default_rng(0).standard_normal((4, 64)).astype(np.float32)
    raw = quantize(w, kind)
    ours = dequantize(torch.from_numpy(raw), int(kind), (4, 64))
    assert np.allclose(ours.numpy(), np_dequantize(raw, kind), atol=1e-6)
    assert np.abs(ours.numpy() - w).max() < 0.5


def test_lora_on_gguf_runs_beside_the_quantized_weights(flux_models, flux, q8) -> None:
    rec = next(iter(flux_models.store.list(name="flux-dev-q8")), None) or register(
        flux_models, q8, "flux-dev-q8"
    )
    runner = inb.Runner(services=inb.Services(models=flux_models))
    out = {}
    for name, model, loras in (
        ("float", flux["dev_file"], [(flux["lora_kohya"], 1.0)]),
        ("q8", identifier(rec), [(flux["lora_kohya"], 1.0)]),
        ("q8-plain", identifier(rec), []),
    ):
        g = standard_flux.txt2img(model, "a cat", width=32, height=32, steps=3, seed=2,
                                  loras=loras, **parts(flux))  # fmt: skip
        r = runner.run(g)
        out[name] = r.value(r.outputs["flux_denoise"].latents)
    err = ((out["q8"] - out["float"]).norm() / out["float"].norm()).item()
    assert err < Q8_TOLERANCE  # the LoRA acts as on the float model
    assert (out["q8"] - out["q8-plain"]).abs().max() > 1e-3
    with flux_models.load(identifier(rec), "transformer") as model:
        assert all(not m.sidecars for m in model.modules() if hasattr(m, "sidecars"))
