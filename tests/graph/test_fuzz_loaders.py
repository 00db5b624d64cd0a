"""Property tests: random and mutated graph JSON and workflow files fed to the loaders and
the validator. The only exceptions allowed out are GraphError subclasses with a message."""

from __future__ import annotations

import copy
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import invoke_nb as inb
from invoke_nb.graph.workflow import read_workflow
from shared_paths import INVOKEAI_WORKFLOWS

FIXTURES = INVOKEAI_WORKFLOWS
SEEDS = [json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*.json"))]

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True),
    st.text(max_size=12),
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
type_ids = st.sampled_from(
    ["integer", "add", "iterate", "collect", "string_join", "float_math", "image", "nope", 3, None]
)
field_names = st.sampled_from(
    ["value", "a", "b", "item", "collection", "string_left", "image", "zz", 1, None]
)


def _check(call) -> None:
    try:
        call()
    except inb.GraphError as e:
        assert str(e), f"{type(e).__name__} without a message"


@st.composite
def graph_dicts(draw) -> dict:
    ids = draw(st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=4, unique=True))
    nodes = {}
    for nid in ids:
        node = {"id": nid, "type": draw(type_ids)}
        for _ in range(draw(st.integers(0, 2))):
            node[
                draw(
                    st.sampled_from(
                        ["value", "a", "b", "collection", "is_intermediate", "use_cache", "q"]
                    )
                )
            ] = draw(json_values)
        nodes[nid] = node
    edges = [
        {
            "source": {"node_id": draw(st.sampled_from([*ids, "x"])), "field": draw(field_names)},
            "destination": {
                "node_id": draw(st.sampled_from([*ids, "x"])),
                "field": draw(field_names),
            },
        }
        for _ in range(draw(st.integers(0, 4)))
    ]
    return {"nodes": nodes, "edges": edges}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph_dicts())
def test_random_graph_json(data: dict) -> None:
    def go() -> None:
        g = inb.Graph.from_dict(data)
        g.validate()

    _check(go)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_random_json_values_as_graph_or_workflow(data) -> None:
    _check(lambda: inb.Graph.from_dict(data))
    _check(
        lambda: (
            read_workflow(data) if isinstance(data, dict) else inb.load_workflow(json.dumps(data))
        )
    )


@st.composite
def mutated_workflows(draw) -> dict:
    wf = copy.deepcopy(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        target = draw(st.sampled_from(["node", "edge", "input", "meta", "top"]))
        nodes = wf.get("nodes") if isinstance(wf.get("nodes"), list) else []
        nodes = [n for n in nodes if isinstance(n, dict)]
        edges = wf.get("edges") if isinstance(wf.get("edges"), list) else []
        edges = [e for e in edges if isinstance(e, dict)]
        node_ids = [n["id"] for n in nodes if isinstance(n.get("id"), str)] or ["x"]
        if target == "node" and nodes:
            n = draw(st.sampled_from(nodes))
            key = draw(st.sampled_from(["type", "data", "id", "position"]))
            n[key] = draw(json_values)
        elif target == "edge" and edges:
            e = draw(st.sampled_from(edges))
            key = draw(
                st.sampled_from(["source", "target", "sourceHandle", "targetHandle", "type"])
            )
            e[key] = draw(st.one_of(json_values, st.sampled_from(node_ids)))
        elif target == "input" and nodes:
            n = draw(st.sampled_from(nodes))
            if (
                isinstance(n.get("data"), dict)
                and isinstance(n["data"].get("inputs"), dict)
                and n["data"]["inputs"]
            ):
                name = draw(st.sampled_from(sorted(n["data"]["inputs"])))
                n["data"]["inputs"][name] = {"name": name, "value": draw(json_values)}
        elif target == "meta":
            wf["meta"] = draw(st.one_of(json_values, st.just({"version": "3.0.0"})))
        else:
            key = draw(st.sampled_from(["nodes", "edges", "exposedFields", "name"]))
            wf[key] = draw(json_values)
    return wf


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_workflows())
def test_mutated_invokeai_workflows(wf: dict) -> None:
    def go() -> None:
        g = inb.load_workflow(wf)
        g.validate()

    _check(go)


def test_seeds_loaded() -> None:
    assert len(SEEDS) == 14  # InvokeAI 6.11's default workflows
