"""invoke-nb: InvokeAI's node-graph image generation inside a Jupyter kernel.

The public face::

    import invoke_nb as inb
    g = inb.Graph()
    a = g.add("integer", value=2)
    s = g.add("add", b=3)
    g.connect(a, "value", s, "a")
    r = inb.run(g)
    r.outputs[s].value == 5

Importing the package loads no torch, diffusers or transformers (nor the widget stack):
they load when a node that needs them runs, a model loads, or a widget is made. Node
modules keep heavy imports inside the functions that use them; the test
``tests/test_import_light.py`` holds every module to that.
"""

from typing import Any

from invoke_nb import nodes
from invoke_nb._version import __version__ as __version__
from invoke_nb.graph import (
    Graph,
    GraphError,
    NodeError,
    OutputCache,
    Runner,
    RunResult,
    run,
)
from invoke_nb.graph.workflow import Workflow, load_workflow, read_workflow

# refuses hub kernel downloads before anything (diffusers) can import bitsandbytes
from invoke_nb.models import offline_kernels as _offline_kernels  # noqa: F401
from invoke_nb.nodes import (
    Cancelled,
    Context,
    Input,
    InputField,
    Node,
    Output,
    OutputField,
    Services,
    node,
    output,
)
from invoke_nb.studio import Studio, StudioImage, studio


def __getattr__(name: str) -> Any:
    """``show_in_panel`` imports the widget stack (ipywidgets, anywidget) on first use."""
    if name == "show_in_panel":
        from invoke_nb.widgets.panel import show_in_panel

        return show_in_panel
    raise AttributeError(f"module 'invoke_nb' has no attribute {name!r}")


__all__ = [
    "Cancelled",
    "Context",
    "Graph",
    "GraphError",
    "Input",
    "InputField",
    "Node",
    "NodeError",
    "Output",
    "OutputCache",
    "OutputField",
    "RunResult",
    "Runner",
    "Services",
    "Studio",
    "StudioImage",
    "Workflow",
    "load_workflow",
    "node",
    "nodes",
    "output",
    "read_workflow",
    "run",
    "show_in_panel",
    "studio",
]
