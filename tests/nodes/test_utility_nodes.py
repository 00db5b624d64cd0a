"""Utility nodes with InvokeAI's ids: prompts, scheduler, boxes, latents, ideal size, LoRA lists."""

from __future__ import annotations

import pytest
import torch

import invoke_nb as inb
from invoke_nb.nodes.diffusion.fields import CLIPField, LoRAField, UNetField
from invoke_nb.nodes.types import ModelIdentifierField


def _noise_graph(g: inb.Graph, w: int = 64, h: int = 64) -> str:
    return g.add("noise", id="n", seed=3, width=w, height=h)


def test_dynamic_prompt_combinatorial_and_random() -> None:
    g = inb.Graph()
    g.add(
        "dynamic_prompt",
        id="c",
        prompt="a {red|blue} {car|boat}",
        max_prompts=3,
        combinatorial=True,
    )
    g.add("dynamic_prompt", id="r", prompt="a {red|blue} car", max_prompts=5)
    r = inb.run(g)
    assert r.outputs["c"].collection == ["a red car", "a red boat", "a blue car"]
    drawn = r.outputs["r"].collection
    assert len(drawn) == 5 and set(drawn) <= {"a red car", "a blue car"}


def test_scheduler_and_bounding_box() -> None:
    g = inb.Graph()
    g.add("scheduler", id="s", scheduler="dpmpp_2m_k")
    g.add("bounding_box", id="b", x_min=2, y_min=3, x_max=10, y_max=7)
    r = inb.run(g)
    assert r.outputs["s"].scheduler == "dpmpp_2m_k"
    assert r.outputs["b"].bounding_box.box() == (2, 3, 10, 7)
    g.set("b", x_max=1)
    with pytest.raises(Exception, match="reversed"):
        inb.run(g)


def test_latents_crop_and_resize_keep_values() -> None:
    g = inb.Graph()
    n = _noise_graph(g)
    g.add("latents", id="p")
    g.connect(n, "noise", "p", "latents")
    g.add("crop_latents", id="c", x=8, y=16, width=32, height=24)
    g.connect("p", "latents", "c", "latents")
    g.add("lresize", id="z", width=128, height=64, mode="nearest")
    g.connect(n, "noise", "z", "latents")
    g.add("collect", id="cc")
    g.connect("c", "latents", "cc", "item")
    g.add("latents_collection", id="col")
    g.connect("cc", "collection", "col", "collection")
    r = inb.run(g)
    noise = r.value(r.outputs[n].noise)
    assert (r.outputs["p"].width, r.outputs["p"].height) == (64, 64)
    crop = r.value(r.outputs["c"].latents)
    assert crop.shape == (1, 4, 3, 4)
    assert torch.equal(crop, noise[..., 2:5, 1:5])
    assert (r.outputs["c"].width, r.outputs["c"].height) == (32, 24)
    big = r.value(r.outputs["z"].latents)
    assert big.shape == (1, 4, 8, 16)
    assert torch.equal(big[..., :, ::2], noise)  # nearest doubling repeats each column
    assert r.outputs["col"].collection == [r.outputs["c"].latents]


@pytest.mark.parametrize(
    ("base", "w", "h", "want"),
    [
        ("sd-1", 1024, 576, (680, 384)),
        ("sdxl", 1024, 576, (1360, 768)),
        ("sd-1", 512, 768, (416, 624)),
    ],
)
def test_ideal_size(base: str, w: int, h: int, want: tuple[int, int]) -> None:
    ident = ModelIdentifierField(key="k", name="m", base=base, type="main")
    unet = UNetField(unet=ident.with_submodel("unet"), scheduler=ident.with_submodel("scheduler"))
    g = inb.Graph()
    g.add("ideal_size", id="i", width=w, height=h, unet=unet)
    out = inb.run(g).outputs["i"]
    assert (out.width, out.height) == want


def test_lora_collection_applies_each_lora_once() -> None:
    def ident(key: str, sub: str | None = None) -> ModelIdentifierField:
        return ModelIdentifierField(key=key, name=key, base="sd-1", type="lora", submodel_type=sub)

    unet = UNetField(unet=ident("m", "unet"), scheduler=ident("m", "scheduler"))
    clip = CLIPField(tokenizer=ident("m", "tokenizer"), text_encoder=ident("m", "text_encoder"))
    a, b = LoRAField(lora=ident("a"), weight=0.5), LoRAField(lora=ident("b"), weight=1.0)
    g = inb.Graph()
    g.add("lora_selector", id="sa", lora=ident("a"), weight=0.5)
    g.add("collect", id="col")
    g.connect("sa", "lora", "col", "item")
    g.add("lora_collection_loader", id="l")
    g.connect("col", "collection", "l", "loras")
    g.add("sdxl_lora_collection_loader", id="x", loras=[a, b, a])
    r = inb.run(g)
    assert r.outputs["sa"].lora == a
    out = r.outputs["l"]
    assert out.unet is None and out.clip is None  # nothing connected, nothing to patch
    from invoke_nb.nodes.utilities import _apply_loras

    patched = _apply_loras({"unet": unet, "clip": clip}, [a, b, a])
    assert [x.lora.key for x in patched["unet"].loras] == ["a", "b"]
    assert [x.lora.key for x in patched["clip"].loras] == ["a", "b"]
    assert unet.loras == []  # inputs are left as they were
    assert r.outputs["x"].clip2 is None


def test_model_identifier_passes_the_reference() -> None:
    ident = ModelIdentifierField(key="k1", name="any", base="sd-1", type="vae")
    g = inb.Graph()
    g.add("model_identifier", id="m", model=ident)
    assert inb.run(g).outputs["m"].model == ident


def test_dynamic_prompt_parse_errors() -> None:
    from invoke_nb.nodes.utilities import expand_prompts

    assert expand_prompts("a {red|blue", 3, combinatorial=True) == ["a {red|blue"]
    g = inb.Graph()
    g.add("dynamic_prompt", id="d", prompt="a {red|blue", combinatorial=True)
    with pytest.raises(Exception, match="cannot parse dynamic prompt"):
        inb.run(g)
