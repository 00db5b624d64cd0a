"""Z-Image: identification, diffusers parity (txt2img, img2img), InvokeAI's schedule and
noise, LoRAs, the seed variance enhancer, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import invoke_nb as inb
from invoke_nb.graph.standard import img2img, txt2img
from invoke_nb.models.probe import probe
from invoke_nb.nodes.diffusion.z_image.denoise import invokeai_sigmas, make_noise
from invoke_nb.nodes.diffusion.z_image.text_encoder import vary_embeds

SIZE = dict(width=64, height=64)


def pixels(result, node_id: str = "l2i") -> np.ndarray:
    return np.asarray(result.image(node_id).convert("RGB")).astype(np.int16)


def _pipe(cls_name: str, folder: Path):
    import diffusers

    pipe = getattr(diffusers, cls_name).from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_probe_names_z_image_parts(tiny_z_image: Path, tiny_z_image_lora: Path, tmp_path) -> None:
    from invoke_nb.testing.tiny_z_image import make_z_image_transformer_file

    assert (probe(tiny_z_image).type, probe(tiny_z_image).base) == ("main", "z-image")
    assert probe(tiny_z_image).format == "diffusers"
    lora = probe(tiny_z_image_lora)
    assert (lora.type, lora.base, lora.format) == ("lora", "z-image", "lycoris")
    single = make_z_image_transformer_file(tmp_path / "zi.safetensors", tiny_z_image)
    found = probe(single)
    assert (found.type, found.base, found.format) == ("main", "z-image", "checkpoint")
    enc = probe(tiny_z_image / "text_encoder")
    assert (enc.type, enc.format) == ("qwen3_encoder", "qwen3_encoder")


def test_install_and_single_file_transformer(tmp_path: Path, tiny_z_image: Path) -> None:
    """A Studio installs the folder as z-image; a single-file transformer loads the same
    weights as the folder's."""
    from invoke_nb.models.loaders import load_submodel
    from invoke_nb.testing.tiny_z_image import make_z_image_transformer_file

    studio = inb.Studio(root=tmp_path / "studio")
    try:
        rec = studio.models.install(str(tiny_z_image), name="zi")
        assert (rec.base, rec.type, rec.format) == ("z-image", "main", "diffusers")
        single = make_z_image_transformer_file(tmp_path / "zi.safetensors", tiny_z_image)
        rec2 = studio.models.install(str(single), name="zi-file")
        assert (rec2.base, rec2.type, rec2.format) == ("z-image", "main", "checkpoint")
        a = load_submodel(rec, "transformer").state_dict()
        b = load_submodel(rec2, "transformer").state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        # Tongyi's original layout (fused qkv, x_embedder, ...) as single files ship it
        orig = make_z_image_transformer_file(
            tmp_path / "zo.safetensors", tiny_z_image, original=True
        )
        rec3 = studio.models.install(str(orig), name="zi-orig")
        assert (rec3.base, rec3.type, rec3.format) == ("z-image", "main", "checkpoint")
        c = load_submodel(rec3, "transformer").state_dict()
        assert a.keys() == c.keys() and all(torch.equal(a[k], c[k]) for k in a)
        with pytest.raises(Exception, match="only the transformer"):
            load_submodel(rec2, "vae")
    finally:
        studio.close()


@pytest.mark.parametrize("cfg", [1.0, 3.0])
def test_txt2img_matches_z_image_pipeline(runner, zi, tiny_z_image: Path, cfg: float) -> None:
    g = txt2img(
        zi,
        "a cute tiger cub",
        negative="blurry",
        steps=4,
        cfg_scale=cfg,
        seed=42,
        seeding="diffusers",
        **SIZE,
    )
    ours = pixels(runner.run(g))
    ref = _pipe("ZImagePipeline", tiny_z_image)(
        "a cute tiger cub",
        negative_prompt="blurry",
        num_inference_steps=4,
        guidance_scale=cfg - 1.0,  # diffusers' scale is ours minus one
        generator=torch.Generator("cpu").manual_seed(42),
        **SIZE,
    ).images[0]
    ref = np.asarray(ref).astype(np.int16)
    assert ours.shape == ref.shape == (64, 64, 3)
    assert np.abs(ours - ref).max() <= 2
    assert ours.std() > 5


