"""Every GraphEditor message handler, driven as the browser drives it (no browser)."""

from __future__ import annotations

import json
from typing import Any

import pytest

import invoke_nb as inb
from invoke_nb.graph.workflow import read_workflow
from invoke_nb.widgets import GraphEditor, MessageWidget


class Recorder(GraphEditor):
    """A GraphEditor that keeps what it sends to the browser (there is no browser here)."""

    def send(self, content: Any, buffers: Any = None) -> None:
        self.__dict__.setdefault("outbox", []).append((content, buffers))

    def events(self, name: str) -> list[dict[str, Any]]:
        return [
            c["data"]
            for c, _ in self.__dict__.get("outbox", [])
            if c.get("kind") == "event" and c["name"] == name
        ]


def request(w: MessageWidget, method: str, **params: Any) -> dict[str, Any]:
    answer = w.dispatch({"kind": "request", "id": 7, "method": method, "params": params})
    assert answer is not None
    reply, _buffers = answer
    assert reply["kind"] == "response" and reply["id"] == 7
    return reply


def ok(w: MessageWidget, method: str, **params: Any) -> Any:
    reply = request(w, method, **params)
    assert reply["ok"], reply.get("error")
    return reply["result"]


def err(w: MessageWidget, method: str, **params: Any) -> dict[str, Any]:
    reply = request(w, method, **params)
    assert not reply["ok"], reply
    return reply["error"]


@pytest.fixture
def editor() -> Recorder:
    g = inb.Graph()
    g.add("integer", id="n", value=2)
    g.add("add", id="s", b=3)
    g.connect("n", "value", "s", "a")
    return Recorder(g)


def edges(w: GraphEditor) -> list[tuple[str, str, str, str]]:
    return [
        (e.source.node_id, e.source.field, e.destination.node_id, e.destination.field)
        for e in w.graph.edges
    ]


def test_schemas_list_every_registered_node_including_custom_ones(editor: Recorder) -> None:
    @inb.node("widget_test_double", title="Double", category="test")
    class Double(inb.Node):
        x: int = inb.InputField(1, ge=0, le=10)

        def invoke(self, ctx: inb.Context) -> inb.nodes.primitives.IntegerOutput:
            return inb.nodes.primitives.IntegerOutput(value=2 * self.x)

    schemas = ok(editor, "schemas")
    assert {"integer", "add", "widget_test_double"} <= set(schemas)
    x = schemas["widget_test_double"]["inputs"]["x"]
    assert x["type"] == {"kind": "int"} and x["schema"]["maximum"] == 10
    editor.refresh()
    assert editor.events("schemas_changed")


def test_add_node_updates_graph_and_browser_state(editor: Recorder) -> None:
    v0 = editor.graph_data["version"]
    nid = ok(editor, "add_node", type="add", position={"x": 10, "y": 20}, values={"b": 4})["id"]
    assert editor.graph.nodes[nid].values == {"b": 4}
    assert editor.graph_data["graph"]["nodes"][nid]["b"] == 4
    assert editor.graph_data["layout"][nid] == {"x": 10.0, "y": 20.0}
    assert editor.graph_data["version"] > v0


def test_add_node_refuses_unknown_types_and_bad_values(editor: Recorder) -> None:
    e = err(editor, "add_node", type="no_such_node")
    assert e["type"] == "UnknownNodeTypeError" and "no_such_node" in e["message"]
    e = err(editor, "add_node", type="add", values={"b": "three"})
    assert e["type"] == "FieldValueError" and e["field"] == "b"
    assert set(editor.graph.nodes) == {"n", "s"}


def test_connect_accepts_compatible_ports(editor: Recorder) -> None:
    ok(editor, "add_node", type="add")
    ok(
        editor,
        "connect",
        source="s",
        source_field="value",
        destination="add_1",
        destination_field="b",
    )
    assert ("s", "value", "add_1", "b") in edges(editor)
    assert len(editor.graph_data["graph"]["edges"]) == 2


def test_connect_refuses_mismatched_types_cycles_and_taken_inputs(editor: Recorder) -> None:
    ok(editor, "add_node", type="string", values={"value": "x"})
    before = edges(editor)
    e = err(
        editor,
        "connect",
        source="string_1",
        source_field="value",
        destination="s",
        destination_field="b",
    )
    assert e["type"] == "TypeMismatchError" and e["node_id"] == "s" and e["field"] == "b"
    assert "str" in e["message"] and "int" in e["message"]
    ok(editor, "add_node", type="add")
    ok(
        editor,
        "connect",
        source="s",
        source_field="value",
        destination="add_2",
        destination_field="a",
    )
    e = err(
        editor,
        "connect",
        source="add_2",
        source_field="value",
        destination="s",
        destination_field="b",
    )
    assert e["type"] == "CycleError"
    e = err(
        editor,
        "connect",
        source="add_2",
        source_field="value",
        destination="s",
        destination_field="a",
    )
    assert e["type"] == "DuplicateInputError"
    assert edges(editor) == [*before, ("s", "value", "add_2", "a")]


