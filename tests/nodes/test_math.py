"""Math nodes: InvokeAI's arithmetic, rounding and errors."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from invoke_nb.nodes.base import get_node_class


@pytest.mark.parametrize(
    ("type_id", "a", "b", "expected"),
    [
        ("add", 2, 3, 5),
        ("sub", 2, 3, -1),
        ("mul", -4, 3, -12),
        ("div", 7, 2, 3),
        ("div", -7, 2, -3),  # truncates toward zero, like int(a / b)
        ("div", 7, -2, -3),
        ("div", 10**30 + 1, 1, 10**30 + 1),  # exact for big integers
    ],
)
def test_integer_arithmetic(run, type_id, a, b, expected):
    out = run(type_id, a=a, b=b)
    assert out.value == expected
    assert type(out).output_type == "integer_output"


def test_div_by_zero_is_a_clear_error(run):
    with pytest.raises(ValueError, match=r"div.*divide by zero"):
        run("div", a=1, b=0)


def test_float_literal_for_int_input_is_rejected(run):
    with pytest.raises(ValidationError) as exc:
        run.build("add", a=1.5)
    assert exc.value.errors()[0]["loc"] == ("a",)


def test_rand_int_is_in_range_and_not_cached():
    cls = get_node_class("rand_int")
    assert cls.deterministic is False
    assert get_node_class("rand_float").deterministic is False


def test_rand_int_values(run):
    values = {run("rand_int", low=5, high=9).value for _ in range(200)}
    assert values == {5, 6, 7, 8}
    assert 0 <= run("rand_int").value < 2**31 - 1


def test_rand_int_empty_range_is_a_clear_error(run):
    with pytest.raises(ValueError, match=r"low \(3\) must be less than high \(3\)"):
        run("rand_int", low=3, high=3)


def test_rand_float_range_and_decimals(run):
    values = [run("rand_float", low=1.0, high=2.0, decimals=1).value for _ in range(100)]
    assert all(1.0 <= v <= 2.0 for v in values)
    assert all(round(v, 1) == v for v in values)
    assert len(set(values)) > 1


@pytest.mark.parametrize(
    ("value", "multiple", "method", "expected"),
    [
        (10.4, 1, "Nearest", 10),
        (10.5, 1, "Nearest", 10),  # half to even, like Python's round
        (11.5, 1, "Nearest", 12),
        (77.0, 8, "Nearest", 80),
        (77.0, 8, "Floor", 72),
        (73.0, 8, "Ceiling", 80),
        (-77.0, 8, "Truncate", -72),
        (-77.0, 8, "Floor", -80),
        (-10.7, 1, "Ceiling", -10),
    ],
)
def test_float_to_int(run, value, multiple, method, expected):
    out = run("float_to_int", value=value, multiple=multiple, method=method)
    assert out.value == expected and isinstance(out.value, int)


def test_float_to_int_field_errors(run):
    with pytest.raises(ValidationError) as exc:
        run.build("float_to_int", multiple=0)
    assert exc.value.errors()[0]["loc"] == ("multiple",)
    with pytest.raises(ValidationError) as exc:
        run.build("float_to_int", method="Round")
    assert exc.value.errors()[0]["loc"] == ("method",)
    with pytest.raises(ValueError, match="not finite"):
        run("float_to_int", value=math.inf)


@pytest.mark.parametrize(
    ("value", "decimals", "expected"), [(3.14159, 2, 3.14), (2.5, 0, 2.0), (1234.5, -2, 1200.0)]
)
def test_round_float(run, value, decimals, expected):
    assert run("round_float", value=value, decimals=decimals).value == expected


@pytest.mark.parametrize(
    ("op", "a", "b", "expected"),
    [
        ("ADD", 3, 4, 7),
        ("SUB", 3, 4, -1),
        ("MUL", 3, 4, 12),
        ("DIV", -9, 4, -2),
        ("EXP", 2, 10, 1024),
        ("MOD", -7, 3, 2),  # Python's modulus: sign of the divisor
        ("ABS", -5, 99, 5),
        ("MIN", 3, -4, -4),
        ("MAX", 3, -4, 3),
    ],
)
def test_integer_math(run, op, a, b, expected):
    out = run("integer_math", operation=op, a=a, b=b)
    assert out.value == expected


def test_integer_math_defaults(run):
    assert run("integer_math").value == 2  # ADD 1 + 1


@pytest.mark.parametrize(
    ("op", "b", "message"),
    [("DIV", 0, "divide by zero"), ("MOD", 0, "divide by zero"), ("EXP", -1, "not an integer")],
)
def test_integer_math_literal_errors_name_field_b(run, op, b, message):
    with pytest.raises(ValidationError) as exc:
        run.build("integer_math", operation=op, a=5, b=b)
    err = exc.value.errors()[0]
    assert err["loc"] == ("b",) and message in err["msg"]


def test_integer_math_runtime_error_when_values_are_set_later(run):
    # connected values arrive after the node is built: the check runs again in invoke
    n = run.build("integer_math", operation="DIV", a=5)
    n.b = 0
    with pytest.raises(ValueError, match=r"integer_math DIV, a=5, b=0\): Cannot divide by zero"):
        run.invoke(n)


def test_integer_math_rejects_unknown_operation(run):
    with pytest.raises(ValidationError) as exc:
        run.build("integer_math", operation="POW")
    assert exc.value.errors()[0]["loc"] == ("operation",)


@pytest.mark.parametrize(
    ("op", "a", "b", "expected"),
    [
        ("ADD", 0.5, 0.25, 0.75),
        ("SUB", 0.5, 0.25, 0.25),
        ("MUL", 1.5, 4, 6.0),
        ("DIV", 1, 4, 0.25),
        ("EXP", 9, 0.5, 3.0),
        ("EXP", -2, 3, -8.0),
        ("ABS", -1.5, 0, 1.5),
        ("SQRT", 16, 0, 4.0),
        ("MIN", 1.5, -2, -2.0),
        ("MAX", 1.5, -2, 1.5),
    ],
)
def test_float_math(run, op, a, b, expected):
    out = run("float_math", operation=op, a=a, b=b)
    assert out.value == pytest.approx(expected)
    assert type(out).output_type == "float_output"


@pytest.mark.parametrize(
    ("op", "a", "b", "message"),
    [
        ("DIV", 1, 0, "Cannot divide by zero"),
        ("EXP", 0, -1, "Cannot raise zero to a negative power"),
        ("EXP", -8, 0.5, "complex number"),
    ],
)
def test_float_math_literal_errors(run, op, a, b, message):
    with pytest.raises(ValidationError) as exc:
        run.build("float_math", operation=op, a=a, b=b)
    err = exc.value.errors()[0]
    assert err["loc"] == ("b",) and message in err["msg"]


def test_float_math_runtime_errors(run):
    n = run.build("float_math", operation="SQRT", a=-4)
    with pytest.raises(ValueError, match="square root of a negative"):
        run.invoke(n)
    with pytest.raises(ValueError, match="overflows"):
        run("float_math", operation="EXP", a=10.0, b=400)


def test_float_range(run):
    out = run("float_range", start=0, stop=1, steps=5)
    assert out.collection == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert type(out).output_type == "float_collection_output"
    assert len(run("float_range").collection) == 30
    with pytest.raises(ValueError, match="steps must be >= 0"):
        run("float_range", steps=-1)
