"""Graph building and every validation error, each naming the node and field."""

from __future__ import annotations

import pytest

import invoke_nb as inb
from invoke_nb.graph import errors as E


def test_public_face_example() -> None:
    g = inb.Graph()
    a = g.add("integer", value=2)
    s = g.add("add", b=3)
    g.connect(a, "value", s, "a")
    g.validate()
    r = inb.run(g)
    assert r.outputs[s].value == 5


def test_unknown_node_type() -> None:
    g = inb.Graph()
    with pytest.raises(E.UnknownNodeTypeError, match="'no_such_node'"):
        g.add("no_such_node")
    assert len(g) == 0


def test_duplicate_node_id() -> None:
    g = inb.Graph()
    g.add("integer", id="x")
    with pytest.raises(E.DuplicateNodeIdError, match="'x'"):
        g.add("integer", id="x")


def test_unknown_input_field_on_add_names_field_and_lists_known() -> None:
    g = inb.Graph()
    with pytest.raises(E.UnknownFieldError) as ei:
        g.add("add", c=1)
    assert ei.value.field == "c"
    assert "'c'" in str(ei.value) and "a, b" in str(ei.value)
    assert len(g) == 0  # nothing half-added


def test_bad_literal_value_names_field() -> None:
    g = inb.Graph()
    with pytest.raises(E.FieldValueError) as ei:
        g.add("integer", id="n", value="not a number")
    assert ei.value.node_id == "n" and ei.value.field == "value"
    assert "n" not in g


def test_constraint_violation_reports_limit() -> None:
    g = inb.Graph()
    with pytest.raises(E.FieldValueError, match="greater than"):
        g.add("range_of_size", size=0)


def test_missing_node_in_edge() -> None:
    g = inb.Graph()
    a = g.add("integer")
    with pytest.raises(E.NodeNotFoundError, match="'ghost'"):
        g.connect(a, "value", "ghost", "a")
    with pytest.raises(E.NodeNotFoundError, match="'ghost'"):
        g.connect("ghost", "value", a, "value")


def test_unknown_output_field() -> None:
    g = inb.Graph()
    a, s = g.add("integer"), g.add("add")
    with pytest.raises(E.UnknownFieldError) as ei:
        g.connect(a, "nope", s, "a")
    assert ei.value.side == "output" and ei.value.field == "nope"


def test_unknown_input_field_in_edge() -> None:
    g = inb.Graph()
    a, s = g.add("integer"), g.add("add")
    with pytest.raises(E.UnknownFieldError) as ei:
        g.connect(a, "value", s, "zz")
    assert ei.value.side == "input" and ei.value.node_id == s


def test_type_mismatch() -> None:
    g = inb.Graph()
    t, s = g.add("string", value="x"), g.add("add")
    with pytest.raises(E.TypeMismatchError) as ei:
        g.connect(t, "value", s, "a")
    assert ei.value.source == (t, "value") and ei.value.destination == (s, "a")
    assert "str" in str(ei.value) and "int" in str(ei.value)
    assert g.edges == []


def test_compatibility_rules() -> None:
    g = inb.Graph()
    i = g.add("integer", value=3)
    f = g.add("float_math", b=1.5)
    g.connect(i, "value", f, "a")  # int -> float
    j = g.add("string_join", string_right="!")
    g.connect(i, "value", j, "string_left")  # int -> str
    coll = g.add("integer_collection", collection=[1, 2])
    it = g.add("iterate")
    g.connect(coll, "collection", it, "collection")  # list -> iterate
    g.validate()
    r = inb.run(g)
    assert r.outputs[f].value == pytest.approx(4.5)
    assert r.outputs[j].value == "3!"


def test_cycle_rejected_on_connect() -> None:
    g = inb.Graph()
    a, b = g.add("add"), g.add("add")
    g.connect(a, "value", b, "a")
    with pytest.raises(E.CycleError) as ei:
        g.connect(b, "value", a, "a")
    assert set(ei.value.node_ids) == {a, b}
    assert len(g.edges) == 1
    with pytest.raises(E.CycleError):
        g.connect(a, "value", a, "b")


def test_cycle_detected_by_validate_for_json_graph() -> None:
    data = {
        "nodes": {"a": {"id": "a", "type": "add"}, "b": {"id": "b", "type": "add"}},
        "edges": [
            {
                "source": {"node_id": "a", "field": "value"},
                "destination": {"node_id": "b", "field": "a"},
            },
            {
                "source": {"node_id": "b", "field": "value"},
                "destination": {"node_id": "a", "field": "a"},
            },
        ],
    }
    with pytest.raises(E.CycleError):
        inb.Graph.from_dict(data)