def test_disconnect_removes_an_edge_and_names_a_missing_one(editor: Recorder) -> None:
    ok(
        editor,
        "disconnect",
        source="n",
        source_field="value",
        destination="s",
        destination_field="a",
    )
    assert edges(editor) == []
    e = err(
        editor,
        "disconnect",
        source="n",
        source_field="value",
        destination="s",
        destination_field="a",
    )
    assert "no edge n.value -> s.a" in e["message"]


def test_remove_nodes_is_all_or_nothing(editor: Recorder) -> None:
    e = err(editor, "remove_nodes", ids=["s", "ghost"])
    assert e["type"] == "NodeNotFoundError" and e["node_id"] == "ghost"
    assert set(editor.graph.nodes) == {"n", "s"}
    ok(editor, "move", positions={"s": {"x": 1, "y": 1}})
    assert ok(editor, "remove_nodes", ids=["s"]) == {"removed": ["s"]}
    assert set(editor.graph.nodes) == {"n"} and edges(editor) == []
    assert "s" not in editor.graph_data["layout"]


def test_set_value_validates_through_the_graph(editor: Recorder) -> None:
    assert ok(editor, "set_value", node_id="s", field="b", value=10) == {"value": 10}
    assert editor.graph.nodes["s"].values["b"] == 10
    e = err(editor, "set_value", node_id="s", field="b", value="ten")
    assert e["type"] == "FieldValueError" and (e["node_id"], e["field"]) == ("s", "b")
    assert editor.graph.nodes["s"].values["b"] == 10
    e = err(editor, "set_value", node_id="s", field="nope", value=1)
    assert e["type"] == "UnknownFieldError"
    ok(editor, "set_value", node_id="s", field="b", unset=True)
    assert "b" not in editor.graph.nodes["s"].values


def test_move_stores_positions_for_known_nodes_only(editor: Recorder) -> None:
    ok(editor, "move", positions={"n": {"x": 5, "y": 6}, "s": {"x": 300, "y": 6}})
    assert editor.workflow().layout == {"n": {"x": 5.0, "y": 6.0}, "s": {"x": 300.0, "y": 6.0}}
    e = err(editor, "move", positions={"ghost": {"x": 1, "y": 2}})
    assert e["node_id"] == "ghost"


def test_duplicate_copies_values_flags_positions_and_inner_edges(editor: Recorder) -> None:
    ok(editor, "move", positions={"n": {"x": 0, "y": 0}, "s": {"x": 300, "y": 0}})
    editor.graph.set("s", use_cache=False)
    ids = ok(editor, "duplicate", ids=["n", "s"])["ids"]
    n2, s2 = ids
    assert editor.graph.nodes[n2].values == {"value": 2} and editor.graph.nodes[s2].values == {
        "b": 3
    }
    assert editor.graph.nodes[s2].use_cache is False
    assert (n2, "value", s2, "a") in edges(editor)
    assert editor.positions[s2] == {"x": 340.0, "y": 40.0}
    assert err(editor, "duplicate", ids=["ghost"])["type"] == "NodeNotFoundError"


def test_validate_reports_the_problem_as_data(editor: Recorder) -> None:
    assert ok(editor, "validate") == {"ok": True}
    ok(editor, "add_node", type="iterate")
    r = ok(editor, "validate")
    assert r["ok"] is False and r["node_id"] == "iterate_1" and "collection" in r["error"]


def test_invoke_runs_in_the_kernel_and_shows_states_and_outputs(editor: Recorder) -> None:
    r = ok(editor, "invoke")
    assert r["ok"] and r["summary"].startswith("ran 2 nodes")
    assert editor.last_result.outputs["s"].value == 5
    assert editor.busy is False
    states = {(d["node_id"], d["state"]) for d in editor.events("node_state")}
    assert {("n", "running"), ("s", "running"), ("s", "done")} <= states
    final = [d for d in editor.events("node_state") if d["node_id"] == "s" and "outputs" in d]
    assert final[-1]["outputs"]["value"] == 5
    assert editor.events("reset_states")
    ok(editor, "invoke")  # second run: served from the output cache
    assert {"n", "s"} <= {
        d["node_id"] for d in editor.events("node_state") if d["state"] == "cached"
    }


def test_invoke_calls_on_invoke_with_a_copy(editor: Recorder) -> None:
    seen: list[inb.Graph] = []

    def on_invoke(g: inb.Graph) -> None:
        seen.append(g)

    editor.on_invoke = on_invoke
    assert ok(editor, "invoke") == {"ok": True, "summary": "submitted"}
    assert len(seen) == 1 and seen[0] is not editor.graph
    assert seen[0].to_dict() == editor.graph.to_dict()


