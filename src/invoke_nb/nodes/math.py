"""Math nodes with InvokeAI's ids, fields and semantics.

Integer division truncates toward zero (``int(a / b)``), rounding is Python's (half to
even), and results that are not numbers (division by zero, a complex power, the root of a
negative number) raise a ``ValueError`` naming the node and the inputs instead of
producing ``inf`` or ``nan`` that would surface far downstream. Literal values are checked
when the node is built (pydantic names the field); connected values when it runs.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import ValidationInfo, field_validator

from invoke_nb.nodes.base import InputField, Node, node
from invoke_nb.nodes.primitives import FloatCollectionOutput, FloatOutput, IntegerOutput

if TYPE_CHECKING:
    from invoke_nb.nodes.context import Context

__all__ = ["FLOAT_OPERATIONS", "INTEGER_OPERATIONS", "float_math_error", "integer_math_error"]

_INT32_MAX = int(np.iinfo(np.int32).max)


def _div_by_zero(n: Node, a: float) -> ValueError:
    return ValueError(f"node {n.id!r} ({n.type_id}): cannot divide by zero (a={a}, b=0)")


@node("add", title="Add Integers", category="math", tags=["math", "add"], version="1.0.1")
class AddNode(Node):
    """Adds two integers."""

    a: int = InputField(default=0, description="The first number")
    b: int = InputField(default=0, description="The second number")

    def invoke(self, ctx: Context) -> IntegerOutput:
        return IntegerOutput(value=self.a + self.b)


@node("sub", title="Subtract Integers", category="math", tags=["math", "subtract"], version="1.0.1")
class SubtractNode(Node):
    """Subtracts b from a."""

    a: int = InputField(default=0, description="The first number")
    b: int = InputField(default=0, description="The second number")

    def invoke(self, ctx: Context) -> IntegerOutput:
        return IntegerOutput(value=self.a - self.b)


@node("mul", title="Multiply Integers", category="math", tags=["math", "multiply"], version="1.0.1")
class MultiplyNode(Node):
    """Multiplies two integers."""

    a: int = InputField(default=0, description="The first number")
    b: int = InputField(default=0, description="The second number")

    def invoke(self, ctx: Context) -> IntegerOutput:
        return IntegerOutput(value=self.a * self.b)


@node("div", title="Divide Integers", category="math", tags=["math", "divide"], version="1.0.1")
class DivideNode(Node):
    """Divides a by b, truncating toward zero like InvokeAI (``int(a / b)``)."""

    a: int = InputField(default=0, description="The first number")
    b: int = InputField(default=0, description="The second number")

    def invoke(self, ctx: Context) -> IntegerOutput:
        if self.b == 0:
            raise _div_by_zero(self, self.a)
        return IntegerOutput(value=_trunc_div(self.a, self.b))


def _trunc_div(a: int, b: int) -> int:
    """``int(a / b)`` without the float rounding that breaks it for big integers."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


@node(
    "rand_int",
    title="Random Integer",
    category="math",
    tags=["math", "random"],
    version="1.0.1",
    deterministic=False,
)
class RandomIntNode(Node):
    """A random integer in [low, high); never served from the cache."""

    low: int = InputField(default=0, description="The inclusive low value")
    high: int = InputField(default=_INT32_MAX, description="The exclusive high value")

    def invoke(self, ctx: Context) -> IntegerOutput:
        if self.low >= self.high:
            raise ValueError(
                f"node {self.id!r} (rand_int): low ({self.low}) must be less than high ({self.high})"
            )
        return IntegerOutput(value=int(np.random.default_rng().integers(self.low, self.high)))


@node(
    "rand_float",
    title="Random Float",
    category="math",
    tags=["math", "float", "random"],
    version="1.0.1",
    deterministic=False,
)
class RandomFloatNode(Node):
    """A random float in [low, high) rounded to ``decimals`` places; never cached."""

    low: float = InputField(default=0.0, description="The inclusive low value")
    high: float = InputField(default=1.0, description="The exclusive high value")
    decimals: int = InputField(default=2, description="The number of decimal places to round to")

    def invoke(self, ctx: Context) -> FloatOutput:
        if self.low > self.high:
            raise ValueError(
                f"node {self.id!r} (rand_float): low ({self.low}) is greater than high ({self.high})"
            )
        value = float(np.random.default_rng().uniform(self.low, self.high))
        return FloatOutput(value=round(value, self.decimals))


@node(
    "float_to_int",
    title="Float To Integer",
    category="math",
    tags=["math", "round", "integer", "float", "convert"],
    version="1.0.1",
)
class FloatToIntegerNode(Node):
    """Rounds a float to a multiple of an integer (Nearest rounds half to even)."""

    value: float = InputField(default=0, description="The value to round")
    multiple: int = InputField(
        default=1, ge=1, title="Multiple of", description="The multiple to round to"
    )
    method: Literal["Nearest", "Floor", "Ceiling", "Truncate"] = InputField(
        default="Nearest", description="The method to use for rounding"
    )

    def invoke(self, ctx: Context) -> IntegerOutput:
        if not math.isfinite(self.value):
            raise ValueError(f"node {self.id!r} (float_to_int): value {self.value} is not finite")
        q = self.value / self.multiple
        rounded = {
            "Nearest": round,
            "Floor": math.floor,
            "Ceiling": math.ceil,
            "Truncate": math.trunc,
        }[self.method](q)
        return IntegerOutput(value=int(rounded) * self.multiple)


