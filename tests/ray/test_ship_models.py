"""Ray executor paths beside tests/ray/test_ray_executor.py's (which ships every model):
the default ``ship_models="auto"`` ships nothing a worker can read by path and names a model
missing in the kernel too; ``"never"`` ships nothing, so the worker names the model it cannot
read; a run with no live worker fails with that reason. One 1-worker executor for the
module, one more for the dead-worker case."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray")

import ray_nodes  # noqa: F401 - registers ray_t_slow_image

import invoke_nb as inb
from invoke_nb.executors.ray import RayExecutor, WorkerLostError
from invoke_nb.graph.standard import OUTPUT, txt2img
from invoke_nb.nodes.types import identifier
from invoke_nb.studio import Studio


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ray-ship")


@pytest.fixture(scope="module")
def studio(ray_cluster: Any, tiny_sd1: Path, root: Path) -> Iterator[Studio]:
    """A studio on one Ray worker with the executor's default model shipping."""
    s = Studio(root / "studio")
    s.models.install(tiny_sd1, name="tiny-sd1", in_place=True)
    moved = root / "moved-sd1"
    shutil.copytree(tiny_sd1, moved)
    _nudge_weights(moved / "vae" / "diffusion_pytorch_model.safetensors")  # another hash
    s.models.install(moved, name="moved", in_place=True)
    shutil.move(moved, root / "elsewhere")  # its files are gone, in the kernel too
    s.use_executor("ray", workers=1, model_dir=str(root / "worker-models"))
    s.executor.wait_ready()
    yield s
    s.executor.close()
    s.close()


def _nudge_weights(path: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(path)
    first = sorted(tensors)[0]
    tensors[first] = tensors[first] + 1e-3
    save_file(tensors, path)


def shipped(root: Path) -> list[Path]:
    return list((root / "worker-models").glob("*/.verified"))


def graph(studio: Studio, model: str) -> inb.Graph:
    rec = identifier(studio.models.get(model))
    return txt2img(rec, "a lighthouse", width=64, height=64, steps=2, seed=1)


def test_auto_is_the_default_and_ships_nothing_the_worker_can_read(
    studio: Studio, root: Path
) -> None:
    assert studio.executor.ship_models == "auto"
    res = studio.run(graph(studio, "tiny-sd1"), progress=False)
    assert res.image.pil.size == (64, 64) and res.image.name == res.outputs[OUTPUT].image.image_name
    assert shipped(root) == []  # read from the shared path, not copied
    (stats,) = studio.executor.worker_stats()
    assert stats["model_loads"] and set(stats["model_loads"].values()) == {1}


def test_auto_names_a_model_missing_in_the_kernel_too(studio: Studio, root: Path) -> None:
    with pytest.raises(Exception, match=r"'moved'.*missing in the kernel too") as info:
        studio.run(graph(studio, "moved"), progress=False)
    assert "moved-sd1" in str(info.value)
    assert shipped(root) == []


def test_never_ships_nothing_and_the_worker_names_the_model(studio: Studio, root: Path) -> None:
    ex: RayExecutor = studio.executor
    ex.ship_models = "never"
    try:
        with pytest.raises(inb.NodeError, match=r"model_loader|moved") as info:
            studio.run(graph(studio, "moved"), progress=False)
    finally:
        ex.ship_models = "auto"
    assert "moved" in str(info.value)
    assert shipped(root) == []
    # the worker is still there for the next job
    assert studio.run(graph(studio, "tiny-sd1"), progress=False).image.pil.size == (64, 64)


def test_no_live_worker_fails_with_the_reason(ray_cluster: Any) -> None:
    ex = RayExecutor(workers=1, replace_dead_workers=False)
    try:
        (info,) = ex.wait_ready()
        os.kill(info["pid"], signal.SIGKILL)
        g = inb.Graph()
        g.add("ray_t_slow_image", id="slow", steps=1, delay=0.01)
        with pytest.raises(WorkerLostError, match="no Ray worker is alive"):
            ex.run(g, session_id="after-death", services=inb.Services())
        assert [r["session_id"] for r in ex.retries] == ["after-death"]
        with pytest.raises(WorkerLostError, match="no Ray worker is alive"):  # and stays so
            ex.run(g, session_id="again", services=inb.Services())
    finally:
        ex.close()
