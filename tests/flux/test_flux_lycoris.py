"""DoRA, LoHa and LoKr FLUX LoRAs: merged weights equal the published formulas and InvokeAI's
own patch (a committed fixture), change the picture, and weight 0 is no LoRA."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from flux_support import parts, register
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from invoke_nb.graph import standard_flux
from invoke_nb.models.flux_keys import diffusers_to_bfl, module_map
from invoke_nb.models.local import identifier
from invoke_nb.nodes.diffusion.flux.lora_formats import FluxLoRAError, convert_flux_lora
from invoke_nb.nodes.diffusion.lora import DoRALayer, LoRAFormatError, parse_lora, patched

FIXTURE = Path(__file__).parents[1] / "fixtures" / "invokeai" / "flux-lycoris"
INNER = 16  # the fixture's transformer width (q, k and v rows of a fused layer each)
# float32 sums in a different order (ours: per stacked layer; InvokeAI: per BFL module)
ATOL = 1e-5


def _fixture() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], float]:
    lora = load_file(str(FIXTURE / "lora.safetensors"))
    weights = load_file(str(FIXTURE / "weights.safetensors"))
    with safe_open(str(FIXTURE / "weights.safetensors"), "pt") as f:
        weight = float(f.metadata()["weight"])
    return lora, weights, weight


def _diffusers_net(orig: dict[str, torch.Tensor]) -> torch.nn.Module:
    """Plain linear layers under diffusers' names holding the BFL weights' row blocks."""
    net = torch.nn.Module()
    targets = module_map(1, 1)
    for bfl, w in orig.items():
        names = targets[bfl]
        sizes = [INNER] * 3 + [w.shape[0] - 3 * INNER] if len(names) == 4 else None
        rows = w.split(sizes or [w.shape[0] // len(names)] * len(names), dim=0)
        for name, block in zip(names, rows, strict=True):
            parent = net
            *path, leaf = name.split(".")
            for p in path:
                if not hasattr(parent, p):
                    parent.add_module(p, torch.nn.Module())
                parent = getattr(parent, p)
            lin = torch.nn.Linear(block.shape[1], block.shape[0], bias=False)
            lin.weight.data = block.clone()
            parent.add_module(leaf, lin)
    return net


def _as_bfl(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {
        k.removesuffix(".weight"): v.clone() for k, v in diffusers_to_bfl(net.state_dict()).items()
    }


def _ours(lora: dict[str, torch.Tensor], orig: dict[str, torch.Tensor], weight: float) -> dict:
    net = _diffusers_net(orig)
    conv = convert_flux_lora(lora, INNER)["transformer"]
    with patched(net, [(conv, weight)], "transformer"):
        after = _as_bfl(net)
    restored = _as_bfl(net)
    for k, w in orig.items():
        assert torch.equal(restored[k], w), f"{k} not restored"
    return after


def test_merged_weights_equal_invokeai_patch() -> None:
    """The fixture was made by InvokeAI 6.11.1's kohya loader and LayerPatcher (make_fixture.py)."""
    lora, w, weight = _fixture()
    orig = {k.removeprefix("orig."): v for k, v in w.items() if k.startswith("orig.")}
    after = _ours(lora, orig, weight)
    for module in orig:
        want = w[f"invokeai.{module}"]
        assert (after[module] - orig[module]).abs().max() > 1e-3, module
        err = (after[module] - want).abs().max().item()
        assert err < ATOL, f"{module}: {err}"


def _kohya(module: str) -> str:
    return "lora_unet_" + module.replace(".", "_")


