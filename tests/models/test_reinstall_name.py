"""Installing content that is already installed under another name says so (issue 15).

The same content is one record, so the second name is not registered; the caller gets the
existing record and a warning naming the name to use, never a silently unknown name.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest

from invoke_nb.models.cache import ModelCache
from invoke_nb.models.errors import ModelNotFoundError
from invoke_nb.models.manager import ModelAlreadyInstalledWarning, ModelManager
from invoke_nb.models.records import MemoryModelRecordStore


@pytest.fixture
def manager(tmp_path: Path) -> ModelManager:
    cache = ModelCache(ram_bytes=100 * 1024 * 1024, device="cpu")
    return ModelManager(tmp_path / "models", MemoryModelRecordStore(), cache)


def test_same_content_under_a_new_name_warns_with_the_name_to_use(
    manager: ModelManager, sd1_folder: Path, tmp_path: Path
) -> None:
    first = manager.install(sd1_folder, name="tiny-sd1-demo", in_place=True)
    copy = tmp_path / "tiny-sd1"
    shutil.copytree(sd1_folder, copy)
    with pytest.warns(ModelAlreadyInstalledWarning, match="'tiny-sd1-demo'") as caught:
        again = manager.install(copy, name="tiny-sd1")
    assert again.key == first.key and again.name == "tiny-sd1-demo"
    assert "'tiny-sd1'" in str(caught[0].message) and first.key in str(caught[0].message)
    assert caught[0].filename == __file__  # points at the caller's line
    with pytest.raises(ModelNotFoundError, match="tiny-sd1"):
        manager.get("tiny-sd1")
    # the warning's advice works: the record takes the new name
    manager.update(first.key, name="tiny-sd1")
    assert manager.get("tiny-sd1").key == first.key


def test_same_content_without_a_name_or_with_the_same_name_is_quiet(
    manager: ModelManager, sd1_folder: Path
) -> None:
    first = manager.install(sd1_folder, name="tiny", in_place=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert manager.install(sd1_folder).key == first.key
        assert manager.install(sd1_folder, name="tiny").key == first.key
