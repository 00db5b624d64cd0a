"""Fixtures shared with the front-end unit tests, generated from the Python code.

The TypeScript port of ``compatible()`` and of the editor's connection check must decide
exactly as Python does. These builders compute the expected answers from the Python
functions; ``test_frontend.py`` writes them to ``extension/tests/fixtures/`` (committed, so
vitest runs without Python) and fails when the committed copy is stale.
"""

from __future__ import annotations

import enum
import itertools
import json
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

import invoke_nb as inb
from invoke_nb.graph.errors import GraphError
from invoke_nb.nodes import registry_schema
from invoke_nb.nodes.types import (
    ConditioningField,
    ImageField,
    LatentsField,
    ModelIdentifierField,
    compatible,
    describe,
    type_descriptor,
)

FIXTURES = Path(__file__).resolve().parents[2] / "extension" / "tests" / "fixtures"


class Colour(enum.StrEnum):
    RED = "red"
    GREEN = "green"


class _Base(ImageField):
    pass


class SpecialImage(_Base):
    pass


ANNOTATIONS: list[Any] = [
    Any,
    int,
    float,
    str,
    bool,
    dict,
    int | None,
    float | None,
    str | None,
    int | float,
    int | str,
    float | str,
    list[int],
    list[float],
    list[str],
    list[int] | None,
    list[ImageField],
    list[Any],
    list[list[int]],
    Literal["a", "b"],
    Literal["a", "b", "c"],
    Literal["b"],
    Literal[1, 2],
    Literal[1, 2, 3],
    Literal[True],
    Literal["a", "b", "c", "d", "e", "f", "g"],
    Colour,
    ImageField,
    ImageField | None,
    SpecialImage,
    LatentsField,
    ConditioningField,
    ConditioningField | list[ConditioningField],
    list[ConditioningField],
    ModelIdentifierField,
    ImageField | LatentsField,
    type(None),
]


def descriptors() -> list[dict[str, Any]]:
    """Distinct descriptors from the hand-picked annotations and every registered field."""
    seen: dict[str, dict[str, Any]] = {}
    for ann in ANNOTATIONS:
        d = type_descriptor(ann)
        seen.setdefault(json.dumps(d, sort_keys=True), d)
    for schema in registry_schema().values():
        for f in [*schema["inputs"].values(), *schema["outputs"].values()]:
            seen.setdefault(json.dumps(f["type"], sort_keys=True), f["type"])
    return [seen[k] for k in sorted(seen)]


def compat_cases() -> dict[str, Any]:
    ds = descriptors()
    return {
        "descriptors": ds,
        "describe": [describe(d) for d in ds],
        # matrix[i][j]: may an output of descriptors[i] feed an input of descriptors[j]
        "matrix": [[int(compatible(a, b)) for b in ds] for a in ds],
    }


SCHEMA_TYPES = [
    "integer",
    "float",
    "string",
    "add",
    "mul",
    "range",
    "iterate",
    "collect",
    "float_math",
    "string_join",
    "boolean",
]


def _small_graph() -> inb.Graph:
    g = inb.Graph(id="fixture")
    g.add("integer", id="n1", value=2)
    g.add("add", id="a1", b=3)
    g.add("add", id="a2")
    g.add("string", id="s1", value="x")
    g.add("range", id="r1", start=0, stop=3, step=1)
    g.add("iterate", id="it")
    g.add("collect", id="co")
    g.add("float", id="f1", value=1.5)
    g.connect("n1", "value", "a1", "a")
    g.connect("a1", "value", "a2", "a")
    g.connect("r1", "collection", "it", "collection")
    g.connect("it", "item", "co", "item")
    return g


def connection_cases() -> dict[str, Any]:
    """Every (output, input) pair of a small graph, with Python's verdict on connecting it."""
    from invoke_nb.nodes import get_node_class

    g = _small_graph()
    types = sorted({spec.type for spec in g.nodes.values()})
    schemas = {t: registry_schema()[t] for t in types}
    cases = []
    for (src, sspec), (dst, dspec) in itertools.product(g.nodes.items(), repeat=2):
        for out in get_node_class(sspec.type).output_class.model_fields:
            for inp in get_node_class(dspec.type).input_fields():
                trial = g.copy()
                try:
                    trial.connect(src, out, dst, inp)
                    ok, error = True, ""
                except GraphError as e:
                    ok, error = False, type(e).__name__
                cases.append({"edge": [src, out, dst, inp], "ok": ok, "error": error})
    return {"graph": g.to_dict(), "schemas": schemas, "cases": cases}


def arrow_records() -> tuple[list[dict[str, Any]], pa.Schema]:
    schema = pa.schema(
        [
            ("name", pa.string()),
            ("width", pa.int32()),
            ("seed", pa.int64()),
            ("cfg", pa.float64()),
            ("starred", pa.bool_()),
            ("board", pa.string()),
            ("tags", pa.list_(pa.string())),
        ]
    )
    rows = [
        {
            "name": "a.png",
            "width": 512,
            "seed": 1,
            "cfg": 7.5,
            "starred": True,
            "board": None,
            "tags": ["x"],
        },
        {
            "name": "b.png",
            "width": 64,
            "seed": 2**40,
            "cfg": 1.0,
            "starred": False,
            "board": "b1",
            "tags": [],
        },
        {
            "name": "é.png",
            "width": 8,
            "seed": -3,
            "cfg": 0.25,
            "starred": False,
            "board": "b2",
            "tags": ["p", "q"],
        },
    ]
    return rows, schema
