"""InvokeAI's FLUX noise and schedule, checked against InvokeAI 6.11.1's own code's output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from flux_support import parts

from invoke_nb.graph import standard_flux
from invoke_nb.nodes.diffusion.flux import sampling
from invoke_nb.testing.pixels import assert_float16_noise_close

REF = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "flux" / "invokeai-flux-noise.json").read_text()
)


@pytest.mark.parametrize(
    "case", REF["noise"], ids=lambda c: f"{c['seed']}-{c['width']}x{c['height']}"
)
def test_noise_equals_invokeai(case) -> None:
    got = sampling.get_noise(case["seed"], case["width"], case["height"])
    assert list(got.shape) == case["shape"]
    assert_float16_noise_close(got, case["values"])


@pytest.mark.parametrize("case", REF["schedules"], ids=lambda c: f"{c['steps']}-{c['seq_len']}")
def test_schedule_equals_invokeai(case) -> None:
    got = sampling.schedule(case["steps"], case["seq_len"], shift=case["shift"])
    assert got == pytest.approx(case["values"], abs=1e-6)


def test_denoise_node_starts_from_invokeais_noise(flux_runner, flux) -> None:
    """With denoising_end 0 the node takes no step: its output is the starting noise."""
    case = REF["noise"][0]
    g = standard_flux.txt2img(
        flux["dev"], "a cat", width=case["width"], height=case["height"], steps=2,
        seed=case["seed"], **parts(flux),
    )  # fmt: skip
    g.set("flux_denoise", denoising_end=0.0)
    r = flux_runner.run(g)
    got = r.value(r.outputs["flux_denoise"].latents)
    want = torch.tensor(case["values"]).reshape(case["shape"])
    assert torch.allclose(got, want, atol=1e-6, rtol=0)


def test_diffusers_seeding_draws_float32_noise() -> None:
    got = sampling.get_noise(5, 32, 32, "diffusers")
    want = torch.randn((1, 16, 4, 4), generator=torch.Generator().manual_seed(5))
    assert torch.equal(got, want)
    assert not torch.allclose(got, sampling.get_noise(5, 32, 32))


def test_img2img_schedules() -> None:
    full = sampling.schedule(4, 16, shift=False)  # 1, .75, .5, .25, 0
    assert sampling.clip_schedule(full, 0.3, 1.0) == pytest.approx([0.7, 0.5, 0.25, 0.0])
    assert sampling.diffusers_img2img_schedule(full, 0.6, 1.0) == pytest.approx(
        [0.75, 0.5, 0.25, 0.0]
    )
    assert sampling.step_cfg_scales(3.0, 4, 1, -2) == [1.0, 3.0, 3.0, 1.0]
    with pytest.raises(ValueError, match="cfg_scale_end_step"):
        sampling.step_cfg_scales(3.0, 4, 0, 7)


def test_whole_denoise_matches_invokeais_own_code(flux_runner, flux) -> None:
    """InvokeAI 6.11.1's HFEncoder + get_noise + get_schedule + its BFL ``Flux`` + ``denoise``
    on the same tiny dev weights (fixture made as tests/fixtures/flux/README.md says)."""
    ref = json.loads(
        (Path(__file__).parents[1] / "fixtures" / "flux" / "invokeai-flux-denoise.json").read_text()
    )

    def tensor(entry: dict) -> torch.Tensor:
        return torch.tensor(entry["values"]).reshape(entry["shape"])

    g = standard_flux.txt2img(
        flux["dev"], ref["prompt"], width=ref["width"], height=ref["height"], steps=ref["steps"],
        guidance=ref["guidance"], seed=ref["seed"], **parts(flux),
    )  # fmt: skip
    r = flux_runner.run(g)
    cond = r.value(r.outputs["flux_text_encoder"].conditioning)
    assert torch.allclose(cond.t5_embeds[:, :8], tensor(ref["t5_embeds_first8"]), atol=1e-4)
    assert torch.allclose(cond.clip_embeds, tensor(ref["clip_embeds"]), atol=1e-4)
    got = r.value(r.outputs["flux_denoise"].latents)
    want = tensor(ref["latents"])
    assert got.shape == want.shape
    assert (got - want).abs().max() < 1e-3
