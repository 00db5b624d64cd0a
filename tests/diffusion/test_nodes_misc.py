"""Prompt syntax, clip skip, seamless, metadata, prompt files, latent ops, masks, VAE loader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import invoke_nb as inb
from invoke_nb.graph.standard import OUTPUT, txt2img
from invoke_nb.nodes.types import identifier

SMALL = dict(width=64, height=64, steps=2, seed=4)


def pixels(result, node_id: str) -> np.ndarray:
    return np.asarray(result.image(node_id).convert("RGB")).astype(np.int16)


def _encode(runner, sd1, prompt: str, skip: int = 0) -> torch.Tensor:
    g = inb.Graph()
    ml = g.add("main_model_loader", model=sd1)
    src = (ml, "clip")
    if skip:
        cs = g.add("clip_skip", skipped_layers=skip)
        g.connect(ml, "clip", cs, "clip")
        src = (cs, "clip")
    p = g.add("compel", prompt=prompt)
    g.connect(*src, p, "clip")
    r = runner.run(g)
    return r.value(r.outputs[p].conditioning.conditioning_name).embeds


def test_plain_prompt_encodes_as_diffusers(runner, sd1, tiny_sd1: Path) -> None:
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd1)
    ref, _ = pipe.encode_prompt("a cute tiger cub, photo", "cpu", 1, False)
    ours = _encode(runner, sd1, "a cute tiger cub, photo")
    assert ours.shape == ref.shape == (1, 77, 768)
    # same weights, same ops; a last-place rounding difference between CPUs is allowed
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_weighting_syntax_changes_the_embedding(runner, sd1) -> None:
    plain = _encode(runner, sd1, "a cat with a dog")
    up = _encode(runner, sd1, "a (cat)1.5 with a dog")
    plus = _encode(runner, sd1, "a cat++ with a dog")
    blend = _encode(runner, sd1, '("a cat", "a dog").blend(0.5, 0.5)')
    for other in (up, plus, blend):
        assert other.shape == plain.shape and not torch.allclose(other, plain)


def test_and_conjunction_concatenates(runner, sd1) -> None:
    both = _encode(runner, sd1, '("a cat", "a dog").and()')
    assert both.shape == (1, 154, 768)


def test_long_prompt_is_not_truncated(runner, sd1) -> None:
    long = " ".join(["a red cat"] * 40)  # ~120 tokens
    assert _encode(runner, sd1, long).shape[1] > 77


def test_clip_skip_changes_the_embedding(runner, sd1) -> None:
    assert not torch.allclose(_encode(runner, sd1, "a cat"), _encode(runner, sd1, "a cat", skip=1))
    with pytest.raises(inb.NodeError, match="clip skip"):
        _encode(runner, sd1, "a cat", skip=5)


def test_seamless_tiles_horizontally(runner, sd1) -> None:
    plain = pixels(runner.run(txt2img(sd1, "a cat", **SMALL)), OUTPUT)
    tiled = pixels(runner.run(txt2img(sd1, "a cat", seamless=("x",), **SMALL)), OUTPUT)
    assert np.abs(plain - tiled).max() > 5
    # wrapped columns: the seam between the last and first column is as smooth as the inside
    seam = np.abs(tiled[:, -1] - tiled[:, 0]).mean()
    inside = np.abs(np.diff(tiled, axis=1)).mean()
    assert seam < 2.5 * inside


def test_core_metadata_reaches_the_image(models, sd1) -> None:
    saved: list[dict] = []

    class Sink:
        def save(self, image, *, node_id, node_type, metadata, board_id, session_id, graph):
            saved.append({"node": node_id, "metadata": metadata, "size": image.size})
            return f"img-{len(saved)}"

        def get(self, name):
            return None

    runner = inb.Runner(services=inb.Services(models=models, image_sink=Sink()))
    runner.run(txt2img(sd1, "a cat", negative="ugly", scheduler="ddim", cfg_scale=6.0, **SMALL))
    meta = next(s["metadata"] for s in saved if s["node"] == OUTPUT)
    assert meta["positive_prompt"] == "a cat" and meta["negative_prompt"] == "ugly"
    assert (meta["seed"], meta["steps"], meta["scheduler"], meta["cfg_scale"]) == (
        4,
        2,
        "ddim",
        6.0,
    )
    assert meta["model"]["key"] == sd1.key and meta["generation_mode"] == "txt2img"
    json.dumps(meta)


def test_prompt_from_file(runner, tmp_path: Path) -> None:
    f = tmp_path / "prompts.txt"
    f.write_text("a cat\n a dog \na tree\na car\n", encoding="utf-8")
    g = inb.Graph()
    n = g.add(
        "prompt_from_file",
        file_path=str(f),
        pre_prompt="photo of ",
        post_prompt=", 4k",
        start_line=2,
        max_prompts=2,
    )
    assert runner.run(g).outputs[n].collection == ["photo of a dog, 4k", "photo of a tree, 4k"]
    g.set(n, max_prompts=0, start_line=1, pre_prompt=None, post_prompt=None)
    assert runner.run(g).outputs[n].collection == ["a cat", "a dog", "a tree", "a car"]
    g.set(n, file_path=str(tmp_path / "missing.txt"))
    with pytest.raises(inb.NodeError, match=r"missing\.txt"):
        runner.run(g)


def _latents_graph(runner, sd1, extra):
    g = inb.Graph()
    a = g.add("noise", seed=1, width=64, height=64)
    b = g.add("noise", seed=2, width=64, height=64)
    out = extra(g, a, b)
    r = runner.run(g)
    return (
        r,
        r.value(r.outputs[a].noise.latents_name),
        r.value(r.outputs[b].noise.latents_name),
        out,
    )


def test_lscale_and_lblend(runner, sd1) -> None:
    def build(g, a, b):
        s = g.add("lscale", scale_factor=2.0, mode="nearest")
        g.connect(a, "noise", s, "latents")
        bl = g.add("lblend", alpha=0.25)
        g.connect(a, "noise", bl, "latents_a")
        g.connect(b, "noise", bl, "latents_b")
        return s, bl

    r, na, nb, (s, bl) = _latents_graph(runner, sd1, build)
    scaled = r.value(r.outputs[s].latents.latents_name)
    assert scaled.shape == (1, 4, 16, 16) and (r.outputs[s].width, r.outputs[s].height) == (
        128,
        128,
    )
    assert torch.equal(scaled[..., ::2, ::2], na)
    blended = r.value(r.outputs[bl].latents.latents_name)
    assert torch.allclose(blended, 0.75 * na + 0.25 * nb, atol=1e-6)


def test_lblend_refuses_mismatched_shapes(runner) -> None:
    g = inb.Graph()
    a = g.add("noise", seed=1, width=64, height=64)
    b = g.add("noise", seed=2, width=64, height=128)
    bl = g.add("lblend")
    g.connect(a, "noise", bl, "latents_a")
    g.connect(b, "noise", bl, "latents_b")
    with pytest.raises(inb.NodeError, match="differ in shape"):
        runner.run(g)


def test_create_denoise_mask_and_gradient_mask(runner, sd1) -> None:
    mask = np.full((64, 64), 255, np.uint8)
    mask[:, :32] = 0
    photo = Image.fromarray(np.full((64, 64, 3), 120, np.uint8))
    g = inb.Graph()
    ml = g.add("main_model_loader", model=sd1)
    dm = g.add("create_denoise_mask", image=photo, mask=Image.fromarray(mask, "L"), fp32=True)
    g.connect(ml, "vae", dm, "vae")
    gm = g.add("create_gradient_mask", mask=Image.fromarray(mask, "L"), edge_radius=16)
    r = runner.run(g)
    out = r.outputs[dm].denoise_mask
    m = r.value(out.mask_name)
    assert m.shape == (1, 1, 64, 64) and m[..., :32].max() == 0 and m[..., 32:].min() == 1
    assert r.value(out.masked_latents_name).shape == (1, 4, 8, 8) and out.gradient is False
    gout = r.outputs[gm]
    gmask = r.value(gout.denoise_mask.mask_name)
    assert gout.denoise_mask.gradient is True and gmask.shape == (1, 1, 64, 64)
    area = np.asarray(r.value(gout.expanded_mask_area.image_name))
    # the changeable area grew past the mask edge into the kept half
    assert (area[:, :32] == 0).all() and (area[:, 32:40] == 0).any() and (area[:, -8:] == 255).all()


def test_vae_loader_swaps_the_decoder(runner, models, sd1, tiny_vae: Path) -> None:
    vae = (
        identifier(models.register(tiny_vae, name="tiny-vae"))
        if not models.store.list(name="tiny-vae")
        else identifier(models.store.list(name="tiny-vae")[0])
    )
    assert vae.type == "vae"
    own = pixels(runner.run(txt2img(sd1, "a cat", **SMALL)), OUTPUT)
    other = pixels(runner.run(txt2img(sd1, "a cat", vae=vae, **SMALL)), OUTPUT)
    assert np.abs(own - other).max() > 10


def test_sdxl_refiner_prompt(runner, sdxl) -> None:
    g = inb.Graph()
    ml = g.add("sdxl_model_loader", model=sdxl)
    p = g.add(
        "sdxl_refiner_compel_prompt",
        style="a cat",
        aesthetic_score=6.0,
        original_width=64,
        original_height=64,
    )
    g.connect(ml, "clip2", p, "clip2")
    r = runner.run(g)
    c = r.value(r.outputs[p].conditioning.conditioning_name)
    assert c.embeds.shape == (1, 77, 1280) and c.pooled_embeds.shape == (1, 1280)
    assert c.add_time_ids.tolist() == [[64.0, 64.0, 0.0, 0.0, 6.0]]


def test_denoise_refuses_unsupported_inputs_by_name(runner, sd1) -> None:
    g = txt2img(sd1, "a cat", **SMALL)
    g.set("denoise_latents", hidiffusion=True)
    with pytest.raises(inb.NodeError, match="hidiffusion"):
        runner.run(g)


@pytest.mark.parametrize(
    "prompt",
    [
        "a cute tiger cub, photograph",
        "award-winning photo of a cat. 4k",
        "",
        "x 1.5 y",
        "a cat++",
        "a (cat)1.2 dog-",
        'a "x"',
    ],
)
def test_plain_prompt_fast_path_matches_compel(prompt: str) -> None:
    from compel import Compel

    from invoke_nb.nodes.diffusion.sd.prompts import parse_prompt

    assert repr(parse_prompt(prompt)) == repr(Compel.parse_prompt_string(prompt))


@pytest.mark.parametrize(
    "penultimate,pooled,part", [(False, False, "text_encoder"), (True, True, "text_encoder_2")]
)
def test_direct_encoding_equals_compel(models, sd1, sdxl, penultimate, pooled, part) -> None:
    """The plain-prompt shortcut gives compel's tensors bit for bit."""
    from compel import Compel, ReturnedEmbeddingsType

    from invoke_nb.nodes.diffusion.sd.prompts import _encode_plain

    model = sd1 if part == "text_encoder" else sdxl
    tok_part = "tokenizer" if part == "text_encoder" else "tokenizer_2"
    with (
        models.load(model, part) as te,
        models.load(model, tok_part) as tok,
        torch.inference_mode(),
    ):
        kind = (
            ReturnedEmbeddingsType.PENULTIMATE_HIDDEN_STATES_NON_NORMALIZED
            if penultimate
            else ReturnedEmbeddingsType.LAST_HIDDEN_STATES_NORMALIZED
        )
        compel = Compel(
            tokenizer=tok,
            text_encoder=te,
            truncate_long_prompts=False,
            returned_embeddings_type=kind,
            requires_pooled=pooled,
        )
        prompt = "a cute tiger cub, award-winning photograph"
        ref, _ = compel.build_conditioning_tensor_for_conjunction(
            Compel.parse_prompt_string(prompt)
        )
        c, c_pooled = _encode_plain(tok, te, prompt, penultimate=penultimate, pooled=pooled)
        # compel's code path vs ours: equal up to last-place rounding on any CPU
        torch.testing.assert_close(c, ref, rtol=1e-5, atol=1e-5)
        if pooled:
            torch.testing.assert_close(
                c_pooled,
                compel.conditioning_provider.get_pooled_embeddings([prompt]),
                rtol=1e-5,
                atol=1e-5,
            )
        assert (
            _encode_plain(
                tok, te, " ".join(["a red cat"] * 40), penultimate=penultimate, pooled=pooled
            )
            is None
        )


def test_tiled_decode_matches_plain_decode_closely(runner, sd1) -> None:
    g = txt2img(sd1, "a cat", width=128, height=128, steps=2, seed=4)
    plain = pixels(runner.run(g), OUTPUT)
    g.set(OUTPUT, tiled=True, tile_size=64)
    r = runner.run(g)
    tiled = pixels(r, OUTPUT)
    assert tiled.shape == plain.shape == (128, 128, 3)
    # tiles normalise separately (random-weight VAE: visibly), so close but not equal
    assert 0 < np.abs(tiled - plain).mean() < 20
    assert OUTPUT in r.executed and "denoise_latents" in r.cached


def test_cfg_scale_per_step_list(runner, sd1) -> None:
    g = txt2img(sd1, "a cat", **SMALL)
    g.set("denoise_latents", cfg_scale=[7.5, 7.5])
    same = pixels(runner.run(g), OUTPUT)
    assert np.array_equal(same, pixels(runner.run(txt2img(sd1, "a cat", **SMALL)), OUTPUT))
    g.set("denoise_latents", cfg_scale=[7.5, 7.5, 7.5])
    with pytest.raises(inb.NodeError, match="one value per step"):
        runner.run(g)
