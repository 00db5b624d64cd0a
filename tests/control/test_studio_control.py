"""Studio one-liners with control=, ip_adapter= and regions=: models installed through the
model manager, InvokeAI's control-layer graph, metadata that recalls the layers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import invoke_nb as inb
from invoke_nb.studio import Studio


@pytest.fixture
def cstudio(tmp_path: Path, tiny_sd1: Path, cmodels) -> Iterator[Studio]:
    s = Studio(tmp_path / "studio")
    s.models.install(str(tiny_sd1), name="tiny", in_place=True)
    for name in ("cn-sd1-a", "t2i-sd1", "ip-sd1-plain", "ip_adapter_sd_image_encoder"):
        s.models.install(cmodels.store.list(name=name)[0].path, name=name, in_place=True)
    yield s
    s.close()


def test_installed_control_models_are_identified(cstudio: Studio) -> None:
    kinds = {r.name: (r.type, r.base) for r in cstudio.models.list()}
    assert kinds["cn-sd1-a"] == ("controlnet", "sd-1")
    assert kinds["t2i-sd1"] == ("t2i_adapter", "sd-1")
    assert kinds["ip-sd1-plain"] == ("ip_adapter", "sd-1")
    assert kinds["ip_adapter_sd_image_encoder"] == ("clip_vision", "any")
    rec = cstudio.models.get("ip-sd1-plain")
    assert rec.extra["image_encoder_model_id"] == "InvokeAI/ip_adapter_sd_image_encoder"


def test_txt2img_with_control_layers_builds_invokeais_graph_and_recalls_them(
    cstudio: Studio, control_image: Image.Image, reference_image: Image.Image
) -> None:
    common = dict(model="tiny", width=64, height=64, steps=3, seed=4, progress=False)
    plain = cstudio.txt2img("a cat", **common)
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 64))
    img = cstudio.txt2img(
        "a cat",
        control=[
            dict(model="cn-sd1-a", image=control_image, weight=0.7, end=0.8, mode="more_prompt"),
            dict(model="t2i-sd1", image=control_image, weight=0.5),
        ],
        ip_adapter=[dict(model="ip-sd1-plain", image=reference_image, weight=0.4)],
        regions=[dict(mask=mask, prompt="a red car", negative="blurry")],
        **common,
    )
    diff = np.abs(np.asarray(img.pil).astype(int) - np.asarray(plain.pil).astype(int))
    assert diff.max() > 10
    nodes = {n: s.type for n, s in img.graph.nodes.items()}
    for nid, kind in (
        ("control_net_0", "controlnet"),
        ("control_net_collector", "collect"),
        ("t2i_adapter_1", "t2i_adapter"),
        ("t2i_adapter_collector", "collect"),
        ("ip_adapter_0", "ip_adapter"),
        ("ip_adapter_collector", "collect"),
        ("prompt_region_mask_to_tensor_0", "alpha_mask_to_tensor"),
        ("prompt_region_positive_cond_0", "compel"),
        ("prompt_region_negative_cond_0", "compel"),
        ("pos_cond_collect", "collect"),
        ("neg_cond_collect", "collect"),
    ):
        assert nodes[nid] == kind, nid
    meta = img.metadata
    assert meta["controlnets"][0]["control_weight"] == 0.7
    assert meta["controlnets"][0]["control_mode"] == "more_prompt"
    assert meta["t2iAdapters"][0]["weight"] == 0.5
    assert meta["ipAdapters"][0]["weight"] == 0.4

    # recall: the metadata readers rebuild the same layers
    g = inb.Graph()
    g.add("metadata_from_image", id="m", image=img.image_name)
    for nid in ("metadata_to_controlnets", "metadata_to_ip_adapters", "metadata_to_t2i_adapters"):
        g.add(nid, id=nid)
        g.connect("m", "metadata", nid, "metadata")
    out = cstudio.run(g, progress=False).outputs
    (cn,) = out["metadata_to_controlnets"].control_list
    assert (cn.control_model.name, cn.control_weight, cn.end_step_percent) == ("cn-sd1-a", 0.7, 0.8)
    assert cn.control_mode == "more_prompt"
    (ip,) = out["metadata_to_ip_adapters"].ip_adapter_list
    assert (ip.ip_adapter_model.name, ip.weight) == ("ip-sd1-plain", 0.4)
    assert ip.image_encoder_model.name == "ip_adapter_sd_image_encoder"
    (t2i,) = out["metadata_to_t2i_adapters"].t2i_adapter_list
    assert (t2i.t2i_adapter_model.name, t2i.weight) == ("t2i-sd1", 0.5)


def test_bad_control_entries_are_refused_by_name(cstudio: Studio, control_image) -> None:
    with pytest.raises(TypeError, match="unknown keys"):
        cstudio.txt2img(
            "a", model="tiny", control=[dict(model="cn-sd1-a", image=control_image, wieght=1)]
        )
    with pytest.raises(TypeError, match="not a ControlNet"):
        cstudio.txt2img(
            "a", model="tiny", control=[dict(model="ip-sd1-plain", image=control_image)]
        )
    assert cstudio.images.list() == []  # nothing was generated


def test_img2img_and_inpaint_take_control_layers(
    cstudio: Studio, control_image: Image.Image
) -> None:
    common = dict(model="tiny", steps=3, seed=4, progress=False)
    base = Image.new("RGB", (64, 64), (120, 90, 60))
    control = [dict(model="cn-sd1-a", image=control_image)]
    a = cstudio.img2img(base, "a cat", strength=0.8, control=control, **common)
    assert a.graph.nodes["control_net_0"].type == "controlnet"
    mask = Image.new("L", (64, 64), 255)
    mask.paste(0, (16, 16, 48, 48))
    b = cstudio.inpaint(base, mask, "a cat", control=control, **common)
    assert b.graph.nodes["control_net_0"].type == "controlnet"
    assert b.pil.size == (64, 64)


def test_embedding_installed_through_the_manager_is_used_in_prompts(
    cstudio: Studio, control_dir: Path
) -> None:
    from invoke_nb.testing.tiny_control import make_embedding

    rec = cstudio.models.install(
        str(make_embedding(control_dir / "studio-emb.safetensors")), name="my-emb"
    )
    assert (rec.type, rec.base) == ("embedding", "sd-1")
    common = dict(model="tiny", width=64, height=64, steps=2, seed=1, progress=False)
    with_emb = np.asarray(cstudio.txt2img("a <my-emb> cat", **common).pil).astype(int)
    without = np.asarray(cstudio.txt2img("a cat", **common).pil).astype(int)
    assert np.abs(with_emb - without).max() > 5