def test_img2img_matches_z_image_img2img_pipeline(runner, zi, tiny_z_image: Path) -> None:
    """The tiny VAE's encoder is near-deterministic (std ~ 3e-7), so both sides encode the
    image alike; the noise is the generator's second draw, as in the pipeline."""
    src = Image.fromarray(
        (np.indices((64, 64)).sum(0) * 2 % 256).astype(np.uint8)[..., None].repeat(3, 2)
    )
    g = img2img(zi, src, "a cat", strength=0.5, steps=4, seed=3, seeding="diffusers", cfg_scale=1.0)
    r = runner.run(g)
    ours = pixels(r)
    ref = _pipe("ZImageImg2ImgPipeline", tiny_z_image)(
        "a cat",
        image=src,
        strength=0.5,
        num_inference_steps=4,
        guidance_scale=0.0,
        generator=torch.Generator("cpu").manual_seed(3),
        **SIZE,
    ).images[0]
    ref = np.asarray(ref).astype(np.int16)
    assert np.abs(ours - ref).max() <= 2


def test_invokeai_schedule_and_noise() -> None:
    """sigma = e^mu / (e^mu + 1/t - 1) on t = 1 - i/steps; mu linear in the patch count;
    noise a float32 CPU draw from manual_seed(seed)."""
    mu = np.exp(0.5)  # 256 patches
    expect = [1.0] + [mu / (mu + 1 / t - 1) for t in (0.75, 0.5, 0.25)] + [0.0]
    assert invokeai_sigmas(4, 256, 0.0, 1.0) == pytest.approx(expect)
    assert invokeai_sigmas(4, 256, 0.5, 1.0) == pytest.approx(expect[2:])
    ref = torch.randn((1, 16, 8, 8), generator=torch.Generator("cpu").manual_seed(9))
    assert torch.equal(make_noise(9, 64, 64), ref)


REFERENCE = json.loads(
    (
        Path(__file__).parents[1] / "fixtures" / "invokeai" / "cogview4_z_image_schedules.json"
    ).read_text()
)


@pytest.mark.parametrize("case", REFERENCE["z_image"], ids=lambda c: f"{c['steps']}-{c['seq_len']}")
def test_sigmas_and_noise_equal_invokeai(case: dict) -> None:
    """InvokeAI 6.11.1's own _calculate_shift/_get_sigmas and _get_noise, recorded."""
    assert invokeai_sigmas(case["steps"], case["seq_len"], 0.0, 1.0) == pytest.approx(
        case["sigmas"], abs=1e-12
    )
    noise = make_noise(1234, 64, 32).flatten()[:8].tolist()
    assert noise == REFERENCE["z_image_noise_seed1234_64x32_first8"]


def test_invokeai_seeding_starts_from_its_noise(runner, zi) -> None:
    g = txt2img(zi, "a cat", steps=4, seed=5, cfg_scale=1.0, **SIZE)
    g.set("denoise_latents", denoising_end=0.0)
    r = runner.run(g)
    start = r.value(r.outputs["denoise_latents"].latents.latents_name)
    assert torch.equal(start, make_noise(5, 64, 64))


@pytest.mark.parametrize("scheduler", ["heun", "lcm"])
def test_other_schedulers_run(runner, zi, scheduler: str) -> None:
    euler = pixels(runner.run(txt2img(zi, "a cat", steps=3, seed=1, cfg_scale=1.0, **SIZE)))
    other = txt2img(zi, "a cat", steps=3, seed=1, cfg_scale=1.0, scheduler=scheduler, **SIZE)
    out = pixels(runner.run(other))
    assert out.std() > 5 and np.abs(out - euler).max() > 0


def test_lora_weight_zero_is_no_lora_and_a_lora_changes_the_image(runner, zi, zi_lora) -> None:
    common = dict(steps=3, seed=2, cfg_scale=1.0, **SIZE)
    plain = pixels(runner.run(txt2img(zi, "a cat", **common)))
    zero = pixels(runner.run(txt2img(zi, "a cat", loras=[(zi_lora, 0.0)], **common)))
    full = pixels(runner.run(txt2img(zi, "a cat", loras=[(zi_lora, 1.0)], **common)))
    assert np.array_equal(plain, zero)
    assert np.abs(full - plain).max() > 10
    again = pixels(runner.run(txt2img(zi, "a cat", **common)))  # the model was restored
    assert np.array_equal(again, plain)


def test_seed_variance_enhancer_follows_invokeai(runner, zi) -> None:
    """The node adds InvokeAI's noise: std-scaled uniform noise on a seeded Bernoulli mask."""
    g = inb.Graph()
    g.add("z_image_model_loader", id="m", model=zi)
    g.add("z_image_text_encoder", id="enc", prompt="a cat")
    g.add("z_image_seed_variance_enhancer", id="var", seed=11, strength=0.5, randomize_percent=30)
    g.connect("m", "qwen3_encoder", "enc", "qwen3_encoder")
    g.connect("enc", "conditioning", "var", "conditioning")
    r = runner.run(g)
    base = r.value(r.outputs["enc"].conditioning.conditioning_name).prompt_embeds
    varied = r.value(r.outputs["var"].conditioning.conditioning_name).prompt_embeds
    gen = torch.Generator().manual_seed(11)
    noise = (torch.rand(base.shape, generator=gen) * 2 - 1) * 0.5 * base.std().item()
    gen.manual_seed(12)
    mask = torch.bernoulli(torch.full_like(base, 0.3), generator=gen).bool()
    assert torch.allclose(varied, base + noise * mask)
    changed = (varied != base).float().mean().item()
    assert 0.2 < changed < 0.4
    assert torch.equal(vary_embeds(base, 11, 0.5, 30), varied)


