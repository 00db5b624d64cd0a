"""The worker's model side, in-process (no Ray): shipped models are unpacked, hash-checked and
loaded from the local copy; a copy with the wrong hash is refused and removed."""

from __future__ import annotations

from pathlib import Path

import pytest

from invoke_nb.executors.ray_worker import ModelShipError, WorkerModels
from invoke_nb.executors.shipping import pack_chunks
from invoke_nb.models.hashing import model_hash
from invoke_nb.models.local import LocalModels
from invoke_nb.nodes.types import identifier


@pytest.fixture(scope="module")
def record(tiny_sd1: Path):
    rec = LocalModels().register(tiny_sd1, name="tiny-sd1")
    # as the kernel's model manager would have it: the path is not on this "worker"
    return rec.model_copy(update={"path": "/nowhere/tiny-sd1", "hash": model_hash(tiny_sd1)})


def test_shipped_folder_is_verified_and_loaded(tmp_path: Path, tiny_sd1: Path, record) -> None:
    wm = WorkerModels(tmp_path / "models")
    wm.add(record)
    assert wm.missing(record) == ["path"]
    local = wm.install(
        record, "path", pack_chunks(tiny_sd1, bytes, 1 << 16), is_dir=True, expected=record.hash
    )
    assert Path(local).is_dir() and model_hash(local) == record.hash
    assert wm.missing(record) == []
    with wm.load(identifier(record), "vae") as vae:
        assert type(vae).__name__ == "AutoencoderKL"
    with wm.load(identifier(record), "vae"):
        pass
    assert wm.loads == {f"{record.key}:vae": 1}
    assert wm.loaded_keys() == [record.key]
    # a second shipment of the same content reuses the verified copy
    assert wm.install(record, "path", [], is_dir=True, expected=record.hash) == local


def test_wrong_hash_is_refused_and_leaves_nothing(tmp_path: Path, tiny_sd1: Path, record) -> None:
    wm = WorkerModels(tmp_path / "models")
    wm.add(record)
    bad = "blake3:" + "0" * 64
    with pytest.raises(ModelShipError, match=r"'tiny-sd1'.*arrived with hash"):
        wm.install(record, "path", pack_chunks(tiny_sd1, bytes, 1 << 16), is_dir=True, expected=bad)
    assert list((tmp_path / "models").iterdir()) == []
    assert wm.missing(record) == ["path"]
