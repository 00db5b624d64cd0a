"""Batch and generator nodes: a graph that says "run me once per value".

They never run. At enqueue time the queue takes them out of the graph and turns each one
into batch data for the fields its outgoing edges feed (``queue.batch.split_batch_nodes``),
exactly as InvokeAI's editor does before it enqueues: batch nodes of the same
``batch_group_id`` are zipped, ungrouped ones multiply. A generator node feeding a batch
node's list describes the values instead of listing them (an arithmetic sequence, a parsed
string, random numbers, dynamic prompts, a board's images); :func:`resolve_generator`
computes them with InvokeAI's rules, including its seeded random numbers.
"""

from __future__ import annotations

import contextlib
import json
import math
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from invoke_nb.nodes.base import Input, InputField, Node, Output, OutputField, node, output
from invoke_nb.nodes.primitives import FloatOutput, ImageOutput, IntegerOutput, StringOutput
from invoke_nb.nodes.types import ImageField

if TYPE_CHECKING:
    from collections.abc import Callable

    from invoke_nb.nodes.context import Context

__all__ = [
    "BATCH_TYPES",
    "GENERATOR_TYPES",
    "BatchNodeError",
    "FloatGeneratorField",
    "ImageGeneratorField",
    "IntegerGeneratorField",
    "StringGeneratorField",
    "resolve_generator",
]

BatchGroup = Literal["None", "Group 1", "Group 2", "Group 3", "Group 4", "Group 5"]

# batch node type -> (its list input, the output its edges leave from)
BATCH_TYPES: dict[str, tuple[str, str]] = {
    "image_batch": ("images", "image"),
    "string_batch": ("strings", "value"),
    "integer_batch": ("integers", "value"),
    "float_batch": ("floats", "value"),
}
# generator node type -> its output list
GENERATOR_TYPES: dict[str, str] = {
    "image_generator": "images",
    "string_generator": "strings",
    "integer_generator": "integers",
    "float_generator": "floats",
}


class BatchNodeError(RuntimeError):
    """A batch or generator node was run directly, or describes values it cannot make."""


class _GeneratorField(BaseModel):
    """The editor's description of generated values (``type`` picks the rule)."""

    model_config = ConfigDict(extra="allow")

    type: str = ""


class ImageGeneratorField(_GeneratorField):
    """``image_generator_images_from_board``: ``board_id``, ``category`` images|assets."""


class StringGeneratorField(_GeneratorField):
    """``string_generator_parse_string`` or ``..._dynamic_prompts_{combinatorial,random}``."""


class IntegerGeneratorField(_GeneratorField):
    """``integer_generator_{arithmetic_sequence,linear_distribution,...}``."""


class FloatGeneratorField(_GeneratorField):
    """``float_generator_{arithmetic_sequence,linear_distribution,...}``."""


def _not_here(n: Node) -> None:
    raise BatchNodeError(
        f"node {n.id!r} ({n.type_id}) is expanded by the queue, not run: enqueue the graph "
        "(studio.enqueue / studio.run) so that each of its values gets a queue item"
    )


class _BatchNode(Node):
    batch_group_id: BatchGroup = InputField(
        default="None",
        description="Batch nodes with the same group are zipped (equal lengths required); "
        "ungrouped ones multiply",
        input=Input.DIRECT,
        title="Batch Group",
    )


_TAGS = ("primitives", "batch", "special")


@node("image_batch", title="Image Batch", category="primitives", tags=[*_TAGS, "image"])
class ImageBatchNode(_BatchNode):
    """Runs the workflow once per image."""

    images: list[ImageField] = InputField(min_length=1, description="The images to batch over")

    def invoke(self, ctx: Context) -> ImageOutput:
        _not_here(self)
        raise AssertionError


@node("string_batch", title="String Batch", category="primitives", tags=[*_TAGS, "string"])
class StringBatchNode(_BatchNode):
    """Runs the workflow once per string."""

    strings: list[str] = InputField(min_length=1, description="The strings to batch over")

    def invoke(self, ctx: Context) -> StringOutput:
        _not_here(self)
        raise AssertionError


