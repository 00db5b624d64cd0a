"""Offline without their weights, the transformers-based preprocessors (Segment Anything,
Grounding DINO) fail with an error naming the node, its type and the Hub repo to install,
and install nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import invoke_nb as inb

SRC = Path(__file__).parents[1] / "fixtures" / "invokeai" / "invokeai-euler-seed42.png"
CASES = [
    (
        "segment_anything",
        {
            "model": "segment-anything-base",
            "bounding_boxes": [{"x_min": 4, "y_min": 4, "x_max": 40, "y_max": 40}],
        },
        "facebook/sam-vit-base",
    ),
    (
        "grounding_dino",
        {"model": "grounding-dino-tiny", "prompt": "a cat"},
        "IDEA-Research/grounding-dino-tiny",
    ),
]


@pytest.mark.parametrize(("type_id", "values", "repo"), CASES)
def test_offline_without_weights_names_node_and_repo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, type_id: str, values: dict[str, Any], repo: str
) -> None:
    from invoke_nb.models.manager import ModelManager
    from invoke_nb.models.records import MemoryModelRecordStore

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    manager = ModelManager(tmp_path / "models", MemoryModelRecordStore())
    g = inb.Graph()
    g.add(type_id, id="p", image=Image.open(SRC).convert("RGB"), **values)
    with pytest.raises(inb.NodeError, match=rf"node 'p' \({type_id}\).*{repo}.*not installed"):
        inb.Runner(services=inb.Services(models=manager)).run(g)
    assert manager.list() == []  # nothing half-installed
