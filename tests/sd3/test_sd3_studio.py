"""SD3 in the Studio: one-liners build InvokeAI's SD3 graph, recall/rerun, default workflow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import invoke_nb as inb
from invoke_nb.studio import Studio
from shared_paths import INVOKEAI_WORKFLOWS

WORKFLOW = INVOKEAI_WORKFLOWS / "SD3.5 Text to Image.json"


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory, tiny_sd3: Path) -> Iterator[Studio]:
    s = Studio(tmp_path_factory.mktemp("sd3-studio") / "studio")
    s.models.install(str(tiny_sd3), name="tiny-sd3", in_place=True)
    yield s
    s.close()


def _px(img) -> np.ndarray:
    return np.asarray(img.pil.convert("RGB")).astype(np.int16)


def test_txt2img_one_liner_builds_the_sd3_graph_and_reruns(studio: Studio) -> None:
    img = studio.txt2img(
        "a red car", model="tiny-sd3", width=64, height=64, steps=3, seed=9, progress=False
    )
    types = {spec.type for spec in img.graph.nodes.values()}
    assert {"sd3_model_loader", "sd3_text_encoder", "sd3_denoise", "sd3_l2i"} <= types
    assert "denoise_latents" not in types
    meta = img.metadata
    assert meta["generation_mode"] == "sd3_txt2img" and meta["seed"] == 9
    assert meta["model"]["base"] == "sd-3" and meta["positive_prompt"] == "a red car"
    again = studio.rerun(img, progress=False)
    assert (_px(again) == _px(img)).all()
    other = studio.rerun(img, seed=10, progress=False)
    assert other.metadata["seed"] == 10 and np.abs(_px(other) - _px(img)).max() > 10


def test_img2img_and_outpaint_one_liners(studio: Studio) -> None:
    source = Image.new("RGB", (64, 64), (200, 60, 30))
    img = studio.img2img(
        source, "a red car", model="tiny-sd3", strength=0.5, steps=4, progress=False
    )
    assert img.metadata["generation_mode"] == "sd3_img2img" and img.pil.size == (64, 64)
    assert img.graph.nodes["sd3_denoise"].values["denoising_start"] == pytest.approx(0.5)
    canvas = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    canvas.paste(Image.new("RGBA", (32, 64), (30, 200, 60, 255)), (0, 0))
    out = studio.outpaint(canvas, "a red car", model="tiny-sd3", steps=3, progress=False)
    px = np.asarray(out.pil.convert("RGB"))
    assert (px[:, :8] == (30, 200, 60)).all()  # kept exactly (paste-back)
    assert out.metadata["generation_mode"] == "sd3_outpaint"


def test_sd35_default_workflow_runs_on_the_tiny_model(studio: Studio) -> None:
    g = inb.load_workflow(WORKFLOW)
    data = __import__("json").loads(WORKFLOW.read_text())
    assert len(g.nodes) == len(data["nodes"]) and len(g.edges) == len(data["edges"])
    model = studio._model("tiny-sd3")
    for nid, spec in g.nodes.items():
        if spec.type == "sd3_model_loader":
            g.set(nid, model=model)
        elif spec.type == "sd3_denoise":
            g.set(nid, width=64, height=64, steps=2)
        elif spec.type == "sd3_text_encoder":
            g.set(nid, prompt="a tiger")
    before = studio.images.count()
    result = studio.run(g, progress=False)
    assert result.image.pil.size == (64, 64)
    assert studio.images.count() == before + 1
