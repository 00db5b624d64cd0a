"""Annotator preprocessors (HED, ...): the weight file installs on first use from the Hub
repo InvokeAI uses (a loopback stand-in, ``HF_ENDPOINT``), and the map equals InvokeAI
6.11.1's network and processing run on the same tiny weights (reference maps made by its own
code, see tests/fixtures/preprocessors/README.md). Offline without weights the error names
the node and the file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import invoke_nb as inb
from invoke_nb.testing.tiny_annotators import (
    ANNOTATOR_FILES,
    CONTROLNET_FILES,
    PBR_FILES,
    write_annotator,
)
from invoke_nb.testing.tiny_dwpose import DWPOSE_FILES
from models.servers import FakeHub, serving

FIX = Path(__file__).parents[1] / "fixtures"
SOURCE = FIX / "invokeai" / "invokeai-euler-seed42.png"
REPO = "lllyasviel/Annotators"
CONTROLNET = "lllyasviel/ControlNet"  # M-LSD's file is in this one
PBR = "InvokeAI/pbr-material-maps"
DWPOSE = "yzd-v/DWPose"
MLSD = "annotator/ckpts/mlsd_large_512_fp32.pth"

# (node type, input values, weight file in the repo, reference map, tolerance in 0-255
# levels, share of pixels allowed beyond it). A tolerance because OpenCV's resize and float
# summation order may round differently between builds (one level can flip a thresholded
# pixel).
CASES = [
    ("hed_edge_detection", {}, "ControlNetHED.pth", "hed.png", 1, 0.001),
    ("hed_edge_detection", {"scribble": True}, "ControlNetHED.pth", "hed-scribble.png", 0, 0.02),
    ("pidi_edge_detection", {}, "table5_pidinet.pth", "pidi.png", 1, 0.001),
    (
        "pidi_edge_detection",
        {"quantize_edges": True},
        "table5_pidinet.pth",
        "pidi-quantized.png",
        0,
        0.01,
    ),
    ("pidi_edge_detection", {"scribble": True}, "table5_pidinet.pth", "pidi-scribble.png", 0, 0.02),
    ("lineart_edge_detection", {}, "sk_model.pth", "lineart.png", 1, 0.001),
    ("lineart_edge_detection", {"coarse": True}, "sk_model2.pth", "lineart-coarse.png", 1, 0.001),
    ("lineart_anime_edge_detection", {}, "netG.pth", "lineart_anime.png", 1, 0.001),
    ("normal_map", {}, "scannet.pt", "normal_map.png", 1, 0.001),
    # OpenCV builds resample the pose crops differently (4.11 in InvokeAI's venv, 5.1 here;
    # with one OpenCV the maps are equal): a moved point moves a dot
    ("dw_openpose_detection", {}, "yolox_l.onnx", "dw_openpose.png", 0, 0.01),
    (
        "dw_openpose_detection",
        {"draw_face": True, "draw_hands": True},
        "yolox_l.onnx",
        "dw_openpose-all.png",
        0,
        0.03,
    ),
    # lines drawn from truncated float end points: a rounding may move a pixel
    ("mlsd_detection", {}, MLSD, "mlsd.png", 0, 0.01),
    (
        "mlsd_detection",
        {"score_threshold": 0.3, "distance_threshold": 30.0},
        MLSD,
        "mlsd-strict.png",
        0,
        0.01,
    ),
]


def _manager(root: Path) -> Any:
    from invoke_nb.models.manager import ModelManager
    from invoke_nb.models.records import MemoryModelRecordStore

    return ModelManager(root, MemoryModelRecordStore())


def _run(manager: Any, type_id: str, **values: Any) -> np.ndarray:
    g = inb.Graph()
    g.add(type_id, id="n", **values)
    r = inb.Runner(services=inb.Services(models=manager)).run(g)
    return np.asarray(r.value(r.outputs["n"].image))


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    repos = {r: tmp_path_factory.mktemp(r.split("/")[1]) for r in (REPO, CONTROLNET, PBR, DWPOSE)}
    for name, make in DWPOSE_FILES.items():
        make(repos[DWPOSE] / name)
    for repo, files in ((REPO, ANNOTATOR_FILES), (CONTROLNET, CONTROLNET_FILES), (PBR, PBR_FILES)):
        for name in files:
            write_annotator(repos[repo], name)
    with serving(FakeHub(repos)) as url:
        yield url


@pytest.fixture(scope="module")
def manager(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return _manager(tmp_path_factory.mktemp("models"))


@pytest.mark.parametrize(("type_id", "values", "file", "ref", "tol", "share"), CASES)
def test_map_equals_invokeai_on_the_same_weights(
    hub: str,
    manager: Any,
    monkeypatch: pytest.MonkeyPatch,
    type_id: str,
    values: dict[str, Any],
    file: str,
    ref: str,
    tol: int,
    share: float,
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    got = _run(manager, type_id, image=Image.open(SOURCE), **values)
    expected = np.asarray(Image.open(FIX / "preprocessors" / ref))
    assert got.shape == expected.shape and got.std() > 1
    diff = np.abs(got.astype(int) - expected.astype(int))
    assert (diff > tol).mean() <= share
    (rec,) = [r for r in manager.list() if r.source.endswith(f"/resolve/main/{file}")]
    assert rec.base == "any"
    # installed once, found again offline
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    assert np.array_equal(_run(manager, type_id, image=Image.open(SOURCE), **values), got)


@pytest.mark.parametrize(
    ("tile_size", "border_mode"), [(512, "none"), (32, "seamless"), (40, "replicate")]
)
def test_pbr_maps_equal_invokeai(
    hub: str, manager: Any, monkeypatch: pytest.MonkeyPatch, tile_size: int, border_mode: str
) -> None:
    """Both networks install on first use; untiled, tiled with a wrapped border, and tiled
    with ragged edge tiles, the three maps equal InvokeAI's."""
    monkeypatch.setenv("HF_ENDPOINT", hub)
    g = inb.Graph()
    g.add(
        "pbr_maps", id="n", image=Image.open(SOURCE), tile_size=tile_size, border_mode=border_mode
    )
    r = inb.Runner(services=inb.Services(models=manager)).run(g)
    out = r.outputs["n"]
    for kind in ("normal", "roughness", "displacement"):
        got = np.asarray(r.value(getattr(out, f"{kind}_map"))).astype(int)
        ref = f"pbr-{border_mode}-{tile_size}-{kind}.png"
        expected = np.asarray(Image.open(FIX / "preprocessors" / ref)).astype(int)
        assert got.shape == expected.shape == (64, 64, 3) and got.std() > 1
        assert (np.abs(got - expected) > 1).mean() <= 0.001, kind
    assert len([x for x in manager.list() if x.type == "pbr_maps"]) == 2


@pytest.mark.parametrize("type_id", sorted({c[0] for c in CASES} | {"pbr_maps"}))
def test_offline_without_weights_names_node_and_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, type_id: str
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    repo = {"mlsd_detection": CONTROLNET, "pbr_maps": PBR, "dw_openpose_detection": DWPOSE}
    repo = repo.get(type_id, REPO)
    with pytest.raises(Exception, match=rf"node 'n' \({type_id}\).*{repo}/.*not installed"):
        _run(_manager(tmp_path), type_id, image=Image.open(SOURCE))
