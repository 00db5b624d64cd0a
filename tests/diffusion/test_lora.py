"""LoRAs: weight 0 is a no-op, weight 1 changes the image, cached weights are restored exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import invoke_nb as inb
from invoke_nb.graph.standard import OUTPUT, txt2img
from invoke_nb.nodes.diffusion.lora import LoRAFormatError, patched

SMALL = dict(width=64, height=64, steps=3, seed=9)


def pixels(result, node_id: str) -> np.ndarray:
    return np.asarray(result.image(node_id).convert("RGB")).astype(np.int16)


def _ident(models, name):
    from invoke_nb.nodes.types import identifier

    return identifier(models.store.list(name=name)[0])


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("lora_name", ["tiny-lora", "tiny-lora-kohya"])
def test_lora_weight_zero_is_no_lora_and_weight_one_changes(runner, models, sd1, lora_name) -> None:
    lora = _ident(models, lora_name)
    plain = pixels(runner.run(txt2img(sd1, "a cat", **SMALL)), OUTPUT)
    zero = pixels(runner.run(txt2img(sd1, "a cat", loras=[(lora, 0.0)], **SMALL)), OUTPUT)
    one = pixels(runner.run(txt2img(sd1, "a cat", loras=[(lora, 1.0)], **SMALL)), OUTPUT)
    assert np.array_equal(plain, zero)
    assert np.abs(one - plain).max() > 10
    # and after all that, the cached models give the plain image again
    again = pixels(
        inb.Runner(services=inb.Services(models=models)).run(txt2img(sd1, "a cat", **SMALL)), OUTPUT
    )
    assert np.array_equal(plain, again)


def test_unloading_restores_weights_bit_exactly(models, sd1, tiny_lora_sd1) -> None:
    from safetensors.torch import load_file

    sd = load_file(str(tiny_lora_sd1))
    with models.load(sd1, "unet") as unet, models.load(sd1, "text_encoder") as te:
        before_unet, before_te = _snapshot(unet), _snapshot(te)
        with (
            torch.inference_mode(),
            patched(unet, [(sd, 0.8)], "unet"),
            patched(te, [(sd, 0.8)], "text_encoder"),
        ):
            changed = [
                k for k, v in unet.state_dict().items() if not torch.equal(v, before_unet[k])
            ]
            changed_te = [k for k, v in te.state_dict().items() if not torch.equal(v, before_te[k])]
            assert len(changed) == 24 and len(changed_te) == 8
        for k, v in unet.state_dict().items():
            assert torch.equal(v, before_unet[k]), k
        for k, v in te.state_dict().items():
            assert torch.equal(v, before_te[k]), k


def test_weights_restored_when_the_run_fails_midway(models, sd1, tiny_lora_sd1) -> None:
    from safetensors.torch import load_file

    sd = load_file(str(tiny_lora_sd1))
    with models.load(sd1, "unet") as unet:
        before = _snapshot(unet)
        with pytest.raises(RuntimeError, match="boom"), patched(unet, [(sd, 1.0)], "unet"):
            raise RuntimeError("boom")
        assert all(torch.equal(v, before[k]) for k, v in unet.state_dict().items())


def test_lora_for_missing_layers_is_refused_and_leaves_model_intact(models, sd1) -> None:
    bad = {
        "unet.no_such_block.to_q.lora_A.weight": torch.zeros(4, 32),
        "unet.no_such_block.to_q.lora_B.weight": torch.zeros(32, 4),
    }
    with models.load(sd1, "unet") as unet:
        before = _snapshot(unet)
        with (
            pytest.raises(LoRAFormatError, match="no_such_block"),
            patched(unet, [(bad, 1.0)], "unet"),
        ):
            pass
        assert all(torch.equal(v, before[k]) for k, v in unet.state_dict().items())


def test_applying_the_same_lora_twice_names_it(runner, models, sd1) -> None:
    lora = _ident(models, "tiny-lora")
    g = txt2img(sd1, "a cat", loras=[(lora, 0.5)], **SMALL)
    second = g.add("lora_loader", id="lora_again", lora=lora, weight=0.5)
    g.disconnect("lora_0", "unet", "denoise_latents", "unet")
    g.connect("lora_0", "unet", second, "unet")
    g.connect(second, "unet", "denoise_latents", "unet")
    with pytest.raises(inb.NodeError, match="already applied"):
        runner.run(g)


def test_sdxl_lora_changes_the_image(runner, models, sdxl) -> None:
    lora = _ident(models, "tiny-lora-sdxl")
    plain = pixels(runner.run(txt2img(sdxl, "a cat", **SMALL)), OUTPUT)
    zero = pixels(runner.run(txt2img(sdxl, "a cat", loras=[(lora, 0.0)], **SMALL)), OUTPUT)
    one = pixels(runner.run(txt2img(sdxl, "a cat", loras=[(lora, 1.0)], **SMALL)), OUTPUT)
    assert np.array_equal(plain, zero)
    assert np.abs(one - plain).max() > 10
