"""``segment_anything`` on a tiny random SAM installed on first use from a loopback Hub:
the merged mask equals SamModel + SamProcessor called directly (then refined as InvokeAI
does), filters pick one object, and SAM2 and bad prompts are refused by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import invoke_nb as inb
from invoke_nb.nodes.preprocessors.segment import _refine, sam_masks
from invoke_nb.nodes.utilities import BoundingBoxField
from invoke_nb.testing.tiny_depth import make_sam
from models.servers import FakeHub, serving

SRC = Path(__file__).parents[1] / "fixtures" / "invokeai" / "invokeai-euler-seed42.png"
REPO = "facebook/sam-vit-base"
BOXES = [
    BoundingBoxField(x_min=4, y_min=6, x_max=30, y_max=40, score=0.9),
    BoundingBoxField(x_min=30, y_min=20, x_max=60, y_max=60, score=0.4),
]


@pytest.fixture(scope="module")
def sam(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    from invoke_nb.models.manager import ModelManager
    from invoke_nb.models.records import MemoryModelRecordStore

    root = tmp_path_factory.mktemp("sam")
    repo = make_sam(root / "repo", seed=3)  # a seed whose two masks differ
    manager = ModelManager(root / "models", MemoryModelRecordStore())
    mp = pytest.MonkeyPatch()
    with serving(FakeHub({REPO: repo})) as url:
        mp.setenv("HF_ENDPOINT", url)
        mp.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        _mask(manager, bounding_boxes=BOXES[:1])  # first use installs
    mp.undo()
    return manager, repo


def _mask(manager: Any, **values: Any) -> np.ndarray:
    g = inb.Graph()
    g.add(
        "segment_anything", id="s", model="segment-anything-base", image=Image.open(SRC), **values
    )
    r = inb.Runner(services=inb.Services(models=manager)).run(g)
    out = r.outputs["s"]
    mask = r.value(out.mask)
    assert mask.dtype == torch.bool and (out.width, out.height) == (64, 64)
    return mask[0].numpy()


def _direct(repo: Path, boxes: list[BoundingBoxField]) -> list[np.ndarray]:
    from transformers import SamModel, SamProcessor

    model, processor = (
        SamModel.from_pretrained(str(repo)).eval(),
        SamProcessor.from_pretrained(str(repo)),
    )
    masks = sam_masks(
        model,
        processor,
        Image.open(SRC).convert("RGB"),
        [[b.x_min, b.y_min, b.x_max, b.y_max] for b in boxes],
        [],
    )
    return [_refine(m.numpy()) for m in masks]


def test_boxes_give_the_models_masks_merged(sam: tuple[Any, Path]) -> None:
    manager, repo = sam
    (rec,) = manager.list(type="segment_anything")
    assert rec.source == REPO
    expected = _direct(repo, BOXES)
    merged = _mask(manager, bounding_boxes=BOXES)
    assert np.array_equal(merged, expected[0] | expected[1])
    assert 0 < merged.mean() < 1
    best = _mask(manager, bounding_boxes=BOXES, mask_filter="highest_box_score")
    assert np.array_equal(best, expected[0])
    assert not np.array_equal(expected[0], expected[1])
    largest = _mask(manager, bounding_boxes=BOXES, mask_filter="largest")
    assert np.array_equal(largest, max(expected, key=lambda m: m.sum()))


def test_points_and_empty_prompts(sam: tuple[Any, Path]) -> None:
    manager, _ = sam
    pts = [{"points": [{"x": 20, "y": 20, "label": 1}, {"x": 50, "y": 50, "label": -1}]}]
    assert _mask(manager, point_lists=pts).any()
    assert not _mask(manager).any()  # no prompt: an empty mask


def test_sam2_and_mismatched_prompts_are_refused(sam: tuple[Any, Path]) -> None:
    manager, _ = sam
    g = inb.Graph()
    g.add(
        "segment_anything",
        id="s",
        model="segment-anything-2-tiny",
        image=Image.open(SRC),
        bounding_boxes=BOXES[:1],
    )
    with pytest.raises(Exception, match="node 's': SAM2 models"):
        inb.Runner(services=inb.Services(models=manager)).run(g)
    with pytest.raises(Exception, match="same length"):
        _mask(
            manager, bounding_boxes=BOXES, point_lists=[{"points": [{"x": 1, "y": 1, "label": 1}]}]
        )
