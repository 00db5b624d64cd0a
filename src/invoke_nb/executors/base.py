"""The executor interface: where a queue item's graph runs.

The local executor runs in the kernel's own process; the Ray executor (``executors/ray.py``)
runs on remote workers and streams events and images back. The queue sees only this.
"""

from __future__ import annotations

from typing import Protocol

from invoke_nb.graph.model import Graph
from invoke_nb.graph.runner import RunResult
from invoke_nb.nodes.context import Services

__all__ = ["Executor"]


class Executor(Protocol):
    """Runs one graph at a time for the queue."""

    name: str

    def run(self, graph: Graph, *, session_id: str, services: Services) -> RunResult:
        """Execute ``graph``; raise ``Cancelled`` when ``services.cancel`` is set mid-run."""
        ...

    def close(self) -> None:
        """Release workers and memory."""
        ...
