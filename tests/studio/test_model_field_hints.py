"""Model fields take the models their ``ui_model_*`` hints name, as InvokeAI's UI offers them:
a model of another base or type is refused before the node runs, naming node and field."""

from __future__ import annotations

from pathlib import Path

import pytest

import invoke_nb as inb
from invoke_nb.graph.errors import NodeError
from invoke_nb.studio import Studio


def test_an_sdxl_lora_on_the_sd15_lora_loader_is_refused(
    studio: Studio, tiny_sd1: Path, tiny_lora_sdxl: Path
) -> None:
    main = studio.models.install(str(tiny_sd1), name="sd1")
    lora = studio.models.install(str(tiny_lora_sdxl), name="xl-lora")
    assert lora.base == "sdxl"
    g = inb.Graph()
    g.add("main_model_loader", id="m", model=main)
    g.add("lora_loader", id="l", lora=lora, weight=0.5)
    g.connect("m", "unet", "l", "unet")
    with pytest.raises(
        NodeError,
        match=r"field 'lora': model 'xl-lora' has base 'sdxl'; "
        r"this field takes base 'sd-1'",
    ):
        studio.run(g, progress=False)


def test_a_main_model_as_a_vae_is_refused(studio: Studio, tiny_sd1: Path) -> None:
    main = studio.models.install(str(tiny_sd1), name="sd1")
    g = inb.Graph()
    g.add("vae_loader", id="v", vae_model=main)
    with pytest.raises(NodeError, match=r"field 'vae_model': model 'sd1' has type 'main'"):
        studio.run(g, progress=False)


def test_the_editor_offers_what_the_field_takes(
    studio: Studio, tiny_sd1: Path, tiny_lora_sdxl: Path
) -> None:
    from invoke_nb.widgets.graph_editor import model_choices

    studio.models.install(str(tiny_sd1), name="sd1")
    studio.models.install(str(tiny_lora_sdxl), name="xl-lora")
    records = studio.models.list()
    assert [m["name"] for m in model_choices(records, "sdxl_lora_loader", "lora")] == ["xl-lora"]
    assert [m["name"] for m in model_choices(records, "lora_loader", "lora")] == []
    assert [m["name"] for m in model_choices(records, "main_model_loader", "model")] == ["sd1"]
