"""Recall of InvokeAI's real session graphs and of 2.x/3.x metadata."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from invokeai_root import REFERENCE_PNGS
from PIL import Image, PngImagePlugin

from invoke_nb.interchange.recall import RecallError, RecallWarning, normalize_graph


def _graph(png: Path = REFERENCE_PNGS[0]) -> dict:
    with Image.open(png) as im:
        return json.loads(im.text["invokeai_graph"])


def _png(tmp_path: Path, **chunks: str) -> Path:
    info = PngImagePlugin.PngInfo()
    for k, v in chunks.items():
        info.add_text(k.replace("_", "-") if k == "sd_metadata" else k, v)
    p = tmp_path / "old.png"
    Image.new("RGB", (64, 64), (1, 2, 3)).save(p, pnginfo=info)
    return p


@pytest.fixture
def model(studio, reference_model: Path):
    return studio.models.install(reference_model, name="tiny", in_place=True)


def test_invokeai_graph_is_reduced_to_our_fields() -> None:
    raw = _graph()
    assert raw["nodes"]["denoise_latents"]["noise"] is None  # InvokeAI's shape: fed by an edge
    assert raw["nodes"]["pos_cond"]["prompt"] == ""  # a stale literal under an edge
    out = normalize_graph(raw)["nodes"]
    assert "noise" not in out["denoise_latents"]
    assert "prompt" not in out["pos_cond"]
    assert out["denoise_latents"]["steps"] == 10
    assert out["denoise_latents"]["hidiffusion"] is False  # a field we have, kept


def test_invokeai_graph_does_not_build_without_normalizing() -> None:
    import invoke_nb as inb

    with pytest.raises(inb.GraphError):
        inb.Graph.from_dict(_graph())
    g = inb.Graph.from_dict(normalize_graph(_graph()))
    g.validate()
    assert len(g.nodes) == 10


def test_unknown_node_types_are_all_named() -> None:
    raw = _graph()
    raw["nodes"]["f"] = {"id": "f", "type": "another_custom_node"}
    raw["nodes"]["g"] = {"id": "g", "type": "some_custom_node"}
    with pytest.raises(RecallError, match=r"x\.png.*another_custom_node, some_custom_node"):
        normalize_graph(raw, "x.png")


def test_unknown_field_with_a_value_warns() -> None:
    raw = copy.deepcopy(_graph())
    raw["nodes"]["l2i"]["sharpen"] = 0.5
    raw["nodes"]["core_metadata"]["new_field"] = "x"  # metadata nodes: dropped quietly
    with pytest.warns(RecallWarning, match=r"ignored: l2i\.sharpen=0\.5$"):
        out = normalize_graph(raw)
    assert "sharpen" not in out["nodes"]["l2i"]


def test_invokeai2_sd_metadata(studio, model, tmp_path: Path) -> None:
    legacy = {
        "model_weights": "tiny",
        "image": {
            "prompt": [{"prompt": "a cute cat [blurry]", "weight": 1.0}],
            "seed": 7,
            "width": 64,
            "height": 64,
            "steps": 3,
            "cfg_scale": 6.0,
            "sampler": "k_euler_a",
        },
    }
    png = _png(tmp_path, sd_metadata=json.dumps(legacy))
    g = studio.recall(png)
    v = {nid: spec.values for nid, spec in g.nodes.items()}
    assert v["positive_prompt"]["value"] == "a cute cat"
    assert v["negative_prompt"]["value"] == "blurry"
    assert v["seed"]["value"] == 7
    assert (v["noise"]["width"], v["noise"]["height"]) == (64, 64)
    den = v["denoise_latents"]
    assert (den["steps"], den["cfg_scale"], den["scheduler"]) == (3, 6.0, "euler_a")
    assert v["model_loader"]["model"].key == model.key
    img = studio.rerun(png, progress=False)
    assert img.pil.size == (64, 64) and img.record.seed == 7


def test_dream_needs_a_model_and_maps_the_sampler(studio, model, tmp_path: Path) -> None:
    png = _png(tmp_path, Dream='"a dog on a hill" -s 4 -S 99 -W 64 -H 64 -C 7.0 -A k_lms')
    with pytest.raises(RecallError, match="names no model; pass model="):
        studio.recall(png)
    g = studio.recall(png, model="tiny")
    den = g.nodes["denoise_latents"].values
    assert (den["steps"], den["cfg_scale"], den["scheduler"]) == (4, 7.0, "lms")
    assert g.nodes["seed"].values["value"] == 99


def test_invokeai3_metadata_model_shape(studio, model, tmp_path: Path) -> None:
    meta = {
        "positive_prompt": "a cat",
        "negative_prompt": "",
        "seed": 5,
        "width": 64,
        "height": 64,
        "steps": 2,
        "cfg_scale": 7.5,
        "scheduler": "dpmpp_2m_k",
        "model": {"model_name": "tiny", "base_model": "sd-1", "model_type": "main"},
    }
    g = studio.recall(_png(tmp_path, invokeai_metadata=json.dumps(meta)))
    assert g.nodes["model_loader"].values["model"].key == model.key
    assert g.nodes["denoise_latents"].values["scheduler"] == "dpmpp_2m_k"


def test_old_metadata_errors_name_the_problem(studio, model, tmp_path: Path) -> None:
    base = {"positive_prompt": "a cat", "seed": 1, "width": 64, "height": 64, "steps": 2}
    bad_sampler = _png(tmp_path, invokeai_metadata=json.dumps({**base, "scheduler": "k_foo"}))
    with pytest.raises(RecallError, match="unknown sampler 'k_foo'"):
        studio.recall(bad_sampler, model="tiny")
    no_seed = {k: v for k, v in base.items() if k != "seed"}
    with pytest.raises(RecallError, match="lacks seed"):
        studio.recall(_png(tmp_path, invokeai_metadata=json.dumps(no_seed)), model="tiny")
    other = {**base, "model": {"name": "sdxl-base", "base": "sdxl", "hash": "blake3:00"}}
    with pytest.raises(RecallError, match="'sdxl-base'"):
        studio.recall(_png(tmp_path, invokeai_metadata=json.dumps(other)))
    with pytest.raises(RecallError, match="carries no invokeai_graph"):
        studio.recall(_png(tmp_path))