@node("integer_batch", title="Integer Batch", category="primitives", tags=[*_TAGS, "integer"])
class IntegerBatchNode(_BatchNode):
    """Runs the workflow once per integer."""

    integers: list[int] = InputField(min_length=1, description="The integers to batch over")

    def invoke(self, ctx: Context) -> IntegerOutput:
        _not_here(self)
        raise AssertionError


@node("float_batch", title="Float Batch", category="primitives", tags=[*_TAGS, "float"])
class FloatBatchNode(_BatchNode):
    """Runs the workflow once per float."""

    floats: list[float] = InputField(min_length=1, description="The floats to batch over")

    def invoke(self, ctx: Context) -> FloatOutput:
        _not_here(self)
        raise AssertionError


@output("image_generator_output")
class ImageGeneratorOutput(Output):
    """Generated images, for an image batch."""

    images: list[ImageField] = OutputField(description="The generated images")


@output("string_generator_output")
class StringGeneratorOutput(Output):
    """Generated strings, for a string batch."""

    strings: list[str] = OutputField(description="The generated strings")


@output("integer_generator_output")
class IntegerGeneratorOutput(Output):
    """Generated integers, for an integer batch."""

    integers: list[int] = OutputField(description="The generated integers")


@output("float_generator_output")
class FloatGeneratorOutput(Output):
    """Generated floats, for a float batch."""

    floats: list[float] = OutputField(description="The generated floats")


@node("image_generator", title="Image Generator", category="primitives", tags=[*_TAGS, "image"])
class ImageGeneratorNode(Node):
    """Images for an image batch: every image of a board."""

    generator: ImageGeneratorField = InputField(
        description="The image generator.", input=Input.DIRECT, title="Generator Type"
    )

    def invoke(self, ctx: Context) -> ImageGeneratorOutput:
        _not_here(self)
        raise AssertionError


@node("string_generator", title="String Generator", category="primitives", tags=[*_TAGS, "string"])
class StringGeneratorNode(Node):
    """Strings for a string batch: a split string or dynamic prompts."""

    generator: StringGeneratorField = InputField(
        description="The string generator.", input=Input.DIRECT, title="Generator Type"
    )

    def invoke(self, ctx: Context) -> StringGeneratorOutput:
        _not_here(self)
        raise AssertionError


@node(
    "integer_generator",
    title="Integer Generator",
    category="primitives",
    tags=[*_TAGS, "integer"],
)
class IntegerGeneratorNode(Node):
    """Integers for an integer batch: a sequence, a spread, random numbers or a list."""

    generator: IntegerGeneratorField = InputField(
        description="The integer generator.", input=Input.DIRECT, title="Generator Type"
    )

    def invoke(self, ctx: Context) -> IntegerGeneratorOutput:
        _not_here(self)
        raise AssertionError


@node("float_generator", title="Float Generator", category="primitives", tags=[*_TAGS, "float"])
class FloatGeneratorNode(Node):
    """Floats for a float batch: a sequence, a spread, random numbers or a list."""

    generator: FloatGeneratorField = InputField(
        description="The float generator.", input=Input.DIRECT, title="Generator Type"
    )

    def invoke(self, ctx: Context) -> FloatGeneratorOutput:
        _not_here(self)
        raise AssertionError


# ---------------------------------------------------------------------------------------
# Generated values, by the rules of InvokeAI's workflow editor


def _mt_uniform(seed: int | None) -> Callable[[], float]:
    """Uniform [0, 1) numbers from a Mersenne Twister seeded with one integer, 32 bits each
    (the editor's generator): numpy's ``RandomState(seed)`` seeds MT19937 the same way."""
    if seed is None:
        import random

        return random.random
    import numpy as np

    rs = np.random.RandomState(int(seed) & 0xFFFFFFFF)
    return lambda: int(rs.randint(0, 2**32, dtype=np.uint64)) / 4294967296.0


