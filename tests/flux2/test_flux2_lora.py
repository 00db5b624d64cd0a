"""FLUX.2 Klein LoRAs: identified as base flux2 in diffusers, AI-Toolkit (BFL) and kohya names;
weight 0 is no LoRA; a LoRA gives diffusers' own ``load_lora_weights`` picture within 2/255."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from invoke_nb.graph.standard_flux2 import DENOISE, OUTPUT, txt2img
from invoke_nb.models.local import identifier
from invoke_nb.models.probe import probe

H = 32  # the tiny Klein's width; MLP hidden 64 (SwiGLU: linear_in gives 128)
LAYERS = {  # BFL module -> (out, in)
    "double_blocks.0.img_attn.qkv": (3 * H, H),
    "double_blocks.0.txt_attn.proj": (H, H),
    "double_blocks.0.img_mlp.0": (4 * H, H),
    "double_blocks.0.img_mlp.2": (H, 2 * H),
    "single_blocks.0.linear1": (7 * H, H),
    "single_blocks.0.linear2": (H, 3 * H),
}
DIFFUSERS = {
    "double_blocks.0.img_attn.qkv": ["transformer_blocks.0.attn.to_q",
                                     "transformer_blocks.0.attn.to_k",
                                     "transformer_blocks.0.attn.to_v"],
    "double_blocks.0.txt_attn.proj": ["transformer_blocks.0.attn.to_add_out"],
    "double_blocks.0.img_mlp.0": ["transformer_blocks.0.ff.linear_in"],
    "double_blocks.0.img_mlp.2": ["transformer_blocks.0.ff.linear_out"],
    "single_blocks.0.linear1": ["single_transformer_blocks.0.attn.to_qkv_mlp_proj"],
    "single_blocks.0.linear2": ["single_transformer_blocks.0.attn.to_out"],
}  # fmt: skip
RANK = 4


def _pairs(seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return {
        m: (torch.randn(RANK, i, generator=g) * 0.5, torch.randn(o, RANK, generator=g) * 0.5)
        for m, (o, i) in LAYERS.items()
    }


def make_klein_lora(dest: Path, layout: str, seed: int = 7) -> Path:
    """The same LoRA in one of the layouts: ``diffusers`` (Flux2Transformer2DModel names),
    ``bfl`` (AI-Toolkit ``diffusion_model.`` names) or ``kohya`` (``lora_unet_`` + alpha)."""
    sd: dict[str, torch.Tensor] = {}
    for module, (down, up) in _pairs(seed).items():
        if layout == "diffusers":
            names = DIFFUSERS[module]
            for name, piece in zip(names, up.chunk(len(names)), strict=True):
                sd[f"transformer.{name}.lora_A.weight"] = down.clone()
                sd[f"transformer.{name}.lora_B.weight"] = piece.contiguous()
        elif layout == "bfl":
            sd[f"diffusion_model.{module}.lora_A.weight"] = down
            sd[f"diffusion_model.{module}.lora_B.weight"] = up
        else:  # alpha 2 on rank 4: up scaled by 2 keeps the same LoRA
            name = "lora_unet_" + module.replace(".", "_")
            sd[f"{name}.lora_down.weight"] = down
            sd[f"{name}.lora_up.weight"] = up * 2
            sd[f"{name}.alpha"] = torch.tensor(RANK / 2)
    save_file(sd, str(dest))
    return dest


@pytest.fixture(scope="module")
def klein_loras(flux2_models, tmp_path_factory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("klein-loras")
    out = {}
    for layout in ("diffusers", "bfl", "kohya"):
        path = make_klein_lora(root / f"{layout}.safetensors", layout)
        found = probe(path)
        rec = flux2_models.register(path, name=f"klein-{layout}", base=found.base, type=found.type)
        out[layout] = (identifier(rec), path)
    return out


def test_klein_loras_are_identified_as_flux2(klein_loras) -> None:
    for _, path in klein_loras.values():
        found = probe(path)
        assert (found.type, found.base) == ("lora", "flux2"), path.name
    # a FLUX.1 LoRA stays FLUX.1: its feed-forward input is as wide as its output's input
    from invoke_nb.models.probe_flux2 import is_flux2_lora

    flux1 = {"lora_unet_double_blocks_0_img_mlp_0.lora_up.weight": (4 * H, RANK),
             "lora_unet_double_blocks_0_img_mlp_2.lora_down.weight": (RANK, 4 * H)}  # fmt: skip
    assert not is_flux2_lora(flux1)
    assert is_flux2_lora({"lora_unet_txt_in.lora_down.weight": (RANK, 7680)})


def _latents(runner, klein, loras, seeding="invokeai") -> torch.Tensor:
    g = txt2img(klein, "a red fox", width=64, height=64, steps=3, seed=3, loras=loras,
                seeding=seeding)  # fmt: skip
    r = runner.run(g)
    return r.value(r.outputs[DENOISE].latents)


def test_weight_zero_is_no_lora_and_the_transformer_is_restored(runner, klein, klein_loras) -> None:
    plain = _latents(runner, klein, [])
    assert torch.equal(_latents(runner, klein, [(klein_loras["bfl"][0], 0.0)]), plain)
    on = _latents(runner, klein, [(klein_loras["bfl"][0], 0.8)])
    assert (on - plain).abs().max() > 1e-2
    assert torch.equal(_latents(runner, klein, []), plain)


def test_layouts_patch_the_same_weights(flux2_models, klein, klein_loras) -> None:
    """Diffusers, BFL and kohya files of one LoRA merge to the same transformer weights."""
    from invoke_nb.nodes.diffusion.flux.lora_formats import convert_flux_lora
    from invoke_nb.nodes.diffusion.lora import patched

    merged = {}
    with flux2_models.load(klein, "transformer") as model:
        for layout, (_, path) in klein_loras.items():
            conv = convert_flux_lora(load_file(str(path)), H, only="transformer", family="flux2")
            with patched(model, [(conv["transformer"], 0.7)], "transformer"):
                merged[layout] = {k: v.clone() for k, v in model.state_dict().items()}
        base = {k: v.clone() for k, v in model.state_dict().items()}
    pairs = _pairs(7)
    down, up = pairs["double_blocks.0.img_attn.qkv"]
    for i, name in enumerate(DIFFUSERS["double_blocks.0.img_attn.qkv"]):
        want = base[f"{name}.weight"] + 0.7 * up[i * H : (i + 1) * H] @ down
        assert torch.allclose(merged["bfl"][f"{name}.weight"], want, atol=1e-5)
    for layout in ("diffusers", "kohya"):
        for k, v in merged["bfl"].items():
            assert torch.allclose(merged[layout][k], v, atol=1e-5), (layout, k)


def _pixels(image: Any) -> np.ndarray:
    return np.asarray(image.convert("RGB")).astype(np.int16)


@pytest.mark.parametrize("layout", ["diffusers", "bfl", "kohya"])
def test_a_lora_matches_diffusers_load_lora_weights(
    runner, klein, klein_pipe, klein_loras, layout
) -> None:
    pytest.importorskip("peft")
    ident, path = klein_loras[layout]
    g = txt2img(klein, "a red fox", width=64, height=64, steps=3, seed=3, seeding="diffusers",
                loras=[(ident, 0.8)])  # fmt: skip
    ours = _pixels(runner.run(g).image(OUTPUT))
    klein_pipe.load_lora_weights(load_file(str(path)), adapter_name="t")
    try:
        klein_pipe.set_adapters(["t"], adapter_weights=[0.8])
        ref = klein_pipe(
            prompt="a red fox",
            width=64,
            height=64,
            num_inference_steps=3,
            generator=torch.Generator("cpu").manual_seed(3),
        ).images[0]
    finally:
        klein_pipe.unload_lora_weights()
    plain = _pixels(
        runner.run(
            txt2img(klein, "a red fox", width=64, height=64, steps=3, seed=3, seeding="diffusers")
        ).image(OUTPUT)
    )
    diff = np.abs(ours - _pixels(ref))
    assert diff.max() <= 2, f"{layout}: max pixel difference {diff.max()}"
    assert np.abs(ours - plain).max() > 2  # the LoRA changed the picture


def test_bad_loras_name_the_problem(runner, klein, flux2_models, tmp_path) -> None:
    """A LoRA made for another width, or one with text-encoder layers, is refused by name."""
    from invoke_nb.graph.errors import NodeError

    wrong = {"diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight": torch.zeros(2, 48),
             "diffusion_model.double_blocks.0.img_attn.qkv.lora_B.weight": torch.zeros(144, 2)}  # fmt: skip
    te = {"lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": torch.zeros(2, 8),
          "lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_up.weight": torch.zeros(8, 2),
          "lora_unet_single_blocks_0_linear1.lora_down.weight": torch.zeros(2, H),
          "lora_unet_single_blocks_0_linear1.lora_up.weight": torch.zeros(7 * H, 2)}  # fmt: skip
    for name, sd, match in (("wrong-width", wrong, "does not fit"),
                            ("with-te", te, "text-encoder layers")):  # fmt: skip
        path = tmp_path / f"{name}.safetensors"
        save_file(sd, str(path))
        rec = flux2_models.register(path, name=name, base="flux2", type="lora")
        g = txt2img(klein, "a fox", width=64, height=64, steps=1, loras=[(identifier(rec), 1.0)])
        with pytest.raises(NodeError, match=match):
            runner.run(g)


def test_studio_installs_a_klein_lora_and_uses_it(tmp_path, tiny_flux2) -> None:
    from invoke_nb.studio import Studio

    s = Studio(tmp_path / "studio")
    try:
        s.models.install(str(tiny_flux2), name="klein", in_place=True)
        rec = s.models.install(str(make_klein_lora(tmp_path / "k.safetensors", "kohya")),
                               name="klein-lora")  # fmt: skip
        assert (rec.base, rec.type) == ("flux2", "lora")
        kw = {"model": "klein", "width": 64, "height": 64, "steps": 2, "cfg_scale": 1.0,
              "seed": 2, "progress": False}  # fmt: skip
        plain = s.txt2img("a red fox", **kw)
        img = s.txt2img("a red fox", loras=[("klein-lora", 0.8)], **kw)
        assert img.metadata["loras"][0]["weight"] == 0.8
        assert "flux2_klein_lora_collection_loader" in {n.type for n in img.graph.nodes.values()}
        diff = np.abs(np.asarray(img.pil).astype(int) - np.asarray(plain.pil).astype(int))
        assert diff.max() > 2
    finally:
        s.close()


def test_merged_weights_equal_invokeai_6_14_patch() -> None:
    """LoRA, LoKr (fused qkv too), LoHa and DoRA in BFL and kohya names, as InvokeAI 6.14.2
    patches a Klein transformer (fixture made by its own code: make_fixture.py)."""
    from safetensors import safe_open

    from invoke_nb.nodes.diffusion.flux.lora_formats import convert_flux_lora
    from invoke_nb.nodes.diffusion.lora import patched

    fixture = Path(__file__).parents[1] / "fixtures" / "invokeai" / "flux2-lora"
    w = load_file(str(fixture / "weights.safetensors"))
    with safe_open(str(fixture / "weights.safetensors"), "pt") as f:
        weight = float(f.metadata()["weight"])
    orig = {k.removeprefix("orig."): v for k, v in w.items() if k.startswith("orig.")}
    net = torch.nn.Module()
    for name, value in orig.items():
        parent = net
        *path, leaf = name.split(".")
        for p in path:
            if not hasattr(parent, p):
                parent.add_module(p, torch.nn.Module())
            parent = getattr(parent, p)
        lin = torch.nn.Linear(value.shape[1], value.shape[0], bias=False)
        lin.weight.data = value.clone()
        parent.add_module(leaf, lin)
    for file in ("bfl", "kohya"):
        sd = load_file(str(fixture / f"{file}.safetensors"))
        conv = convert_flux_lora(sd, 16, only="transformer", family="flux2")["transformer"]
        with torch.no_grad(), patched(net, [(conv, weight)], "transformer"):
            after = {n.removesuffix(".weight"): p.clone() for n, p in net.named_parameters()}
        changed = {k.removeprefix(f"{file}."): v for k, v in w.items() if k.startswith(f"{file}.")}
        assert len(changed) >= 5
        for module, value in after.items():
            want = changed.get(module, orig[module])
            err = (value - want).abs().max().item()
            assert err < 1e-5, f"{file} {module}: {err}"
