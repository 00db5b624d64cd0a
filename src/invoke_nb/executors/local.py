"""The local executor: graphs run in the kernel's process on its shared runner and caches."""

from __future__ import annotations

from invoke_nb.graph.cache import OutputCache
from invoke_nb.graph.model import Graph
from invoke_nb.graph.runner import Runner, RunResult
from invoke_nb.nodes.context import Services

__all__ = ["LocalExecutor"]


class LocalExecutor:
    """Runs graphs in this process with one output cache shared by every run."""

    name = "local"

    def __init__(self, cache: OutputCache | None = None) -> None:
        self.runner = Runner(cache=cache)

    def run(self, graph: Graph, *, session_id: str, services: Services) -> RunResult:
        return self.runner.run(graph, session_id=session_id, services=services)

    def close(self) -> None:
        self.runner.cache.clear()