def _split(values: dict[str, Any], default_input: str) -> list[str]:
    text = str(values.get("input", default_input))
    sep = str(values.get("splitOn", ","))
    if sep == "":
        return [text]
    with contextlib.suppress(ValueError):  # JSON escapes are allowed, e.g. "\\n"
        sep = json.loads(f'"{sep}"')
    return text.split(sep)


def _parse_number(s: str, kind: type) -> float | int | None:
    """JavaScript's parseInt/parseFloat on a trimmed piece: the longest numeric prefix."""
    import re

    s = s.strip()
    if kind is int:
        m = re.match(r"[+-]?\d+", s)
        return int(m.group()) if m else None
    m = re.match(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", s)
    if m:
        return float(m.group())
    return math.inf if s.startswith("Infinity") else None


def _numbers(values: dict[str, Any], kind: type) -> list[Any]:
    t = str(values.get("type", ""))
    rule = t.split("_generator_", 1)[-1]
    cast = int if kind is int else float
    if values.get("values") and kind is float:
        return [float(v) for v in values["values"]]
    if rule == "arithmetic_sequence":
        start, step = values.get("start", 0), values.get("step", 1 if kind is int else 0.1)
        count = int(values.get("count", 10))
        return [start] if step == 0 else [cast(start + i * step) for i in range(count)]
    if rule == "linear_distribution":
        start, end = values.get("start", 0), values.get("end", 10 if kind is int else 1)
        count = int(values.get("count", 10))
        if count == 1:
            return [start]
        if kind is int:  # Math.round: halves go up
            return [
                start + math.floor((end - start) * (i / (count - 1)) + 0.5) for i in range(count)
            ]
        return [start + (end - start) * (i / (count - 1)) for i in range(count)]
    if rule == "random_distribution_uniform":
        lo, hi = values.get("min", 0), values.get("max", 10 if kind is int else 1)
        rng = _mt_uniform(values.get("seed"))
        count = int(values.get("count", 10))
        if kind is int:
            return [math.floor(rng() * (hi - lo + 1)) + lo for _ in range(count)]
        return [rng() * (hi - lo) + lo for _ in range(count)]
    if rule == "parse_string":
        default = "1,2,3,4,5,6,7,8,9,10" if kind is int else "0, 0.1, 0.2, 0.3"
        parsed = [_parse_number(s, kind) for s in _split(values, default) if s.strip()]
        return [p for p in parsed if p is not None]
    raise BatchNodeError(f"unknown {kind.__name__} generator type {t!r}")


def _strings(values: dict[str, Any]) -> list[str]:
    t = str(values.get("type", ""))
    if t == "string_generator_parse_string":
        return [s for s in _split(values, "foo,bar,baz,qux") if s]
    if t in (
        "string_generator_dynamic_prompts_combinatorial",
        "string_generator_dynamic_prompts_random",
    ):
        from invoke_nb.nodes.utilities import expand_prompts

        combinatorial = t.endswith("combinatorial")
        count = int(values.get("maxPrompts" if combinatorial else "count", 10))
        seed = values.get("seed")
        return expand_prompts(
            str(values.get("input", "")), count, combinatorial=combinatorial, seed=seed
        )
    raise BatchNodeError(f"unknown string generator type {t!r}")


def resolve_generator(
    type_id: str,
    generator: BaseModel | dict[str, Any],
    board_images: Callable[[str, str], list[str]] | None = None,
) -> list[Any]:
    """The values a generator node describes.

    ``board_images(board_id, category)`` lists a board's image names (``category`` is
    ``"images"`` or ``"assets"``); the Studio passes its catalog's.
    """
    values = generator.model_dump() if isinstance(generator, BaseModel) else dict(generator)
    if type_id == "integer_generator":
        return _numbers(values, int)
    if type_id == "float_generator":
        return _numbers(values, float)
    if type_id == "string_generator":
        return _strings(values)
    if type_id == "image_generator":
        board = values.get("board_id")
        if not board:
            return []
        if board_images is None:
            raise BatchNodeError("an image generator needs a studio: it lists a board's images")
        names = board_images(str(board), str(values.get("category", "images")))
        return [ImageField(image_name=n) for n in names]
    raise BatchNodeError(f"{type_id!r} is not a generator node type")
