"""Collection nodes: range, range_of_size, random_range."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from invoke_nb.nodes.base import get_node_class


def test_range(run):
    out = run("range", start=2, stop=11, step=3)
    assert out.collection == [2, 5, 8]
    assert type(out).output_type == "integer_collection_output"
    assert run("range").collection == list(range(10))


@pytest.mark.parametrize(
    ("fields", "loc", "message"),
    [
        ({"start": 5, "stop": 5}, ("stop",), "stop must be greater than start"),
        ({"start": 5, "stop": 1}, ("stop",), "stop must be greater than start"),
        ({"step": 0}, ("step",), "step must not be zero"),
    ],
)
def test_range_field_errors(run, fields, loc, message):
    with pytest.raises(ValidationError) as exc:
        run.build("range", **fields)
    err = exc.value.errors()[0]
    assert err["loc"] == loc and message in err["msg"]


def test_range_of_size(run):
    assert run("range_of_size", start=10, size=4, step=-3).collection == [10, 7, 4, 1]
    assert run("range_of_size").collection == [0]


def test_range_of_size_field_errors(run):
    with pytest.raises(ValidationError) as exc:
        run.build("range_of_size", size=0)
    assert exc.value.errors()[0]["loc"] == ("size",)
    with pytest.raises(ValidationError) as exc:
        run.build("range_of_size", step=0)
    assert exc.value.errors()[0]["loc"] == ("step",)


def test_random_range_is_reproducible_per_seed(run):
    a = run("random_range", low=0, high=1000, size=20, seed=7).collection
    b = run("random_range", low=0, high=1000, size=20, seed=7).collection
    c = run("random_range", low=0, high=1000, size=20, seed=8).collection
    assert a == b and a != c
    assert len(a) == 20 and all(0 <= v < 1000 and isinstance(v, int) for v in a)
    assert get_node_class("random_range").deterministic is False  # as InvokeAI: never cached


def test_random_range_errors(run):
    with pytest.raises(ValidationError) as exc:
        run.build("random_range", seed=-1)
    assert exc.value.errors()[0]["loc"] == ("seed",)
    with pytest.raises(ValidationError) as exc:
        run.build("random_range", seed=2**32)
    assert exc.value.errors()[0]["loc"] == ("seed",)
    with pytest.raises(ValueError, match=r"random_range\): low \(5\) must be less than high \(5\)"):
        run("random_range", low=5, high=5)