@node("round_float", title="Round Float", category="math", tags=["math", "round"], version="1.0.1")
class RoundNode(Node):
    """Rounds a float to a number of decimal places (negative rounds to tens, hundreds...)."""

    value: float = InputField(default=0, description="The float value")
    decimals: int = InputField(default=0, description="The number of decimal places")

    def invoke(self, ctx: Context) -> FloatOutput:
        return FloatOutput(value=round(self.value, self.decimals))


INTEGER_OPERATIONS = Literal["ADD", "SUB", "MUL", "DIV", "EXP", "MOD", "ABS", "MIN", "MAX"]


def integer_math_error(operation: str, a: int, b: int) -> str | None:
    """Why ``operation`` on ``a`` and ``b`` has no integer result, or ``None`` when it has."""
    if operation in ("DIV", "MOD") and b == 0:
        return "Cannot divide by zero"
    if operation == "EXP" and b < 0:
        return "Result of exponentiation is not an integer"
    return None


@node(
    "integer_math",
    title="Integer Math",
    category="math",
    tags=["math", "integer", "add", "subtract", "multiply", "divide", "modulus", "power"],
    version="1.0.1",
)
class IntegerMathNode(Node):
    """Integer arithmetic: ADD, SUB, MUL, DIV (truncating), EXP, MOD, ABS (of a), MIN, MAX."""

    operation: INTEGER_OPERATIONS = InputField(
        default="ADD", description="The operation to perform"
    )
    a: int = InputField(default=1, description="The first number")
    b: int = InputField(default=1, description="The second number")

    @field_validator("b")
    @classmethod
    def _representable(cls, v: int, info: ValidationInfo) -> int:
        problem = integer_math_error(info.data.get("operation", "ADD"), info.data.get("a", 1), v)
        if problem:
            raise ValueError(problem)
        return v

    def invoke(self, ctx: Context) -> IntegerOutput:
        a, b = self.a, self.b
        problem = integer_math_error(self.operation, a, b)
        if problem:
            raise ValueError(
                f"node {self.id!r} (integer_math {self.operation}, a={a}, b={b}): {problem}"
            )
        result = {
            "ADD": lambda: a + b,
            "SUB": lambda: a - b,
            "MUL": lambda: a * b,
            "DIV": lambda: _trunc_div(a, b),
            "EXP": lambda: a**b,
            "MOD": lambda: a % b,
            "ABS": lambda: abs(a),
            "MIN": lambda: min(a, b),
            "MAX": lambda: max(a, b),
        }[self.operation]()
        return IntegerOutput(value=result)


FLOAT_OPERATIONS = Literal["ADD", "SUB", "MUL", "DIV", "EXP", "ABS", "SQRT", "MIN", "MAX"]


def float_math_error(operation: str, a: float, b: float) -> str | None:
    """Why ``operation`` on ``a`` and ``b`` has no real result, or ``None`` when it has."""
    if operation == "DIV" and b == 0:
        return "Cannot divide by zero"
    if operation == "EXP":
        if a == 0 and b < 0:
            return "Cannot raise zero to a negative power"
        if a < 0 and not float(b).is_integer():
            return "Root operation resulted in a complex number"
    if operation == "SQRT" and a < 0:
        return "Cannot take the square root of a negative number"
    return None


@node(
    "float_math",
    title="Float Math",
    category="math",
    tags=["math", "float", "add", "subtract", "multiply", "divide", "power", "root"],
    version="1.0.1",
)
class FloatMathNode(Node):
    """Float arithmetic: ADD, SUB, MUL, DIV, EXP, ABS (of a), SQRT (of a), MIN, MAX."""

    operation: FLOAT_OPERATIONS = InputField(default="ADD", description="The operation to perform")
    a: float = InputField(default=1, description="The first number")
    b: float = InputField(default=1, description="The second number")

    @field_validator("b")
    @classmethod
    def _representable(cls, v: float, info: ValidationInfo) -> float:
        problem = float_math_error(info.data.get("operation", "ADD"), info.data.get("a", 1.0), v)
        if problem:
            raise ValueError(problem)
        return v

    def invoke(self, ctx: Context) -> FloatOutput:
        a, b = self.a, self.b
        problem = float_math_error(self.operation, a, b)
        if problem:
            raise ValueError(
                f"node {self.id!r} (float_math {self.operation}, a={a}, b={b}): {problem}"
            )
        try:
            result = {
                "ADD": lambda: a + b,
                "SUB": lambda: a - b,
                "MUL": lambda: a * b,
                "DIV": lambda: a / b,
                "EXP": lambda: a**b,
                "ABS": lambda: abs(a),
                "SQRT": lambda: math.sqrt(a),
                "MIN": lambda: min(a, b),
                "MAX": lambda: max(a, b),
            }[self.operation]()
        except OverflowError as e:
            raise ValueError(
                f"node {self.id!r} (float_math {self.operation}, a={a}, b={b}): result overflows"
            ) from e
        return FloatOutput(value=float(result))


@node("float_range", title="Float Range", category="math", tags=["math", "range"], version="1.0.1")
class FloatLinearRangeNode(Node):
    """``steps`` evenly spaced floats from start to stop, both included."""

    start: float = InputField(default=5, description="The first value of the range")
    stop: float = InputField(default=10, description="The last value of the range")
    steps: int = InputField(
        default=30, description="number of values to interpolate over (including start and stop)"
    )

    def invoke(self, ctx: Context) -> FloatCollectionOutput:
        if self.steps < 0:
            raise ValueError(
                f"node {self.id!r} (float_range): steps must be >= 0, got {self.steps}"
            )
        values = np.linspace(self.start, self.stop, self.steps)
        return FloatCollectionOutput(collection=[float(v) for v in values])
