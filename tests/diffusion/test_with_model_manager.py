"""The diffusion graphs on models installed through the real model manager (not LocalModels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import invoke_nb as inb
from invoke_nb.graph.standard import OUTPUT, txt2img
from invoke_nb.nodes.types import identifier

SMALL = dict(width=64, height=64, steps=2, seed=5)


@pytest.fixture(scope="module")
def manager(tmp_path_factory: pytest.TempPathFactory):
    from invoke_nb.models.manager import ModelManager
    from invoke_nb.models.records import MemoryModelRecordStore

    return ModelManager(tmp_path_factory.mktemp("models"), MemoryModelRecordStore())


def test_installed_folder_file_and_lora_generate(
    manager, models, sd1, tiny_sd1: Path, tiny_sd1_file: Path, tiny_lora_sd1: Path
) -> None:
    folder = manager.install(tiny_sd1, name="mm-sd1", in_place=True)
    single = manager.install(tiny_sd1_file, name="mm-sd1-file", in_place=True, config=tiny_sd1)
    lora = manager.install(tiny_lora_sd1, name="mm-lora", in_place=True)
    assert (folder.base, folder.type, single.base, lora.type) == ("sd-1", "main", "sd-1", "lora")
    run = inb.Runner(services=inb.Services(models=manager)).run
    a = np.asarray(run(txt2img(identifier(folder), "a cat", **SMALL)).image(OUTPUT))
    b = np.asarray(run(txt2img(identifier(single), "a cat", **SMALL)).image(OUTPUT))
    with_lora = txt2img(identifier(folder), "a cat", loras=[(identifier(lora), 1.0)], **SMALL)
    c = np.asarray(run(with_lora).image(OUTPUT))
    local = inb.Runner(services=inb.Services(models=models)).run(txt2img(sd1, "a cat", **SMALL))
    assert np.array_equal(a, b)
    assert np.array_equal(a, np.asarray(local.image(OUTPUT)))
    assert np.abs(a.astype(int) - c.astype(int)).max() > 10
