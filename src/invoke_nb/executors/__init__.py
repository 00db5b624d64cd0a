"""Executors: where graphs run (``local`` in the kernel, ``ray`` on a cluster)."""

from invoke_nb.executors.base import Executor
from invoke_nb.executors.local import LocalExecutor

__all__ = ["Executor", "LocalExecutor"]
