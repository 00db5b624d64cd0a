"""``iterate`` and ``collect``: fan-out over a collection and fan-in of results.

The runner gives these two their meaning (it expands the graph per item and gathers
results); the classes here declare their fields and outputs so they validate, export
schemas and import from InvokeAI workflows like any other node.
"""

from __future__ import annotations

from typing import Any

from invoke_nb.nodes.base import Input, InputField, Node, Output, OutputField, node, output
from invoke_nb.nodes.context import Context

__all__ = ["CollectNode", "CollectOutput", "IterateNode", "IterateOutput"]


@output("iterate_output")
class IterateOutput(Output):
    """One item of a collection, with its position."""

    item: Any = OutputField(description="The item being iterated over")
    index: int = OutputField(description="The index of the item")
    total: int = OutputField(description="The total number of items")


@node(
    "iterate",
    title="Iterate",
    category="collections",
    tags=["collection", "iterate"],
    version="1.1.0",
)
class IterateNode(Node):
    """Runs everything downstream once per item of ``collection`` (up to a ``collect``)."""

    collection: list[Any] = InputField(
        default_factory=list, description="The list of items to iterate over", input=Input.ANY
    )
    index: int = InputField(
        default=0,
        description="The index, will be provided on executed iterators",
        input=Input.DIRECT,
    )

    def invoke(self, ctx: Context) -> IterateOutput:
        # The runner expands iterate itself; invoking it directly yields the indexed item.
        return IterateOutput(
            item=self.collection[self.index], index=self.index, total=len(self.collection)
        )


@output("collect_output")
class CollectOutput(Output):
    """The gathered items."""

    collection: list[Any] = OutputField(description="The collection of input items")


@node(
    "collect",
    title="Collect",
    category="collections",
    tags=["collection", "collect"],
    version="1.0.0",
)
class CollectNode(Node):
    """Gathers every value reaching ``item`` (from many edges and iterations) into a list."""

    item: Any = InputField(
        default=None,
        description="The item to collect (all inputs must be of the same type)",
        input=Input.CONNECTION,
    )
    collection: list[Any] = InputField(
        default_factory=list,
        description="The collection, will be provided on execution",
        input=Input.DIRECT,
    )

    def invoke(self, ctx: Context) -> CollectOutput:
        return CollectOutput(collection=list(self.collection))
