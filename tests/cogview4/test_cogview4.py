"""CogView4: identification, diffusers parity, InvokeAI's noise and schedule, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import invoke_nb as inb
from invoke_nb.graph.standard import img2img, txt2img
from invoke_nb.models.probe import probe
from invoke_nb.nodes.diffusion.cogview4.sampling import (
    clip_schedule,
    invokeai_schedule,
    make_noise,
)
from invoke_nb.testing.pixels import assert_float16_noise_close

SIZE = dict(width=64, height=64)


def pixels(result, node_id: str = "l2i") -> np.ndarray:
    return np.asarray(result.image(node_id).convert("RGB")).astype(np.int16)


def test_probe_names_the_cogview4_base(tiny_cogview4: Path) -> None:
    found = probe(tiny_cogview4)
    assert (found.type, found.base, found.format, found.variant) == (
        "main",
        "cogview4",
        "diffusers",
        None,
    )


def test_install_identifies_and_loads_parts(tmp_path: Path, tiny_cogview4: Path) -> None:
    studio = inb.Studio(root=tmp_path / "studio")
    try:
        rec = studio.models.install(str(tiny_cogview4), name="cv4")
        assert (rec.base, rec.type, rec.format) == ("cogview4", "main", "diffusers")
        from invoke_nb.models.loaders import load_submodel

        transformer = load_submodel(rec, "transformer")
        assert type(transformer).__name__ == "CogView4Transformer2DModel"
        assert type(load_submodel(rec, "text_encoder")).__name__ == "GlmModel"
    finally:
        studio.close()


def test_txt2img_matches_cogview4_pipeline(runner, cv4, tiny_cogview4: Path) -> None:
    from diffusers import CogView4Pipeline

    g = txt2img(
        cv4,
        "a cute tiger cub",
        negative="blurry",
        steps=4,
        cfg_scale=3.5,
        seed=42,
        seeding="diffusers",
        **SIZE,
    )
    ours = pixels(runner.run(g))
    pipe = CogView4Pipeline.from_pretrained(tiny_cogview4)
    pipe.set_progress_bar_config(disable=True)
    ref = pipe(
        "a cute tiger cub",
        negative_prompt="blurry",
        num_inference_steps=4,
        guidance_scale=3.5,
        generator=torch.Generator("cpu").manual_seed(42),
        **SIZE,
    ).images[0]
    ref = np.asarray(ref).astype(np.int16)
    assert ours.shape == ref.shape == (64, 64, 3)
    assert np.abs(ours - ref).max() <= 2
    assert ours.std() > 5


REFERENCE = json.loads(
    (
        Path(__file__).parents[1] / "fixtures" / "invokeai" / "cogview4_z_image_schedules.json"
    ).read_text()
)


def test_invokeai_noise_rule() -> None:
    """float16 draws on the CPU from manual_seed(seed) as InvokeAI 6.11.1's torch 2.7 makes
    them (its own _get_noise, recorded), then float32; diffusers' are float32 draws."""
    ours = make_noise(1234, 16, 64, 32, "invokeai")
    assert ours.dtype == torch.float32 and ours.shape == (1, 16, 8, 4)
    first8 = REFERENCE["cogview4_noise_seed1234_64x32_first8"]
    assert_float16_noise_close(ours.flatten()[:8], first8, exact_share=7 / 8)
    ref = torch.randn((1, 16, 8, 4), generator=torch.Generator("cpu").manual_seed(1234))
    assert torch.equal(make_noise(1234, 16, 64, 32, "diffusers"), ref)


@pytest.mark.parametrize("case", REFERENCE["cogview4"], ids=lambda c: f"{c['steps']}-{c['start']}")
def test_schedule_equals_invokeai(case: dict) -> None:
    ts, sigmas = invokeai_schedule(case["steps"], case["start"], case["end"], case["seq_len"])
    assert ts == pytest.approx(case["timesteps"], abs=1e-7)
    assert sigmas == pytest.approx(case["sigmas"], abs=1e-7)


def test_invokeai_schedule() -> None:
    """linspace(1, 0, steps + 1), cut at 1 - start exactly, shifted by mu(seq_len)."""
    ts, sigmas = invokeai_schedule(4, 0.0, 1.0, 256)
    assert ts == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0])
    mu = 1.0  # sqrt(256 / 256) * 0.75 + 0.25
    assert sigmas == pytest.approx([1.0] + [mu / (mu + 1 / t - 1) for t in ts[1:-1]] + [0.0])
    assert clip_schedule([1.0, 0.75, 0.5, 0.25, 0.0], 0.3, 0.8) == pytest.approx(
        [0.7, 0.5, 0.25, 0.2]
    )


def test_invokeai_seeding_starts_from_its_noise(runner, cv4) -> None:
    """denoising_end=0 runs no step: the output is InvokeAI's starting noise itself."""
    g = txt2img(cv4, "a cat", steps=4, seed=5, **SIZE)
    g.set("denoise_latents", denoising_end=0.0)
    r = runner.run(g)
    start = r.value(r.outputs["denoise_latents"].latents.latents_name)
    assert torch.equal(start, make_noise(5, 16, 64, 64, "invokeai"))
    full = pixels(runner.run(txt2img(cv4, "a cat", steps=4, seed=5, **SIZE)))
    other = pixels(runner.run(txt2img(cv4, "a cat", steps=4, seed=6, **SIZE)))
    assert np.abs(full - other).max() > 10


