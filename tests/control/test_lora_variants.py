"""LoHa, LoKr, DoRA, full-diff and norm layers change the picture; weight 0 is no LoRA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from invoke_nb.graph.standard import OUTPUT, txt2img
from invoke_nb.models.local import LocalModels, identifier
from invoke_nb.nodes.diffusion.lora import LoRAFormatError, LyCORISLayer, parse_lora
from invoke_nb.testing.tiny_control import make_lycoris


@pytest.fixture(scope="session")
def lycoris(cmodels: LocalModels, control_dir) -> dict[str, object]:
    out = {}
    for kind in ("loha", "lokr", "full", "dora"):
        rec = cmodels.register(make_lycoris(control_dir / f"{kind}.safetensors", kind), name=kind)
        out[kind] = identifier(rec)
    return out


def _img(crunner, cmodels, loras) -> np.ndarray:
    from .conftest import cident

    g = txt2img(
        cident(cmodels, "tiny-sd1"), "a cat", width=64, height=64, steps=3,
        scheduler="euler", seed=5, loras=loras,
    )  # fmt: skip
    return np.asarray(crunner.run(g).image(OUTPUT)).astype(np.int16)


@pytest.mark.parametrize("kind", ["loha", "lokr", "full", "dora"])
def test_lycoris_layers_change_the_output_and_weight_zero_does_not(
    crunner, cmodels, lycoris, kind: str
) -> None:
    plain = _img(crunner, cmodels, [])
    on = _img(crunner, cmodels, [(lycoris[kind], 1.0)])
    off = _img(crunner, cmodels, [(lycoris[kind], 0.0)])
    assert np.abs(on - plain).max() > 5
    assert np.abs(off - plain).max() == 0
    assert np.abs(_img(crunner, cmodels, []) - plain).max() == 0  # the UNet is restored


def test_loha_and_lokr_deltas_are_the_published_formulas(control_dir) -> None:
    from safetensors.torch import load_file

    loha = load_file(str(make_lycoris(control_dir / "f-loha.safetensors", "loha")))
    name = "down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
    layer = parse_lora(loha, "unet")[name]
    assert isinstance(layer, LyCORISLayer) and layer.kind == "loha"
    p = f"lora_unet_{name}"
    expected = (loha[f"{p}.hada_w1_a"] @ loha[f"{p}.hada_w1_b"]) * (
        loha[f"{p}.hada_w2_a"] @ loha[f"{p}.hada_w2_b"]
    )  # alpha == rank: scale 1
    assert torch.allclose(layer.delta(torch.Size((32, 768))), expected, atol=1e-6)

    lokr = load_file(str(make_lycoris(control_dir / "f-lokr.safetensors", "lokr")))
    layer = parse_lora(lokr, "unet")[name]
    expected = torch.kron(lokr[f"{p}.lokr_w1"], lokr[f"{p}.lokr_w2_a"] @ lokr[f"{p}.lokr_w2_b"])
    assert torch.allclose(layer.delta(torch.Size((32, 768))), expected, atol=1e-6)


def test_unknown_or_unsupported_layers_are_refused_by_name() -> None:
    sd = {"lora_unet_x_attn1_to_q.hada_t1": torch.zeros(1)}
    with pytest.raises(LoRAFormatError, match="Tucker"):
        parse_lora(sd, "unet")
    with pytest.raises(LoRAFormatError, match="weird_thing"):
        parse_lora({"lora_unet_x.weird_thing": torch.zeros(1)}, "unet")


@pytest.mark.parametrize("kind", ["loha", "lokr"])
def test_probe_places_lycoris_files(control_dir, kind: str) -> None:
    from invoke_nb.models.probe import probe

    found = probe(make_lycoris(control_dir / f"p-{kind}.safetensors", kind))
    assert (found.type, found.base) == ("lora", "sd-1")