def test_bad_input_names_node_and_field(runner, zi, zi_lora) -> None:
    g = txt2img(zi, "a cat", steps=2, cfg_scale=1.0, **SIZE)
    g.set("model_loader", model=zi_lora)
    with pytest.raises(Exception, match=r"model_loader.*'model'.*type 'lora'.*'main'"):
        runner.run(g)
    g = txt2img(zi, "a cat", steps=2, cfg_scale=1.0, **SIZE)
    g.set("denoise_latents", denoising_start=0.5)
    with pytest.raises(Exception, match=r"denoise_latents.*denoising_start.*latents"):
        runner.run(g)
    g = txt2img(zi, "a cat", steps=2, cfg_scale=1.0, scheduler="heun", seeding="diffusers", **SIZE)
    with pytest.raises(Exception, match=r"denoise_latents.*scheduler.*euler"):
        runner.run(g)
    with pytest.raises(Exception, match=r"multiple of 16|multiple_of"):
        txt2img(zi, "a cat", width=72, height=64)


def _with_control(g: inb.Graph, control_id: Any, image: Image.Image, **kw: Any) -> inb.Graph:
    g.add("z_image_control", id="control", image=image, control_model=control_id, **kw)
    g.connect("control", "control", "denoise_latents", "control")
    return g


