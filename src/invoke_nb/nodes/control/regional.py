"""Conditioning primitives used by regional prompts (a masked prompt travels as a
``ConditioningField`` with its ``mask``; ``denoise_latents`` applies it to its region)."""

from __future__ import annotations

from invoke_nb.nodes.base import Input, InputField, Node, Output, OutputField, node, output
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.fields import ConditioningOutput
from invoke_nb.nodes.types import ConditioningField

__all__ = ["ConditioningCollectionNode", "ConditioningNode"]


@output("conditioning_collection_output")
class ConditioningCollectionOutput(Output):
    """A list of conditioning references."""

    collection: list[ConditioningField] = OutputField(description="The output conditioning tensors")


@node(
    "conditioning",
    title="Conditioning Primitive",
    category="primitives",
    tags=["primitives", "conditioning"],
    version="1.0.1",
)
class ConditioningNode(Node):
    """A conditioning tensor primitive value"""

    conditioning: ConditioningField = InputField(
        description="Conditioning tensor", input=Input.CONNECTION
    )

    def invoke(self, ctx: Context) -> ConditioningOutput:
        return ConditioningOutput(conditioning=self.conditioning)


@node(
    "conditioning_collection",
    title="Conditioning Collection Primitive",
    category="primitives",
    tags=["primitives", "conditioning", "collection"],
    version="1.0.2",
)
class ConditioningCollectionNode(Node):
    """A collection of conditioning tensor primitive values"""

    collection: list[ConditioningField] = InputField(
        default=[], description="The collection of conditioning tensors"
    )

    def invoke(self, ctx: Context) -> ConditioningCollectionOutput:
        return ConditioningCollectionOutput(collection=list(self.collection))
