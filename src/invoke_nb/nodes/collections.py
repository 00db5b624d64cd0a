"""Integer collection nodes with InvokeAI's ids and fields: ``range``, ``range_of_size``,
``random_range``. (``iterate`` and ``collect`` belong to the graph engine.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pydantic import ValidationInfo, field_validator

from invoke_nb.nodes.base import InputField, Node, node
from invoke_nb.nodes.primitives import IntegerCollectionOutput

if TYPE_CHECKING:
    from invoke_nb.nodes.context import Context

SEED_MAX = int(np.iinfo(np.uint32).max)
"""InvokeAI's largest seed (2**32 - 1)."""

_INT32_MAX = int(np.iinfo(np.int32).max)


@node(
    "range",
    title="Integer Range",
    category="batch",
    tags=["collection", "integer", "range"],
    version="1.0.0",
)
class RangeNode(Node):
    """The integers from start (included) to stop (excluded) by step, like Python's range."""

    start: int = InputField(default=0, description="The start of the range")
    stop: int = InputField(default=10, description="The stop of the range")
    step: int = InputField(default=1, description="The step of the range")

    @field_validator("stop")
    @classmethod
    def _stop_after_start(cls, v: int, info: ValidationInfo) -> int:
        if "start" in info.data and v <= info.data["start"]:
            raise ValueError("stop must be greater than start")
        return v

    @field_validator("step")
    @classmethod
    def _step_nonzero(cls, v: int) -> int:
        if v == 0:
            raise ValueError("step must not be zero")
        return v

    def invoke(self, ctx: Context) -> IntegerCollectionOutput:
        if self.step == 0:
            raise ValueError(f"node {self.id!r} (range): step must not be zero")
        return IntegerCollectionOutput(collection=list(range(self.start, self.stop, self.step)))


@node(
    "range_of_size",
    title="Integer Range of Size",
    category="batch",
    tags=["collection", "integer", "size", "range"],
    version="1.0.0",
)
class RangeOfSizeNode(Node):
    """``size`` integers: start, start + step, ... (step may be negative, not zero)."""

    start: int = InputField(default=0, description="The start of the range")
    size: int = InputField(default=1, gt=0, description="The number of values")
    step: int = InputField(default=1, description="The step of the range")

    @field_validator("step")
    @classmethod
    def _step_nonzero(cls, v: int) -> int:
        if v == 0:
            raise ValueError("step must not be zero")
        return v

    def invoke(self, ctx: Context) -> IntegerCollectionOutput:
        if self.step == 0 or self.size <= 0:
            raise ValueError(
                f"node {self.id!r} (range_of_size): need size > 0 and step != 0 "
                f"(size={self.size}, step={self.step})"
            )
        return IntegerCollectionOutput(
            collection=[self.start + i * self.step for i in range(self.size)]
        )


@node(
    "random_range",
    title="Random Range",
    category="batch",
    tags=["range", "integer", "random", "collection"],
    version="1.0.1",
    deterministic=False,
)
class RandomRangeNode(Node):
    """``size`` random integers in [low, high), reproducible for a given seed.

    Like InvokeAI the node is never served from the output cache, although equal inputs
    give equal numbers.
    """

    low: int = InputField(default=0, description="The inclusive low value")
    high: int = InputField(default=_INT32_MAX, description="The exclusive high value")
    size: int = InputField(default=1, ge=0, description="The number of values to generate")
    seed: int = InputField(
        default=0, ge=0, le=SEED_MAX, description="The seed for the RNG (omit for random)"
    )

    def invoke(self, ctx: Context) -> IntegerCollectionOutput:
        if self.low >= self.high:
            raise ValueError(
                f"node {self.id!r} (random_range): low ({self.low}) must be less than "
                f"high ({self.high})"
            )
        rng = np.random.default_rng(self.seed)
        values = rng.integers(low=self.low, high=self.high, size=self.size)
        return IntegerCollectionOutput(collection=[int(v) for v in values])
