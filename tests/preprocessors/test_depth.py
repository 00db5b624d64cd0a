"""``depth_anything_depth_estimation``: the weights install on first use from the Hub repo
InvokeAI uses (a loopback stand-in for the Hub, ``HF_ENDPOINT``), the map equals
transformers' pipeline on the same folder, and offline without weights the error names the
node and the repo."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import invoke_nb as inb
from invoke_nb.testing.tiny_depth import make_depth_anything
from models.servers import FakeHub, serving

SRC = Path(__file__).parents[1] / "fixtures" / "invokeai" / "invokeai-euler-seed42.png"
REPO = "depth-anything/Depth-Anything-V2-Small-hf"


def _run(manager: Any, **values: Any) -> np.ndarray:
    g = inb.Graph()
    g.add("depth_anything_depth_estimation", id="d", **values)
    r = inb.Runner(services=inb.Services(models=manager)).run(g)
    return np.asarray(r.value(r.outputs["d"].image))


def _manager(root: Path) -> Any:
    from invoke_nb.models.manager import ModelManager
    from invoke_nb.models.records import MemoryModelRecordStore

    return ModelManager(root, MemoryModelRecordStore())


def test_installs_on_first_use_and_equals_the_pipeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import pipeline

    repo = make_depth_anything(tmp_path / "repo")
    manager = _manager(tmp_path / "models")
    image = Image.open(SRC).convert("RGB")
    hub = FakeHub({REPO: repo})
    with serving(hub) as url:
        monkeypatch.setenv("HF_ENDPOINT", url)
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        depth = _run(manager, image=image)
    (rec,) = manager.list(type="depth_anything")
    assert (rec.source, rec.base) == (REPO, "any")
    expected = np.asarray(pipeline(task="depth-estimation", model=str(repo))(image)["depth"])
    assert depth.shape == (64, 64) and depth.std() > 1
    assert np.abs(depth.astype(int) - expected.astype(int)).max() <= 1
    # second use: found installed, no Hub needed
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    assert np.array_equal(_run(manager, image=image), depth)


def test_offline_without_weights_names_node_and_repo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    with pytest.raises(
        Exception,
        match=r"node 'd' \(depth_anything_depth_estimation\).*"
        r"LiheYoung/depth-anything-small-hf.*not installed",
    ):
        _run(_manager(tmp_path), image=Image.open(SRC), model_size="small")