def test_control_matches_z_image_controlnet_pipeline(
    runner, zi_models, zi, tiny_z_image: Path, tiny_z_control: Path, tmp_path: Path
) -> None:
    from diffusers import ZImageControlNetModel, ZImageControlNetPipeline

    from invoke_nb.models.local import identifier
    from invoke_nb.testing.tiny_z_image import make_z_image_control

    rec = zi_models.register(
        tiny_z_control, name="tiny-z-control", base="z-image", type="controlnet"
    )
    edges = Image.fromarray(
        ((np.indices((64, 64)).sum(0) // 8) % 2 * 255).astype(np.uint8)
    ).convert("RGB")
    common = dict(steps=3, seed=4, cfg_scale=1.0, seeding="diffusers", **SIZE)
    plain = pixels(runner.run(txt2img(zi, "a cat", **common)))
    g = _with_control(
        txt2img(zi, "a cat", **common), identifier(rec), edges, control_context_scale=0.8
    )
    ours = pixels(runner.run(g))
    assert np.abs(ours - plain).max() > 10  # the control does something

    base = _pipe("ZImagePipeline", tiny_z_image)
    pipe = ZImageControlNetPipeline(
        **{
            k: getattr(base, k)
            for k in ("scheduler", "vae", "text_encoder", "tokenizer", "transformer")
        },
        controlnet=ZImageControlNetModel.from_pretrained(tiny_z_control),
    )
    pipe.set_progress_bar_config(disable=True)
    ref = pipe(
        "a cat",
        control_image=edges,
        controlnet_conditioning_scale=0.8,
        num_inference_steps=3,
        guidance_scale=0.0,
        generator=torch.Generator("cpu").manual_seed(4),
        **SIZE,
    ).images[0]
    assert np.abs(ours - np.asarray(ref).astype(np.int16)).max() <= 2

    # InvokeAI's control-model format (one file) loads to the same weights and image
    single = make_z_image_control(tmp_path / "control.safetensors", single_file=True)
    found = probe(single)
    assert (found.type, found.base, found.format) == ("controlnet", "z-image", "checkpoint")
    rec2 = zi_models.register(single, name="tiny-z-control-file", base="z-image", type="controlnet")
    g2 = _with_control(
        txt2img(zi, "a cat", **common), identifier(rec2), edges, control_context_scale=0.8
    )
    assert np.abs(pixels(runner.run(g2)) - ours).max() <= 1

    # outside begin/end the control is off
    g3 = _with_control(
        txt2img(zi, "a cat", **common), identifier(rec), edges, begin_step_percent=1.0
    )
    g3.set("denoise_latents", steps=3)
    late = pixels(runner.run(g3))  # only the step at 3/3 would apply: none runs there
    assert np.array_equal(late, plain)


def test_gguf_transformer_is_probed_loaded_and_close_to_the_float_one(
    runner, zi_models, zi, tiny_z_image: Path, tmp_path: Path
) -> None:
    """A Q8_0 GGUF of the tiny transformer (original key layout, fused qkv): identified as
    InvokeAI names it, loaded with its linear weights still quantized, and its image close
    to the float model's, with the Qwen3 encoder and VAE taken from the diffusers folder."""
    pytest.importorskip("gguf")
    from invoke_nb.models.local import identifier
    from invoke_nb.testing.tiny_z_image import make_z_image_gguf

    path = make_z_image_gguf(tmp_path / "zi-q8.gguf", tiny_z_image)
    found = probe(path)
    assert (found.type, found.base, found.format) == ("main", "z-image", "gguf_quantized")
    rec = zi_models.register(path, name="tiny-z-gguf", base="z-image", type="main")
    common = dict(steps=3, seed=2, cfg_scale=1.0, **SIZE)
    plain = runner.run(txt2img(zi, "a cat", **common))
    g = txt2img(identifier(rec), "a cat", **common)
    g.set("model_loader", qwen3_source_model=zi)
    quant = runner.run(g)
    with zi_models.load(identifier(rec, "transformer")) as t:
        kinds = {type(m).__name__ for m in t.modules()}
    assert "GGUFLinear" in kinds
    a = plain.value(plain.outputs["denoise_latents"].latents.latents_name)
    b = quant.value(quant.outputs["denoise_latents"].latents.latents_name)
    assert ((a - b).norm() / a.norm()).item() < 0.05
    assert not torch.equal(a, b)  # really the quantized weights
    lora = zi_models.store.list(name="tiny-z-lora")[0]
    g2 = txt2img(identifier(rec), "a cat", loras=[(identifier(lora), 1.0)], **common)
    g2.set("model_loader", qwen3_source_model=zi)
    with pytest.raises(Exception, match=r"denoise_latents.*transformer.*GGUF"):
        runner.run(g2)


def test_single_file_transformer_with_separate_encoder_and_vae(
    runner, zi_models, zi, tiny_z_image: Path, tmp_path: Path
) -> None:
    """InvokeAI's mix-and-match loader: a single-file transformer, a standalone Qwen3 encoder
    (tokenizer + text_encoder folders) and a FLUX-type VAE give the folder model's image."""
    import shutil

    from invoke_nb.models.local import identifier
    from invoke_nb.testing.tiny_z_image import make_z_image_transformer_file

    enc_dir = tmp_path / "qwen3"
    for part in ("text_encoder", "tokenizer"):
        shutil.copytree(tiny_z_image / part, enc_dir / part)
    vae_dir = shutil.copytree(tiny_z_image / "vae", tmp_path / "vae")
    single = make_z_image_transformer_file(tmp_path / "zo.safetensors", tiny_z_image, original=True)
    t = zi_models.register(single, name="zi-file", base="z-image", type="main")
    enc = zi_models.register(enc_dir, name="qwen3", base="any", type="qwen3_encoder")
    vae = zi_models.register(vae_dir, name="flux-vae", base="flux", type="vae")
    common = dict(steps=3, seed=2, cfg_scale=1.0, **SIZE)
    ref = pixels(runner.run(txt2img(zi, "a cat", **common)))
    g = txt2img(
        identifier(t), "a cat", qwen3_encoder=identifier(enc), vae=identifier(vae), **common
    )
    assert np.array_equal(pixels(runner.run(g)), ref)
    # without an encoder source the loader names what is missing
    g = txt2img(identifier(t), "a cat", vae=identifier(vae), **common)
    with pytest.raises(Exception, match=r"model_loader.*Qwen3 encoder.*qwen3_encoder_model"):
        runner.run(g)


def test_inpaint_mask_keeps_the_unmasked_latents(runner, zi) -> None:
    src = Image.new("RGB", (64, 64), (40, 120, 200))
    g = img2img(zi, src, "a cat", strength=1.0, steps=3, seed=1, cfg_scale=1.0)
    mask = Image.new("L", (64, 64), 255)
    mask.paste(0, (32, 0, 64, 64))  # repaint the right half (white = keep)
    g.add("create_denoise_mask", id="mask", mask=mask)
    g.connect("model_loader", "vae", "mask", "vae")
    g.connect("mask", "denoise_mask", "denoise_latents", "denoise_mask")
    r = runner.run(g)
    lat = r.value(r.outputs["denoise_latents"].latents.latents_name)
    init = r.value(r.outputs["i2l"].latents.latents_name)
    assert torch.allclose(lat[..., :4], init[..., :4], atol=1e-5)
    assert (lat[..., 4:] - init[..., 4:]).abs().max() > 0.1