def test_two_edges_into_one_input() -> None:
    g = inb.Graph()
    a, b, s = g.add("integer"), g.add("integer"), g.add("add")
    g.connect(a, "value", s, "a")
    with pytest.raises(E.DuplicateInputError) as ei:
        g.connect(b, "value", s, "a")
    assert ei.value.node_id == s and ei.value.field == "a"


def test_collect_takes_many_edges() -> None:
    g = inb.Graph()
    a, b = g.add("integer", value=1), g.add("integer", value=2)
    c = g.add("collect")
    g.connect(a, "value", c, "item")
    g.connect(b, "value", c, "item")
    assert inb.run(g).outputs[c].collection == [1, 2]


def test_required_input_missing() -> None:
    g = inb.Graph()
    n = g.add("image")  # `image` needs an image
    with pytest.raises(E.MissingInputError) as ei:
        g.validate()
    assert ei.value.node_id == n and ei.value.field == "image"


def test_connection_only_field_refuses_literal() -> None:
    g = inb.Graph()
    with pytest.raises(E.ConnectionModeError, match="item"):
        g.add("collect", item=3)


def test_direct_only_field_refuses_edge() -> None:
    g = inb.Graph()
    a, c = g.add("integer_collection", collection=[1]), g.add("collect")
    with pytest.raises(E.ConnectionModeError, match="collection"):
        g.connect(a, "collection", c, "collection")


def test_iterate_needs_a_collection() -> None:
    g = inb.Graph()
    i = g.add("integer", value=1)
    it = g.add("iterate")
    with pytest.raises(E.IterateCollectError, match="needs a collection"):
        g.connect(i, "value", it, "collection")
    with pytest.raises(E.IterateCollectError, match="no collection"):
        g.validate()


def test_collect_without_inputs() -> None:
    g = inb.Graph()
    c = g.add("collect")
    with pytest.raises(E.IterateCollectError) as ei:
        g.validate()
    assert ei.value.node_id == c


def test_collect_mixed_item_types() -> None:
    g = inb.Graph()
    a, b = g.add("integer", value=1), g.add("string", value="x")
    c = g.add("collect")
    g.connect(a, "value", c, "item")
    g.connect(b, "value", c, "item")
    with pytest.raises(E.IterateCollectError, match="mixes item types"):
        g.validate()


def test_iterate_item_type_inferred_and_checked() -> None:
    g = inb.Graph()
    sc = g.add("string_collection", collection=["a", "b"])
    it = g.add("iterate")
    s = g.add("add")
    g.connect(it, "item", s, "a")  # accepted: the item type is unknown until a list arrives
    g.connect(sc, "collection", it, "collection")
    with pytest.raises(E.TypeMismatchError, match="str"):
        g.validate()
    g2 = inb.Graph()
    sc, it, s = g2.add("string_collection", collection=["a"]), g2.add("iterate"), g2.add("add")
    g2.connect(sc, "collection", it, "collection")
    with pytest.raises(E.TypeMismatchError, match=r"iterate_2.item \(str\)"):
        g2.connect(it, "item", s, "a")


def test_collect_output_type_inferred() -> None:
    g = inb.Graph()
    a = g.add("string", value="x")
    c = g.add("collect")
    g.connect(a, "value", c, "item")
    ic = g.add("iterate")
    g.connect(c, "collection", ic, "collection")
    s = g.add("add")
    with pytest.raises(E.TypeMismatchError, match=r"\(str\)"):
        g.connect(ic, "item", s, "a")


def test_errors_are_graph_errors_and_value_errors() -> None:
    for cls in (E.UnknownNodeTypeError, E.CycleError, E.WorkflowError, E.UnsupportedNodeTypesError):
        assert issubclass(cls, inb.GraphError)
    assert issubclass(inb.GraphError, ValueError)


def test_remove_and_disconnect() -> None:
    g = inb.Graph()
    a, s = g.add("integer", value=1), g.add("add", b=1)
    g.connect(a, "value", s, "a")
    g.disconnect(a, "value", s, "a")
    assert g.edges == []
    g.connect(a, "value", s, "a")
    g.remove(a)
    assert g.edges == [] and a not in g
    assert inb.run(g).outputs[s].value == 1
