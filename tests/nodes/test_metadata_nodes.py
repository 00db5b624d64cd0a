"""Metadata nodes: build metadata, and recall the values of a PNG made by InvokeAI 6.14.2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

import invoke_nb as inb
from invoke_nb.nodes.diffusion.fields import LoRAField, VAEField
from invoke_nb.nodes.types import ModelIdentifierField

PNG = Path(__file__).parents[1] / "fixtures" / "invokeai" / "invokeai-dpmpp_sde_k-seed42.png"
DEFAULT_MODEL = ModelIdentifierField(key="dflt", name="fallback", base="sd-1", type="main")


def _recall_graph() -> inb.Graph:
    """InvokeAI's PNG -> metadata_from_image -> one reader per value a txt2img needs."""
    g = inb.Graph()
    g.add("metadata_from_image", id="md", image=Image.open(PNG))
    readers = {
        "pos": ("metadata_to_string", {"label": "positive_prompt", "default_value": "?"}),
        "neg": ("metadata_to_string", {"label": "negative_prompt", "default_value": "?"}),
        "seed": ("metadata_to_integer", {"label": "seed", "default_value": -1}),
        "steps": ("metadata_to_integer", {"label": "steps", "default_value": -1}),
        "w": ("metadata_to_integer", {"label": "width", "default_value": -1}),
        "cfg": ("metadata_to_float", {"label": "cfg_scale", "default_value": -1.0}),
        "sched": ("metadata_to_scheduler", {}),
        "model": ("metadata_to_model", {"default_value": DEFAULT_MODEL}),
        "custom": (
            "metadata_to_string",
            {"custom_label": "rand_device", "default_value": "?"},
        ),
        "absent": ("metadata_to_bool", {"label": "seamless_x", "default_value": True}),
        "ints": (
            "metadata_to_integer_collection",
            {"label": "seed", "default_value": [0]},
        ),
        "loras": ("metadata_to_lora_collection", {}),
    }
    for nid, (type_id, values) in readers.items():
        g.add(type_id, id=nid, **values)
        g.connect("md", "metadata", nid, "metadata")
    return g


def test_metadata_readers_recall_an_invokeai_png() -> None:
    r = inb.run(_recall_graph())
    o = r.outputs
    assert o["pos"].value == "a photo of a cute cat"
    assert o["neg"].value == ""
    assert (o["seed"].value, o["steps"].value, o["w"].value) == (42, 10, 64)
    assert o["cfg"].value == pytest.approx(7.5)
    assert o["sched"].scheduler == "dpmpp_sde_k"
    model = o["model"].model
    with Image.open(PNG) as png:  # the hash InvokeAI wrote, read without our readers
        written = json.loads(png.text["invokeai_metadata"])["model"]["hash"]
    assert written.startswith("blake3:")
    assert (model.name, model.base, model.hash) == ("tiny-sd1", "sd-1", written)
    assert o["model"].name == "sd-1: tiny-sd1"
    assert o["model"].unet.unet.submodel_type == "unet"
    assert o["model"].clip.text_encoder.submodel_type == "text_encoder"
    assert o["model"].vae.vae.submodel_type == "vae"
    assert o["custom"].value == "cpu"
    assert o["absent"].value is True  # not in this PNG: the default
    assert o["ints"].collection == [42]
    assert o["loras"].lora == []
    assert r.outputs["md"].metadata["app_version"] == "6.14.2"


def test_metadata_field_extractor_and_errors() -> None:
    g = inb.Graph()
    g.add("metadata_field_extractor", id="x", image=Image.open(PNG), key="model")
    g.add("metadata_field_extractor", id="y", image=Image.open(PNG), key="seed")
    out = inb.run(g).outputs
    assert '"name": "tiny-sd1"' in out["x"].value
    assert out["y"].value == "42"
    g2 = inb.Graph()
    g2.add("metadata_field_extractor", id="z", image=Image.new("RGB", (4, 4)), key="seed")
    with pytest.raises(Exception, match="has no metadata"):
        inb.run(g2)
    g3 = inb.Graph()
    g3.add("metadata_from_image", id="md", image=Image.open(PNG))
    g3.add("metadata_to_string", id="s", default_value="")  # custom label without a name
    g3.connect("md", "metadata", "s", "metadata")
    with pytest.raises(Exception, match="custom_label must be set"):
        inb.run(g3)


