"""Redux and Kontext together with regional (masked) FLUX prompts.

Redux image prompts join the regional conditioning as prompts of their own (InvokeAI's
rule, checked against a fixture its own code made); Kontext reference tokens are seen by
every region. A region covering the whole image must give the unmasked result."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from invoke_nb.graph import standard_flux

FIXTURE = Path(__file__).parents[1] / "fixtures" / "flux" / "invokeai-flux-regional-redux.json"


def _image() -> Image.Image:
    y, x = np.mgrid[0:40, 0:40]
    return Image.fromarray(np.stack([x * 6, y * 6, (x + y) * 3], -1).astype(np.uint8))


def _reference() -> Image.Image:
    y, x = np.mgrid[0:48, 0:64]
    rgb = np.stack([x * 3, y * 5, ((x // 16 + y // 16) % 2) * 200 + 20], axis=-1)
    return Image.fromarray(rgb.astype(np.uint8))


def _mask(kind: str) -> Image.Image:
    """Black = inside the region: the whole image or its left half."""
    m = Image.new("L", (64, 64), 0 if kind == "full" else 255)
    if kind == "left":
        m.paste(0, (0, 0, 32, 64))
    return m


def _base(extras):  # type: ignore[no-untyped-def]
    return standard_flux.txt2img(
        extras["dev"], "a cat", width=64, height=64, steps=2, guidance=3.5, seed=5,
        t5_encoder=extras["t5"], clip_embed=extras["clip"], vae=extras["vae"],
    )  # fmt: skip


def _mask_prompt(g, kind: str | None) -> None:  # type: ignore[no-untyped-def]
    if kind is not None:
        g.add("image_mask_to_tensor", id="prompt_mask", image=_mask(kind))
        g.connect("prompt_mask", "mask", "flux_text_encoder", "mask")


def _redux_graph(extras, prompt_mask: str | None, redux_mask: str | None):  # type: ignore[no-untyped-def]
    g = _base(extras)
    _mask_prompt(g, prompt_mask)
    g.add("flux_redux", id="redux", image=_image(), redux_model=extras["redux"])
    if redux_mask is not None:
        g.add("image_mask_to_tensor", id="redux_mask", image=_mask(redux_mask))
        g.connect("redux_mask", "mask", "redux", "mask")
    g.connect("redux", "redux_cond", "flux_denoise", "redux_conditioning")
    return g


def _kontext_graph(extras, prompt_mask: str | None):  # type: ignore[no-untyped-def]
    g = _base(extras)
    _mask_prompt(g, prompt_mask)
    g.add("flux_kontext", id="kontext", image=_reference())
    g.connect("kontext", "kontext_cond", "flux_denoise", "kontext_conditioning")
    return g


def _latents(runner, g) -> torch.Tensor:  # type: ignore[no-untyped-def]
    r = runner.run(g)
    return r.value(r.outputs["flux_denoise"].latents)


def test_combine_matches_invokeais_regional_redux_conditioning() -> None:
    """Two text prompts (global, left-masked) and two Redux prompts (top-masked, global):
    the joined T5 sequence, the CLIP vector and the attention mask InvokeAI 6.11.1 builds."""
    from invoke_nb.nodes.diffusion.flux.fields import FluxConditioning
    from invoke_nb.nodes.diffusion.flux.regional import combine, region_mask

    ref = json.loads(FIXTURE.read_text())
    h, w = ref["packed_hw"]

    def seq(n: int, offset: float) -> torch.Tensor:
        return (torch.arange(n * 6, dtype=torch.float32).reshape(1, n, 6) + offset) / 10

    left, top = torch.zeros(8, 8), torch.zeros(8, 8)
    left[:, :4] = 1
    top[:2, :] = 1
    texts = [
        (FluxConditioning(t5_embeds=seq(3, 0), clip_embeds=torch.full((1, 5), 1.0)), None),
        (
            FluxConditioning(t5_embeds=seq(2, 100), clip_embeds=torch.full((1, 5), 2.0)),
            region_mask(left, h, w),
        ),
    ]
    redux = [(seq(4, 200), region_mask(top, h, w)), (seq(2, 300), None)]
    got = combine(texts, h * w, redux)
    want_t5 = torch.tensor(ref["t5_embeds"]["values"]).reshape(ref["t5_embeds"]["shape"])
    torch.testing.assert_close(got.t5_embeds, want_t5)
    assert got.clip_embeds.flatten().tolist() == ref["clip_embeds"]
    assert got.attn_mask is not None
    assert got.attn_mask.int().tolist() == ref["attn_mask"]


def test_redux_with_whole_image_regions_stays_near_the_unmasked_run(extras_runner, extras) -> None:
    """Text and Redux prompts each masked to the whole image: every image token sees both,
    only the two prompts no longer see each other's tokens (InvokeAI's rule), so the result
    stays near the unmasked run: measured 0.036 against a Redux effect of 0.144."""
    plain = _latents(extras_runner, _redux_graph(extras, None, None))
    full = _latents(extras_runner, _redux_graph(extras, "full", "full"))
    effect = (plain - _latents(extras_runner, _base(extras))).abs().max()
    assert effect > 1e-2  # Redux acted
    assert 1e-5 < (full - plain).abs().max() < 0.5 * effect


def test_redux_in_a_region_beside_a_global_prompt(extras_runner, extras) -> None:
    """A Redux prompt masked to the left half (the text prompt global): it runs, and its
    effect differs from the same Redux prompt given globally and from no Redux."""
    masked = _latents(extras_runner, _redux_graph(extras, None, "left"))
    assert torch.isfinite(masked).all()
    everywhere = _latents(extras_runner, _redux_graph(extras, None, None))
    without = _latents(extras_runner, _base(extras))
    assert (masked - everywhere).abs().max() > 1e-3
    assert (masked - without).abs().max() > 1e-3


def test_kontext_with_a_whole_image_region_equals_the_unmasked_run(extras_runner, extras) -> None:
    plain = _latents(extras_runner, _kontext_graph(extras, None))
    full = _latents(extras_runner, _kontext_graph(extras, "full"))
    assert (full - plain).abs().max() < 1e-4
    half = _latents(extras_runner, _kontext_graph(extras, "left"))
    assert torch.isfinite(half).all() and (half - plain).abs().max() > 1e-3
    assert (plain - _latents(extras_runner, _base(extras))).abs().max() > 1e-3  # Kontext acted


def test_regional_redux_denoise_matches_invokeais_own_code(extras_runner, extras) -> None:
    """A global prompt, a left-half prompt and a top-half Redux prompt: the latents InvokeAI
    6.11.1's own FLUX code makes from the same tiny weights, noise, Redux tokens and masks
    (fixture made as tests/fixtures/flux/README.md says)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "regional_redux_graph", FIXTURE.with_name("regional_redux_graph.py")
    )
    assert spec is not None and spec.loader is not None
    graph = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(graph)
    ref = json.loads(FIXTURE.with_name("invokeai-flux-regional-redux-denoise.json").read_text())
    want = torch.tensor(ref["latents"]["values"]).reshape(ref["latents"]["shape"])
    got = _latents(extras_runner, graph.build(extras))
    assert got.shape == want.shape
    assert (got - want).abs().max() < 1e-3
