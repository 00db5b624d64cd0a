"""FLUX LoRAs: weight 0 is a no-op, PEFT and kohya files change the picture and are undone."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from flux_support import parts

from invoke_nb.graph import standard_flux
from invoke_nb.nodes.diffusion.flux.lora_formats import FluxLoRAError, convert_flux_lora
from invoke_nb.nodes.diffusion.lora import patched


def latents(runner: Any, flux: dict, loras: list) -> torch.Tensor:
    g = standard_flux.txt2img(
        flux["dev"], "a red cat", width=32, height=32, steps=2, seed=9, loras=loras, **parts(flux)
    )
    r = runner.run(g)
    return r.value(r.outputs["flux_denoise"].latents)


def test_weight_zero_equals_no_lora_and_loras_change_the_output(flux_runner, flux) -> None:
    plain = latents(flux_runner, flux, [])
    zero = latents(flux_runner, flux, [(flux["lora_peft"], 0.0)])
    assert torch.allclose(plain, zero, atol=1e-6)
    for name in ("lora_peft", "lora_kohya"):
        changed = latents(flux_runner, flux, [(flux[name], 1.0)])
        assert (changed - plain).abs().max() > 1e-3, name
    # patches are undone: the cached transformer gives the plain result again
    again = latents(flux_runner, flux, [(flux["lora_kohya"], 0.0)])
    assert torch.allclose(plain, again, atol=1e-6)


def test_kohya_fused_qkv_splits_like_the_weights(flux_models, flux, flux_paths) -> None:
    from safetensors.torch import load_file

    from invoke_nb.models.flux_keys import diffusers_to_bfl

    sd = load_file(str(flux_paths["lora_kohya"]))
    with flux_models.load(flux["dev"], "transformer") as model:
        before = diffusers_to_bfl({k: v.clone() for k, v in model.state_dict().items()})
        conv = convert_flux_lora(sd, inner_dim=64)["transformer"]
        with patched(model, [(conv, 1.0)], "transformer"):
            after = diffusers_to_bfl(model.state_dict())
        restored = diffusers_to_bfl(model.state_dict())
    for module in ("double_blocks.0.img_attn.qkv", "single_blocks.0.linear1"):
        name = "lora_unet_" + module.replace(".", "_")
        down, up = sd[f"{name}.lora_down.weight"], sd[f"{name}.lora_up.weight"]
        scale = float(sd[f"{name}.alpha"]) / down.shape[0]
        want = before[f"{module}.weight"] + scale * up @ down
        assert torch.allclose(after[f"{module}.weight"], want, atol=1e-5)
        assert torch.equal(restored[f"{module}.weight"], before[f"{module}.weight"])


def test_other_layouts_convert() -> None:
    down, up = torch.randn(2, 64), torch.randn(192, 2)
    xlabs = {
        "double_blocks.0.processor.qkv_lora1.down.weight": down,
        "double_blocks.0.processor.qkv_lora1.up.weight": up,
    }
    out = convert_flux_lora(xlabs, 64)["transformer"]
    assert torch.equal(out["transformer.transformer_blocks.0.attn.to_k.lora_B.weight"], up[64:128])
    toolkit = {
        "diffusion_model.single_blocks.0.linear2.lora_A.weight": torch.randn(2, 320),
        "diffusion_model.single_blocks.0.linear2.lora_B.weight": torch.randn(64, 2),
    }
    out = convert_flux_lora(toolkit, 64)["transformer"]
    assert "transformer.single_transformer_blocks.0.proj_out.lora_A.weight" in out
    onetrainer = {
        "lora_transformer_transformer_blocks_0_attn_to_q.lora_down.weight": torch.randn(2, 64),
        "lora_transformer_transformer_blocks_0_attn_to_q.lora_up.weight": torch.randn(64, 2),
        "lora_transformer_transformer_blocks_0_attn_to_q.alpha": torch.tensor(1.0),
    }
    out = convert_flux_lora(onetrainer, 64)["transformer"]
    b = out["transformer.transformer_blocks_0_attn_to_q.lora_B.weight"]
    assert torch.allclose(
        b, onetrainer["lora_transformer_transformer_blocks_0_attn_to_q.lora_up.weight"] / 2
    )
    with pytest.raises(FluxLoRAError, match="names no FLUX layer"):
        convert_flux_lora({"foo.lora_A.weight": down, "foo.lora_B.weight": up}, 64)


def test_single_lora_loader_and_denoise_meta(flux_runner, flux) -> None:
    """flux_lora_loader adds one LoRA to each bundle given; flux_denoise_meta reports it."""
    g = standard_flux.txt2img(flux["dev"], "a red cat", width=32, height=32, steps=2, seed=9,
                              **parts(flux))  # fmt: skip
    g.add("flux_lora_loader", id="lora", lora=flux["lora_peft"], weight=0.5)
    for field in ("transformer", "clip", "t5_encoder"):
        g.disconnect(
            *_edge_into(g, "flux_text_encoder" if field != "transformer" else "flux_denoise", field)
        )
        g.connect("flux_model_loader", field, "lora", field)
    g.connect("lora", "transformer", "flux_denoise", "transformer")
    g.connect("lora", "clip", "flux_text_encoder", "clip")
    g.connect("lora", "t5_encoder", "flux_text_encoder", "t5_encoder")
    r = flux_runner.run(g)
    out = r.outputs["lora"]
    assert [x.weight for x in out.transformer.loras] == [0.5]
    assert out.clip.loras[0].lora.name == "flux-lora_peft" and len(out.t5_encoder.loras) == 1
    with_lora = r.value(r.outputs["flux_denoise"].latents)
    assert (with_lora - latents(flux_runner, flux, [])).abs().max() > 1e-3

    meta = standard_flux.txt2img(flux["dev"], "a red cat", width=32, height=32, steps=2, seed=9,
                                 loras=[(flux["lora_peft"], 0.5)], **parts(flux))  # fmt: skip
    node = meta.node("flux_denoise")
    node.type = "flux_denoise_meta"  # same inputs plus metadata
    r = flux_runner.run(meta)
    md = r.outputs["flux_denoise"].metadata
    assert md["steps"] == 2 and md["seed"] == 9 and md["guidance"] == 4.0
    assert md["loras"][0]["weight"] == 0.5 and md["model"]["name"] == "flux-dev"
    assert torch.allclose(r.value(r.outputs["flux_denoise"].latents), with_lora, atol=1e-5)


def _edge_into(g: Any, node: str, field: str) -> tuple[str, str, str, str]:
    e = next(e for e in g.edges if e.destination.node_id == node and e.destination.field == field)
    return e.source.node_id, e.source.field, node, field


def test_kohya_t5_layers_and_final_modulation(tmp_path, flux_models, flux, flux_paths) -> None:
    """T5 (``lora_te2_``) layers reach the T5 encoder; the final modulation's LoRA rows are
    swapped like its weight (BFL's shift/scale order)."""
    from safetensors.torch import save_file

    from invoke_nb.models.flux_keys import diffusers_to_bfl
    from invoke_nb.testing.tiny_flux import HIDDEN

    gen = torch.Generator().manual_seed(0)
    mod = "lora_unet_final_layer_adaLN_modulation_1"
    t5 = "lora_te2_encoder_block_0_layer_0_SelfAttention_q"
    sd = {
        f"{mod}.lora_down.weight": torch.randn(2, HIDDEN, generator=gen),
        f"{mod}.lora_up.weight": torch.randn(2 * HIDDEN, 2, generator=gen),
        f"{t5}.lora_down.weight": torch.randn(2, 32, generator=gen),
        f"{t5}.lora_up.weight": torch.randn(32, 2, generator=gen),
    }
    conv = convert_flux_lora(sd, HIDDEN)
    with flux_models.load(flux["dev"], "transformer") as model:
        before = diffusers_to_bfl({k: v.clone() for k, v in model.state_dict().items()})
        with patched(model, [(conv["transformer"], 1.0)], "transformer"):
            after = diffusers_to_bfl(model.state_dict())
    key = "final_layer.adaLN_modulation.1.weight"
    want = before[key] + sd[f"{mod}.lora_up.weight"] @ sd[f"{mod}.lora_down.weight"]
    assert torch.allclose(after[key], want, atol=1e-5)
    # the T5 part changes the prompt's T5 embeddings through flux_text_encoder
    path = tmp_path / "t5-lora.safetensors"
    save_file(sd, str(path))
    from flux_support import register

    from invoke_nb.models.local import identifier

    lora = identifier(register(flux_models, path, "flux-t5-lora"))
    embeds = []
    for loras in ([], [(lora, 1.0)]):
        g = standard_flux.txt2img(flux["dev"], "a cat", width=32, height=32, steps=1,
                                  loras=loras, **parts(flux))  # fmt: skip
        r = flux_runner_for(flux_models).run(g)
        embeds.append(r.value(r.outputs["flux_text_encoder"].conditioning).t5_embeds)
    assert (embeds[0] - embeds[1]).abs().max() > 1e-3


def flux_runner_for(models: Any) -> Any:
    import invoke_nb as inb

    return inb.Runner(services=inb.Services(models=models))
