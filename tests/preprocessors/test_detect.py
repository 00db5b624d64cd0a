"""``grounding_dino`` on a tiny random Grounding DINO installed on first use from a loopback
Hub: its boxes equal transformers' zero-shot detection pipeline on the same folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

import invoke_nb as inb
from invoke_nb.testing.tiny_depth import make_grounding_dino
from models.servers import FakeHub, serving

SRC = Path(__file__).parents[1] / "fixtures" / "invokeai" / "invokeai-euler-seed42.png"
REPO = "IDEA-Research/grounding-dino-tiny"


def test_boxes_equal_the_pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import pipeline

    from invoke_nb.models.manager import ModelManager
    from invoke_nb.models.records import MemoryModelRecordStore

    repo = make_grounding_dino(tmp_path / "repo")
    manager = ModelManager(tmp_path / "models", MemoryModelRecordStore())
    image = Image.open(SRC).convert("RGB")
    g = inb.Graph()
    g.add(
        "grounding_dino",
        id="g",
        model="grounding-dino-tiny",
        prompt="a cat",
        image=image,
        detection_threshold=0.5,
    )
    with serving(FakeHub({REPO: repo})) as url:
        monkeypatch.setenv("HF_ENDPOINT", url)
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        boxes = inb.Runner(services=inb.Services(models=manager)).run(g).outputs["g"].collection
    assert manager.list(type="grounding_dino")[0].source == REPO
    found = pipeline(task="zero-shot-object-detection", model=str(repo))(
        image=image, candidate_labels=["a cat."], threshold=0.5
    )
    assert len(boxes) == len(found) > 0
    for box, ref in zip(boxes, found, strict=True):
        assert box.box() == (
            ref["box"]["xmin"],
            ref["box"]["ymin"],
            ref["box"]["xmax"],
            ref["box"]["ymax"],
        )
        assert box.score == pytest.approx(ref["score"], abs=1e-5)
