"""A local Ray cluster for the executor tests: 2 CPUs, loopback only, no dashboard, and a
temporary HOME so Ray's token and caches never land in the real home folder."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # ray_nodes


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    ray = pytest.importorskip("ray")
    home = tmp_path_factory.mktemp("ray-home")
    saved = {k: os.environ.get(k) for k in ("HOME", "RAY_AUTH_MODE")}
    os.environ["HOME"] = str(home)
    os.environ["RAY_AUTH_MODE"] = "disabled"
    from invoke_nb.executors.ray import start_local_ray

    start_local_ray(num_cpus=2)  # tried again when a loaded machine's raylet times out
    try:
        yield ray
    finally:
        ray.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