def test_merged_weights_equal_the_published_formulas() -> None:
    """Each layer kind written out here, on the BFL (fused) weights: DoRA per the paper with
    one magnitude per input column, LoHa a Hadamard and LoKr a Kronecker product."""
    lora, w, weight = _fixture()
    orig = {k.removeprefix("orig."): v for k, v in w.items() if k.startswith("orig.")}
    after = _ours(lora, orig, weight)

    def t(module: str, name: str) -> torch.Tensor:
        return lora[f"{_kohya(module)}.{name}"]

    for module in ("double_blocks.0.img_attn.qkv", "single_blocks.0.linear2"):
        down, up = t(module, "lora_down.weight"), t(module, "lora_up.weight")
        v = orig[module] + float(t(module, "alpha")) / down.shape[0] * up @ down
        dora = t(module, "dora_scale") * v / v.norm(dim=0, keepdim=True)  # ||.||_col
        want = orig[module] + weight * (dora - orig[module])
        assert torch.allclose(after[module], want, atol=ATOL), module
    m = "single_blocks.0.linear1"
    loha = (t(m, "hada_w1_a") @ t(m, "hada_w1_b")) * (t(m, "hada_w2_a") @ t(m, "hada_w2_b"))
    want = orig[m] + weight * float(t(m, "alpha")) / t(m, "hada_w1_b").shape[0] * loha
    assert torch.allclose(after[m], want, atol=ATOL)
    m = "double_blocks.0.img_attn.proj"
    kron = torch.kron(t(m, "lokr_w1"), t(m, "lokr_w2_a") @ t(m, "lokr_w2_b"))
    want = orig[m] + weight * float(t(m, "alpha")) / t(m, "lokr_w2_b").shape[0] * kron
    assert torch.allclose(after[m], want, atol=ATOL)
    m = "double_blocks.0.txt_attn.qkv"
    kron = torch.kron(t(m, "lokr_w1_a") @ t(m, "lokr_w1_b"), t(m, "lokr_w2"))
    want = orig[m] + weight * float(t(m, "alpha")) / t(m, "lokr_w1_b").shape[0] * kron
    assert torch.allclose(after[m], want, atol=ATOL)


def test_onetrainer_and_peft_dora() -> None:
    """OneTrainer's ``dora_scale`` on a diffusers q projection normalises its own columns
    (InvokeAI slices the fused weight per sub-layer); PEFT's ``lora_magnitude_vector`` has
    one magnitude per output row (PEFT's own norm axis)."""
    _, w, _ = _fixture()
    orig = {"double_blocks.0.img_attn.qkv": w["orig.double_blocks.0.img_attn.qkv"]}
    q = orig["double_blocks.0.img_attn.qkv"][:INNER]
    g = torch.Generator().manual_seed(3)
    down, up = torch.randn(2, INNER, generator=g), torch.randn(INNER, 2, generator=g) * 0.3
    col = q.norm(dim=0, keepdim=True) * 1.1
    row = q.norm(dim=1) * 0.9
    name = "lora_transformer_transformer_blocks_0_attn_to_q"
    onetrainer = {
        f"{name}.lora_down.weight": down,
        f"{name}.lora_up.weight": up,
        f"{name}.alpha": torch.tensor(1.0),
        f"{name}.dora_scale": col,
    }
    peft = {
        "transformer.transformer_blocks.0.attn.to_q.lora_A.weight": down,
        "transformer.transformer_blocks.0.attn.to_q.lora_B.weight": up,
        "transformer.transformer_blocks.0.attn.to_q.lora_magnitude_vector": row,
    }
    for sd, scale, m, dim in ((onetrainer, 0.5, col, 0), (peft, 1.0, row[:, None], 1)):
        after = _ours(sd, orig, 0.7)["double_blocks.0.img_attn.qkv"]
        v = q + scale * up @ down
        want = q + 0.7 * (m * v / v.norm(dim=dim, keepdim=True) - q)
        assert torch.allclose(after[:INNER], want, atol=ATOL)
        assert torch.equal(after[INNER:], orig["double_blocks.0.img_attn.qkv"][INNER:])


