"""invoke-nb: InvokeAI's node-graph image generation inside a Jupyter kernel.

The public face::

    import invoke_nb as inb
    g = inb.Graph()
    a = g.add("integer", value=2)
    s = g.add("add", b=3)
    g.connect(a, "value", s, "a")
    r = inb.run(g)
    r.outputs[s].value == 5
"""

from invoke_nb import nodes
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
from invoke_nb.widgets.panel import show_in_panel

__version__ = "0.1.0"

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