def test_img2img_strength_and_inpaint_mask(runner, cv4) -> None:
    src = Image.new("RGB", (64, 64), (200, 40, 40))
    keep = img2img(cv4, src, "a cat", strength=0.0, steps=4, seed=1)
    out = pixels(runner.run(keep))
    # strength 0 runs no step: the image comes back through the VAE only
    vae_only = pixels(runner.run(_round_trip(cv4, src)))
    assert np.abs(out - vae_only).max() <= 1
    changed = pixels(runner.run(img2img(cv4, src, "a cat", strength=0.8, steps=4, seed=1)))
    assert np.abs(changed - out).max() > 10

    g = img2img(cv4, src, "a cat", strength=1.0, steps=4, seed=1)
    mask = Image.new("L", (64, 64), 255)
    mask.paste(0, (32, 0, 64, 64))  # repaint the right half only (white = keep)
    g.add("create_denoise_mask", id="mask", mask=mask)
    g.connect("model_loader", "vae", "mask", "vae")
    g.connect("mask", "denoise_mask", "denoise_latents", "denoise_mask")
    r = runner.run(g)
    lat = r.value(r.outputs["denoise_latents"].latents.latents_name)
    init = r.value(r.outputs["i2l"].latents.latents_name)
    assert torch.allclose(lat[..., :4], init[..., :4], atol=1e-5)
    assert (lat[..., 4:] - init[..., 4:]).abs().max() > 0.1


def _round_trip(cv4, image):
    g = inb.Graph()
    g.add("cogview4_model_loader", id="m", model=cv4)
    g.add("cogview4_i2l", id="i2l", image=image)
    g.add("cogview4_l2i", id="l2i")
    g.connect("m", "vae", "i2l", "vae")
    g.connect("m", "vae", "l2i", "vae")
    g.connect("i2l", "latents", "l2i", "latents")
    return g


def test_bad_input_names_node_and_field(runner, cv4, cv4_models) -> None:
    from invoke_nb.models.local import identifier

    sd1 = identifier(cv4_models.store.list(name="tiny-sd1")[0])
    g = txt2img(cv4, "a cat", steps=2, **SIZE)
    g.set("model_loader", model=sd1)
    with pytest.raises(Exception, match=r"model_loader.*'model'.*sd-1.*cogview4"):
        runner.run(g)

    g = txt2img(cv4, "a cat", steps=2, **SIZE)
    g.set("denoise_latents", denoising_start=0.5)
    with pytest.raises(Exception, match=r"denoise_latents.*denoising_start.*latents"):
        runner.run(g)

    with pytest.raises(Exception, match=r"multiple of 32|multiple_of"):
        txt2img(cv4, "a cat", width=72, height=64)

    with pytest.raises(ValueError, match="loras"):
        txt2img(cv4, "a cat", loras=[(cv4, 1.0)])


def test_default_workflow_imports_and_runs(runner, cv4) -> None:
    """InvokeAI's "CogView4_TextToImage": every node and edge, run on the tiny model."""
    import json

    from invoke_nb.graph.workflow import read_workflow
    from shared_paths import INVOKEAI_WORKFLOWS

    path = INVOKEAI_WORKFLOWS / "CogView4_TextToImage.json"
    original = json.loads(path.read_text())
    wf = read_workflow(path)
    g = wf.graph
    assert len(g.nodes) == len(original["nodes"]) and len(g.edges) == len(original["edges"])
    by_type = {spec.type: nid for nid, spec in g.nodes.items()}
    g.set(by_type["cogview4_model_loader"], model=cv4)
    g.set(by_type["cogview4_denoise"], width=64, height=64, steps=2)
    r = runner.run(g)
    image = r.image(by_type["cogview4_l2i"])
    assert image.size == (64, 64)
    assert np.asarray(image).std() > 5


@pytest.mark.parametrize("family", ["cogview4", "z-image"])
def test_progress_every_step_with_a_16_channel_preview(cv4_models, cv4, family, tmp_path) -> None:
    from invoke_nb.models.local import identifier

    model = cv4
    if family == "z-image":
        from invoke_nb.testing.tiny_z_image import make_z_image

        rec = cv4_models.register(make_z_image(tmp_path / "zi"), name="zi-p", base="z-image")
        model = identifier(rec)
    events: list[dict] = []
    services = inb.Services(
        models=cv4_models, emit=lambda kind, p: events.append({"kind": kind, **p}), preview_every=1
    )
    inb.Runner(services=services).run(txt2img(model, "a cat", steps=3, cfg_scale=1.0, **SIZE))
    steps = [e for e in events if e["kind"] == "progress" and e.get("step")]
    steps = [e for e in steps if e.get("node_type", "").endswith("denoise")]
    assert [e["step"] for e in steps][:3] == [1, 2, 3]
    assert all(isinstance(e["image"], Image.Image) and e["image"].size == (8, 8) for e in steps)
    assert np.asarray(steps[-1]["image"]).std() > 0