def test_sd_dora_conv_norm_runs_per_input_channel() -> None:
    """The shared patcher applies kohya DoRA to SD's layers too (a 4-D conv weight here)."""
    g = torch.Generator().manual_seed(4)
    w = torch.randn(8, 6, 3, 3, generator=g)
    down, up = torch.randn(2, 6, 3, 3, generator=g), torch.randn(8, 2, 1, 1, generator=g)
    scale = torch.rand(1, 6, 1, 1, generator=g) + 0.5
    name = "lora_unet_down_blocks_0_resnets_0_conv1"
    sd = {f"{name}.lora_down.weight": down, f"{name}.lora_up.weight": up,
          f"{name}.dora_scale": scale}  # fmt: skip
    layer = parse_lora(sd, "unet")["down_blocks_0_resnets_0_conv1"]
    assert isinstance(layer, DoRALayer)
    v = w + (up.flatten(1) @ down.flatten(1)).reshape(w.shape)
    norm = v.transpose(0, 1).flatten(1).norm(dim=1).reshape(1, 6, 1, 1)
    assert torch.allclose(layer.delta(w), scale * v / norm - w, atol=1e-5)


def test_bad_layers_are_refused_by_name() -> None:
    with pytest.raises(LoRAFormatError, match="only a DoRA magnitude"):
        parse_lora({"lora_unet_x.dora_scale": torch.ones(1, 4)}, "unet")
    with pytest.raises(LoRAFormatError, match="mixes"):
        parse_lora(
            {"lora_unet_x.diff": torch.ones(2, 2), "lora_unet_x.hada_w1_a": torch.ones(2, 1)},
            "unet",
        )
    lokr_on_final = {
        "lora_unet_final_layer_adaLN_modulation_1.lokr_w1": torch.ones(2, 2),
        "lora_unet_final_layer_adaLN_modulation_1.lokr_w2": torch.ones(2, 2),
    }
    with pytest.raises(FluxLoRAError, match="final modulation"):
        convert_flux_lora(lokr_on_final, INNER)


