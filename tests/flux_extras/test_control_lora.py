"""FLUX control LoRAs: identified by the probe, bundled by flux_control_lora_loader, and
refused by flux_denoise with the field named (running them is not supported yet)."""

from __future__ import annotations

import uuid

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from invoke_nb.graph import standard_flux
from invoke_nb.graph.errors import NodeError
from invoke_nb.graph.model import Graph
from invoke_nb.models.local import identifier
from invoke_nb.models.probe import probe
from invoke_nb.models.records import ModelRecord


@pytest.fixture(scope="module")
def control_lora(tmp_path_factory: pytest.TempPathFactory, extras_models) -> object:
    path = tmp_path_factory.mktemp("control-lora") / "canny-lora.safetensors"
    save_file(
        {
            "img_in.lora_A.weight": torch.zeros(4, 128),
            "img_in.lora_B.weight": torch.zeros(3072, 4),
            "img_in.lora_B.bias": torch.zeros(3072),
        },
        path,
    )
    found = probe(path)
    assert (found.type, found.base, found.format) == ("control_lora", "flux", "lycoris")
    rec = ModelRecord(
        key=uuid.uuid4().hex, hash="local:canny", path=str(path), name="canny-lora",
        base=found.base, type=found.type, format=found.format, source=str(path), owned=False,
    )  # fmt: skip
    return identifier(extras_models.store.add(rec))


def test_loader_bundles_lora_image_and_weight(extras_runner, control_lora) -> None:
    g = Graph()
    image = Image.new("RGB", (64, 64), (10, 20, 30))
    g.add("flux_control_lora_loader", id="cl", lora=control_lora, image=image, weight=0.7)
    out = extras_runner.run(g).outputs["cl"].control_lora
    assert out.weight == 0.7 and out.lora.name == "canny-lora" and out.lora.type == "control_lora"
    assert out.img.image_name


def test_loader_refuses_another_model_type(extras_runner, extras) -> None:
    g = Graph()
    g.add("flux_control_lora_loader", id="cl", lora=extras["vae"], image=Image.new("RGB", (8, 8)))
    with pytest.raises(NodeError) as err:
        extras_runner.run(g)
    assert "'cl'" in str(err.value) and "lora" in str(err.value)


def test_denoise_refuses_control_lora_naming_the_field(extras_runner, extras, control_lora) -> None:
    g = standard_flux.txt2img(
        extras["dev"], "x", width=64, height=64, steps=1,
        t5_encoder=extras["t5"], clip_embed=extras["clip"], vae=extras["vae"],
    )  # fmt: skip
    g.add("flux_control_lora_loader", id="cl", lora=control_lora, image=Image.new("RGB", (64, 64)))
    g.connect("cl", "control_lora", "flux_denoise", "control_lora")
    with pytest.raises(NodeError) as err:
        extras_runner.run(g)
    assert "flux_denoise" in str(err.value) and "control_lora" in str(err.value)
