"""Executors: where graphs run (``local`` in the kernel, ``ray`` on a cluster).

``RayExecutor`` (and its errors) load on first use, so that importing this package never
imports Ray.
"""

from typing import Any

from invoke_nb.executors.base import Executor
from invoke_nb.executors.local import LocalExecutor

__all__ = ["Executor", "LocalExecutor", "ModelShipError", "RayExecutor", "WorkerLostError"]

_RAY_NAMES = ("ModelShipError", "RayExecutor", "WorkerLostError")


def __getattr__(name: str) -> Any:
    if name in _RAY_NAMES:
        from invoke_nb.executors import ray as ray_executor

        return getattr(ray_executor, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
