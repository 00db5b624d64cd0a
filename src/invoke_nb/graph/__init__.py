"""Graphs: the model, validation, the runner with its output cache, and workflow files."""

from invoke_nb.graph.cache import OutputCache, content_key
from invoke_nb.graph.errors import *  # noqa: F403 - the error classes are the API
from invoke_nb.graph.errors import __all__ as _errors
from invoke_nb.graph.model import Edge, EdgePoint, Graph, NodeSpec
from invoke_nb.graph.runner import NodeStat, Runner, RunResult, default_runner, run

__all__ = [
    *_errors,
    "Edge",
    "EdgePoint",
    "Graph",
    "NodeSpec",
    "NodeStat",
    "OutputCache",
    "RunResult",
    "Runner",
    "content_key",
    "default_runner",
    "run",
]