def test_invoke_failures_are_answered_and_shown_on_the_node(editor: Recorder) -> None:
    ok(editor, "set_value", node_id="n", field="value", value=1)
    editor.on_invoke = lambda g: inb.run(g, services=inb.Services(emit=editor.node_event))
    ok(editor, "add_node", type="div", values={"a": 1, "b": 0})
    e = err(editor, "invoke")
    assert e["type"] == "NodeError" and "div_1" in e["message"]
    errors = [d for d in editor.events("node_state") if d["state"] == "error"]
    assert (
        errors
        and errors[-1]["node_id"] == "div_1"
        and "cannot divide by zero" in errors[-1]["error"]
    )
    assert editor.busy is False
    ok(editor, "remove_nodes", ids=["div_1"])
    it = ok(editor, "add_node", type="iterate")["id"]
    e = err(editor, "invoke")
    assert e["type"] == "IterateCollectError" and e["node_id"] == it
    assert [d for d in editor.events("node_state") if d["state"] == "error"][-1]["node_id"] == it


def test_save_workflow_in_both_formats_round_trips(editor: Recorder) -> None:
    ok(editor, "move", positions={"n": {"x": 1, "y": 2}, "s": {"x": 300, "y": 2}})
    for fmt in ("invoke-nb", "invokeai"):
        r = ok(editor, "save_workflow", format=fmt)
        wf = read_workflow(json.loads(r["text"]))
        assert wf.graph.to_dict()["nodes"] == editor.graph.to_dict()["nodes"]
        assert wf.layout == {"n": {"x": 1.0, "y": 2.0}, "s": {"x": 300.0, "y": 2.0}}
        assert r["filename"].endswith(".invokeai.json" if fmt == "invokeai" else ".json")
    assert err(editor, "save_workflow", format="yaml")["type"] == "ValueError"


def test_load_workflow_replaces_the_graph_with_its_layout(editor: Recorder) -> None:
    other = inb.Graph()
    other.add("integer", id="k", value=9)
    text = json.dumps(inb.Workflow(graph=other, layout={"k": {"x": 7, "y": 8}}).to_invokeai())
    assert ok(editor, "load_workflow", text=text) == {"nodes": 1}
    assert set(editor.graph.nodes) == {"k"}
    assert editor.graph_data["layout"] == {"k": {"x": 7.0, "y": 8.0}}


def test_load_workflow_never_reads_kernel_files(editor: Recorder, tmp_path: Any) -> None:
    path = tmp_path / "wf.json"
    editor.save(path)
    e = err(editor, "load_workflow", text=str(path))
    assert e["type"] == "WorkflowError" and "not valid JSON" in e["message"]
    e = err(editor, "load_workflow", text='{"nodes": {"a": {"id": "a", "type": "nope"}}}')
    assert e["type"] == "UnsupportedNodeTypesError"
    assert set(editor.graph.nodes) == {"n", "s"}
    editor.graph.add("integer", id="extra")
    assert set(editor.load(path).nodes) == {"n", "s"}


def test_assigning_the_graph_from_python_updates_the_browser(editor: Recorder) -> None:
    g = inb.Graph()
    g.add("string", id="t", value="hello")
    editor.graph = g
    assert list(editor.graph_data["graph"]["nodes"]) == ["t"]
    g.add("integer", id="i")
    editor.refresh()
    assert set(editor.graph_data["graph"]["nodes"]) == {"t", "i"}
    with pytest.raises(TypeError, match=r"must be an invoke_nb\.Graph"):
        editor.graph = {"nodes": {}}  # type: ignore[assignment]


def test_node_event_maps_runner_events_to_node_states(editor: Recorder) -> None:
    editor.node_event("node_started", {"node_id": "s"})
    editor.node_event("progress", {"node_id": "s", "fraction": 0.5, "message": "step 2/4"})
    editor.node_event("node_complete", {"node_id": "s", "cached": True})
    editor.node_event("node_error", {"node_id": "n", "error_type": "ValueError", "error": "boom"})
    editor.node_event("queue_status", {"status": "idle"})
    assert editor.events("node_state") == [
        {"node_id": "s", "state": "running"},
        {"node_id": "s", "state": "running", "progress": 0.5, "message": "step 2/4"},
        {"node_id": "s", "state": "cached"},
        {"node_id": "n", "state": "error", "error": "ValueError: boom"},
    ]


def test_dispatch_names_unknown_methods_and_bad_params(editor: Recorder) -> None:
    e = err(editor, "frobnicate")
    assert (
        e["type"] == "LookupError" and "frobnicate" in e["message"] and "add_node" in e["message"]
    )
    e = err(editor, "connect", source="n")
    assert e["type"] == "ValueError" and "source_field" in e["message"]
    e = err(editor, "add_node", type="add", colour="red")
    assert "colour" in e["message"]
    assert editor.dispatch({"kind": "event", "name": "x"}) is None
    assert editor.dispatch("hello") is None


def test_comm_messages_are_answered_over_send(editor: Recorder) -> None:
    editor._on_custom_message(
        editor, {"kind": "request", "id": 3, "method": "validate", "params": {}}, []
    )
    content, _ = editor.outbox[-1]
    assert content == {"kind": "response", "id": 3, "ok": True, "result": {"ok": True}}


def test_missing_bundle_names_the_build_command() -> None:
    class Nowhere(MessageWidget):
        _bundle = "no_such_widget"

    with pytest.raises(FileNotFoundError, match="make frontend"):
        Nowhere()