def make_tiny_lycoris(shapes: dict[str, tuple[int, ...]], kind: str, dest: Path) -> Path:
    """A kohya-named LoHa, LoKr or DoRA FLUX LoRA on the tiny model's fused and plain layers."""
    g = torch.Generator().manual_seed({"loha": 1, "lokr": 2, "dora": 3}[kind])

    def rnd(*shape: int, s: float = 0.2) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * s

    sd: dict[str, torch.Tensor] = {}
    for module in ("double_blocks.0.img_attn.qkv", "single_blocks.0.linear1",
                   "double_blocks.0.img_mlp.0"):  # fmt: skip
        out_f, in_f = shapes[f"{module}.weight"]
        k = _kohya(module)
        if kind == "loha":
            sd |= {f"{k}.hada_w1_a": rnd(out_f, 4), f"{k}.hada_w1_b": rnd(4, in_f),
                   f"{k}.hada_w2_a": rnd(out_f, 4), f"{k}.hada_w2_b": rnd(4, in_f)}  # fmt: skip
        elif kind == "lokr":
            sd |= {f"{k}.lokr_w1": rnd(4, 4, s=1.0), f"{k}.lokr_w2_a": rnd(out_f // 4, 2),
                   f"{k}.lokr_w2_b": rnd(2, in_f // 4)}  # fmt: skip
        else:
            sd |= {f"{k}.lora_down.weight": rnd(4, in_f), f"{k}.lora_up.weight": rnd(out_f, 4),
                   f"{k}.dora_scale": rnd(1, in_f, s=1.0).abs() + 0.5}  # fmt: skip
        sd[f"{k}.alpha"] = torch.tensor(4.0)
    save_file(sd, str(dest))
    return dest


@pytest.fixture(scope="module")
def lycoris(flux_models, flux, tmp_path_factory) -> dict[str, Any]:
    with flux_models.load(flux["dev"], "transformer") as model:
        shapes = {k: tuple(v.shape) for k, v in diffusers_to_bfl(model.state_dict()).items()}
    root = tmp_path_factory.mktemp("flux-lycoris")
    out = {}
    for kind in ("loha", "lokr", "dora"):
        path = make_tiny_lycoris(shapes, kind, root / f"{kind}.safetensors")
        out[kind] = identifier(register(flux_models, path, f"flux-{kind}"))
    return out


def _latents(runner: Any, flux: dict, model: Any, loras: list) -> torch.Tensor:
    g = standard_flux.txt2img(
        model, "a red cat", width=32, height=32, steps=2, seed=9, loras=loras, **parts(flux)
    )
    r = runner.run(g)
    return r.value(r.outputs["flux_denoise"].latents)


def test_each_kind_changes_the_output_and_weight_zero_does_not(flux_runner, flux, lycoris) -> None:
    plain = _latents(flux_runner, flux, flux["dev"], [])
    zero = _latents(flux_runner, flux, flux["dev"], [(lycoris["dora"], 0.0)])
    assert torch.equal(plain, zero)
    for kind, ident in lycoris.items():
        on = _latents(flux_runner, flux, flux["dev"], [(ident, 1.0)])
        assert (on - plain).abs().max() > 1e-3, kind
    assert torch.equal(_latents(flux_runner, flux, flux["dev"], []), plain)  # restored


def test_gguf_transformer_takes_each_kind_beside_its_quantized_weights(
    flux_models, flux_runner, flux, flux_paths, lycoris, tmp_path_factory
) -> None:
    """On a Q8_0 GGUF transformer the layers run as side deltas (DoRA's from the dequantized
    weight): each lands within the Q8 tolerance of the float model with the same LoRA."""
    pytest.importorskip("gguf")
    from invoke_nb.testing.tiny_flux import make_flux_gguf

    q8_path = make_flux_gguf(tmp_path_factory.mktemp("gguf") / "q8.gguf", flux_paths["dev_file"])
    q8 = identifier(register(flux_models, q8_path, "flux-dev-q8-lycoris"))
    plain = _latents(flux_runner, flux, q8, [])
    assert torch.equal(_latents(flux_runner, flux, q8, [(lycoris["dora"], 0.0)]), plain)
    for kind, ident in lycoris.items():
        ours = _latents(flux_runner, flux, q8, [(ident, 1.0)])
        ref = _latents(flux_runner, flux, flux["dev_file"], [(ident, 1.0)])
        err = ((ours - ref).norm() / ref.norm()).item()
        assert (ours - plain).abs().max() > 1e-3, kind
        assert err < 0.05, f"{kind}: {err}"  # Q8_TOLERANCE of test_flux_gguf.py
    with flux_models.load(q8, "transformer") as model:
        assert not model.transformer_blocks[0].attn.to_q.sidecars  # removed after the node


def test_peft_dora_equals_peft_itself() -> None:
    """A diffusers/PEFT DoRA file through our converter and patcher gives what PEFT's own
    DoRA layer computes (diffusers' ``load_lora_adapter``), weight 1."""
    pytest.importorskip("peft")
    import copy

    from diffusers import FluxTransformer2DModel

    torch.manual_seed(0)
    ours = FluxTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32,
        axes_dims_rope=(4, 6, 6),
    )  # fmt: skip
    ref = copy.deepcopy(ours)
    g = torch.Generator().manual_seed(1)
    sd = {}
    for name in ("transformer_blocks.0.attn.to_q", "single_transformer_blocks.0.proj_out"):
        w = ours.get_submodule(name).weight.detach()
        sd[f"transformer.{name}.lora_A.weight"] = torch.randn(2, w.shape[1], generator=g)
        sd[f"transformer.{name}.lora_B.weight"] = torch.randn(w.shape[0], 2, generator=g) * 0.3
        sd[f"transformer.{name}.lora_magnitude_vector"] = w.norm(dim=1) * 1.3
    ref.load_lora_adapter({k.removeprefix("transformer."): v for k, v in sd.items()},
                          adapter_name="dora", prefix=None)  # fmt: skip
    conv = convert_flux_lora(sd, 32)["transformer"]
    with torch.no_grad(), patched(ours, [(conv, 1.0)], "transformer"):
        for name in ("transformer_blocks.0.attn.to_q", "single_transformer_blocks.0.proj_out"):
            mod, peft_mod = ours.get_submodule(name), ref.get_submodule(name)
            assert peft_mod.use_dora["dora"]
            x = torch.randn(3, mod.in_features, generator=g)
            assert torch.allclose(mod(x), peft_mod(x), atol=1e-5), name
            assert (mod(x) - peft_mod.base_layer(x)).abs().max() > 1e-2
