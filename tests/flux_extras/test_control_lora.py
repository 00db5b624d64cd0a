"""FLUX control LoRAs: identified by the probe, bundled by flux_control_lora_loader, and run
by flux_denoise (control image latents beside the noise, input layer widened and patched)."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from invoke_nb.graph import standard_flux
from invoke_nb.graph.errors import NodeError
from invoke_nb.graph.model import Graph
from invoke_nb.models.local import identifier
from invoke_nb.models.probe import probe
from invoke_nb.models.records import ModelRecord
from invoke_nb.testing import tiny_flux

HIDDEN = tiny_flux.HIDDEN


def _register(models, path, name: str, **extra) -> object:
    found = probe(path)
    rec = ModelRecord(
        key=uuid.uuid4().hex, hash=f"local:{name}", path=str(path), name=name, base=found.base,
        type=found.type, format=found.format, variant=found.variant, source=str(path),
        owned=False, **extra,
    )  # fmt: skip
    return found, identifier(models.store.add(rec))


def _lora_tensors(seed: int, with_scale: bool) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)

    def r(*shape: int, s: float = 0.3) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * s

    sd = {
        "img_in.lora_A.weight": r(4, 128),
        "img_in.lora_B.weight": r(HIDDEN, 4),
        "img_in.lora_B.bias": r(HIDDEN),
        "double_blocks.0.img_attn.qkv.lora_A.weight": r(4, HIDDEN),
        "double_blocks.0.img_attn.qkv.lora_B.weight": r(3 * HIDDEN, 4),
        "double_blocks.0.img_attn.qkv.lora_B.bias": r(3 * HIDDEN),
    }
    if with_scale:
        sd["single_blocks.0.norm.key_norm.scale"] = 1.0 + r(tiny_flux.HEAD)
    return sd


@pytest.fixture(scope="module")
def control_loras(tmp_path_factory: pytest.TempPathFactory, extras_models) -> dict[str, object]:
    root = tmp_path_factory.mktemp("control-lora")
    out = {}
    for name, with_scale in (("canny", False), ("depth", True)):
        path = root / f"{name}-lora.safetensors"
        save_file(_lora_tensors(len(name), with_scale), path)
        found, out[name] = _register(extras_models, path, f"{name}-lora")
        assert (found.type, found.base, found.format) == ("control_lora", "flux", "lycoris")
    return out


@pytest.fixture(scope="module")
def control_lora(control_loras) -> object:
    return control_loras["canny"]


def _control_image(shift: int) -> Image.Image:
    y, x = np.mgrid[0:64, 0:64]
    edges = (((x + shift) // 8 + y // 8) % 2) * 255
    return Image.fromarray(np.stack([edges] * 3, axis=-1).astype(np.uint8))


def _latents(runner, extras, lora=None, image=None, weight=1.0, model=None) -> torch.Tensor:
    g = standard_flux.txt2img(
        model or extras["dev"], "a house", width=64, height=64, steps=2, seed=3,
        t5_encoder=extras["t5"], clip_embed=extras["clip"], vae=extras["vae"],
    )  # fmt: skip
    if lora is not None:
        g.add("flux_control_lora_loader", id="cl", lora=lora, image=image, weight=weight)
        g.connect("cl", "control_lora", "flux_denoise", "control_lora")
    r = runner.run(g)
    return r.value(r.outputs["flux_denoise"].latents)


def test_loader_bundles_lora_image_and_weight(extras_runner, control_lora) -> None:
    g = Graph()
    image = Image.new("RGB", (64, 64), (10, 20, 30))
    g.add("flux_control_lora_loader", id="cl", lora=control_lora, image=image, weight=0.7)
    out = extras_runner.run(g).outputs["cl"].control_lora
    assert out.weight == 0.7 and out.lora.name == "canny-lora" and out.lora.type == "control_lora"
    assert out.img.image_name


def test_loader_refuses_another_model_type(extras_runner, extras) -> None:
    g = Graph()
    g.add("flux_control_lora_loader", id="cl", lora=extras["vae"], image=Image.new("RGB", (8, 8)))
    with pytest.raises(NodeError) as err:
        extras_runner.run(g)
    assert "'cl'" in str(err.value) and "lora" in str(err.value)


def test_weight_zero_equals_no_lora(extras_runner, extras, control_lora) -> None:
    plain = _latents(extras_runner, extras)
    zero = _latents(extras_runner, extras, control_lora, _control_image(0), weight=0.0)
    assert torch.allclose(plain, zero, atol=1e-5)


def test_output_follows_the_control_image(extras_runner, extras, control_lora) -> None:
    plain = _latents(extras_runner, extras)
    a = _latents(extras_runner, extras, control_lora, _control_image(0))
    b = _latents(extras_runner, extras, control_lora, _control_image(4))
    assert (a - plain).abs().max() > 1e-2
    assert (a - b).abs().max() > 1e-3
    again = _latents(extras_runner, extras, control_lora, _control_image(0))
    assert torch.allclose(a, again, atol=1e-6)


def test_cached_transformer_is_unchanged_after_a_run(
    extras_runner, extras_models, extras, control_loras
) -> None:
    with extras_models.load(extras["dev"], "transformer") as model:
        before = {k: v.clone() for k, v in model.state_dict().items()}
    with_lora = _latents(extras_runner, extras, control_loras["depth"], _control_image(0))
    with extras_models.load(extras["dev"], "transformer") as model:
        assert isinstance(model.x_embedder, torch.nn.Linear)
        assert model.x_embedder.weight.shape == (HIDDEN, 64)
        after = model.state_dict()
        assert after.keys() == before.keys()
        assert all(torch.equal(before[k], after[k]) for k in before)
    assert with_lora.abs().max() > 0
    # the LoRA's norm scale really was set during the run (it ignores the weight)
    plain = _latents(extras_runner, extras)
    zero = _latents(extras_runner, extras, control_loras["depth"], _control_image(0), 0.0)
    assert (zero - plain).abs().max() > 1e-4


def test_schnell_refuses_control_loras(
    tmp_path_factory, extras_runner, extras_models, extras_paths, control_lora
) -> None:
    root = tmp_path_factory.mktemp("schnell")
    path = tiny_flux.make_flux(
        root / "schnell", "schnell",
        t5=extras_paths["t5"], clip=extras_paths["clip"], vae=extras_paths["vae"],
    )  # fmt: skip
    _, schnell = _register(extras_models, path, "flux-schnell-cl")
    g = standard_flux.txt2img(
        schnell, "x", width=64, height=64, steps=1,
        t5_encoder=_id(extras_models, "flux-t5"), clip_embed=_id(extras_models, "flux-clip"),
        vae=_id(extras_models, "flux-vae"),
    )  # fmt: skip
    g.add("flux_control_lora_loader", id="cl", lora=control_lora, image=_control_image(0))
    g.connect("cl", "control_lora", "flux_denoise", "control_lora")
    with pytest.raises(NodeError) as err:
        extras_runner.run(g)
    assert "control_lora" in str(err.value) and "Schnell" in str(err.value)


def _id(models, name: str) -> object:
    return identifier(next(r for r in models.store.list() if r.name == name))


def test_control_lora_on_a_partly_loaded_transformer(
    extras_runner, budgeted_runner, extras, control_loras
) -> None:
    want = _latents(extras_runner, extras, control_loras["depth"], _control_image(0))
    got = _latents(budgeted_runner, extras, control_loras["depth"], _control_image(0))
    assert budgeted_runner.services.models.cache.stats().partial_loads >= 1
    assert torch.allclose(got, want, atol=1e-5)


def test_a_control_lora_for_another_width_is_refused_naming_the_field(
    tmp_path, extras_runner, extras_models, extras
) -> None:
    path = tmp_path / "full-size.safetensors"
    save_file(
        {
            "double_blocks.0.img_attn.qkv.lora_A.weight": torch.ones(4, 3072),
            "double_blocks.0.img_attn.qkv.lora_B.weight": torch.ones(3 * 3072, 4),
            "img_in.lora_A.weight": torch.ones(4, 128),
            "img_in.lora_B.weight": torch.ones(3072, 4),
            "img_in.lora_B.bias": torch.ones(3072),
        },
        path,
    )
    _, wide = _register(extras_models, path, "full-size-lora")
    plain = _latents(extras_runner, extras)
    with pytest.raises(NodeError) as err:
        _latents(extras_runner, extras, wide, _control_image(0))
    assert "flux_denoise" in str(err.value) and "control_lora" in str(err.value)
    assert torch.equal(_latents(extras_runner, extras), plain)  # nothing was left changed


# Quantized transformers run the control LoRA beside their weights. GGUF Q8_0 keeps 8 bits
# per weight: within 5% of the float model's latents (the GGUF tests' tolerance; measured
# 0.7%, while the LoRA moves them 63%); bitsandbytes NF4 within 25% (the NF4 tests';
# measured 14%).
TOLERANCE = {"gguf": 0.05, "nf4": 0.25}


def _quantized(kind: str, root, bfl):
    if kind == "gguf":
        pytest.importorskip("gguf")
        return tiny_flux.make_flux_gguf(root / "dev.gguf", bfl)
    pytest.importorskip("bitsandbytes")
    from invoke_nb.testing.tiny_flux_bnb import make_flux_nf4

    return make_flux_nf4(root / "dev-nf4.safetensors", bfl)


@pytest.mark.parametrize("kind", ["gguf", "nf4"])
def test_control_lora_on_a_quantized_transformer_matches_the_float_one(
    kind, tmp_path_factory, extras_runner, extras_models, extras_paths, extras, control_loras
) -> None:
    root = tmp_path_factory.mktemp(f"{kind}-control")
    bfl = tiny_flux.make_flux_file(root / "dev.safetensors", extras_paths["dev"])
    _, quant = _register(extras_models, _quantized(kind, root, bfl), f"dev-{kind}")
    lora, image = control_loras["depth"], _control_image(0)
    want = _latents(extras_runner, extras, lora, image)
    got = _latents(extras_runner, extras, lora, image, model=quant)
    plain = _latents(extras_runner, extras, model=quant)
    rel = ((got - want).norm() / want.norm()).item()
    assert rel < TOLERANCE[kind]
    assert ((got - plain).norm() / plain.norm()).item() > 2 * rel  # the LoRA acts
    with extras_models.load(quant, "transformer") as model:
        assert type(model.x_embedder).__name__ in ("GGUFLinear", "NF4Linear")  # unwidened
        assert all(not m.sidecars for m in model.modules() if hasattr(m, "sidecars"))
    assert torch.equal(_latents(extras_runner, extras, model=quant), plain)  # restored exactly