def test_building_and_merging_metadata() -> None:
    g = inb.Graph()
    g.add("metadata_item", id="a", label="seed", value=7)
    g.add("metadata_item", id="b", label="positive_prompt", value="a fox")
    g.add("collect", id="c")
    g.connect("a", "item", "c", "item")
    g.connect("b", "item", "c", "item")
    g.add("metadata", id="m")
    g.connect("c", "collection", "m", "items")
    g.add("metadata_item_linked", id="l", label="steps", value=30)
    g.connect("m", "metadata", "l", "metadata")
    g.add("metadata_item", id="d", label="seed", value=8)
    g.add("metadata", id="m2")
    g.connect("d", "item", "m2", "items")
    g.add("collect", id="c2")
    g.connect("l", "metadata", "c2", "item")
    g.connect("m2", "metadata", "c2", "item")
    g.add("merge_metadata", id="mm")
    g.connect("c2", "collection", "mm", "collection")
    out = inb.run(g).outputs
    assert {k: out["l"].metadata[k] for k in ("seed", "positive_prompt", "steps")} == {
        "seed": 7,
        "positive_prompt": "a fox",
        "steps": 30,
    }
    assert out["mm"].metadata["seed"] == 8  # the later dict wins
    assert out["mm"].metadata["steps"] == 30


def test_lora_and_vae_readers() -> None:
    def ident(key: str, type_: str = "lora", sub: str | None = None) -> ModelIdentifierField:
        return ModelIdentifierField(key=key, name=key, base="sd-1", type=type_, submodel_type=sub)

    md = {
        "loras": [
            {"model": ident("l1").model_dump(), "weight": 0.4},
            {"model": ident("l2").model_dump(), "weight": 1.0},
        ],
        "vae": ident("v", "vae").model_dump(),
    }
    given = LoRAField(lora=ident("l1"), weight=0.9)
    g = inb.Graph()
    g.add("metadata_item", id="i1", label="loras", value=md["loras"])
    g.add("metadata_item", id="i2", label="vae", value=md["vae"])
    g.add("collect", id="c")
    g.connect("i1", "item", "c", "item")
    g.connect("i2", "item", "c", "item")
    g.add("metadata", id="m")
    g.connect("c", "collection", "m", "items")
    g.add("metadata_to_lora_collection", id="lc", loras=[given])
    g.add("metadata_to_vae", id="v", default_value=VAEField(vae=ident("dflt", "vae")))
    for nid in ("lc", "v"):
        g.connect("m", "metadata", nid, "metadata")
    out = inb.run(g).outputs
    assert [(x.lora.key, x.weight) for x in out["lc"].lora] == [("l1", 0.9), ("l2", 1.0)]
    assert out["v"].vae.vae.key == "v"

    # the model of the metadata feeds the LoRA reader, as in InvokeAI's recall workflows
    g.add("metadata_to_model", id="mod", default_value=ident("base", "main"))
    g.add("metadata_to_loras", id="ml")
    g.add("metadata_to_sdlx_loras", id="mx")
    for nid in ("mod", "ml", "mx"):
        g.connect("m", "metadata", nid, "metadata")
    g.connect("mod", "unet", "ml", "unet")
    g.connect("mod", "clip", "ml", "clip")
    g.connect("mod", "unet", "mx", "unet")
    out = inb.run(g).outputs
    assert out["mod"].model.key == "base"  # no model in this metadata: the default
    assert [(x.lora.key, x.weight) for x in out["ml"].unet.loras] == [("l1", 0.4), ("l2", 1.0)]
    assert [x.lora.key for x in out["ml"].clip.loras] == ["l1", "l2"]
    assert out["mod"].unet.loras == []  # the reader's input is left as it was
    assert out["mx"].clip is None and len(out["mx"].unet.loras) == 2
