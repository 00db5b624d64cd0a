"""The node graph editor widget (@xyflow/react in the browser, the Graph in the kernel).

The Python :class:`~invoke_nb.graph.Graph` is the single source of truth. The browser shows
``graph_data`` (graph JSON + layout + labels) and asks for every change with a request; the
Graph validates it (types, connection modes, cycles, values), so a refused edit comes back
as an error message naming the node and field, and nothing changes. Assigning
``editor.graph`` or calling :meth:`GraphEditor.refresh` pushes Python-side changes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import traitlets

from invoke_nb.graph import Graph, GraphError, NodeError
from invoke_nb.graph.workflow import Workflow, parse_workflow, read_workflow
from invoke_nb.nodes import registry_schema
from invoke_nb.nodes.context import Cancelled, Services
from invoke_nb.widgets.messages import MessageWidget, Params, handler

__all__ = ["GraphEditor"]

RunState = Literal["idle", "queued", "running", "done", "cached", "error"]


class XY(Params):
    x: float
    y: float


class AddNode(Params):
    type: str
    position: XY | None = None
    values: dict[str, Any] = {}


class NodeIds(Params):
    ids: list[str]


class EdgeParams(Params):
    source: str
    source_field: str
    destination: str
    destination_field: str


class SetValue(Params):
    node_id: str
    field: str
    value: Any = None
    unset: bool = False


class Move(Params):
    positions: dict[str, XY]


class Duplicate(Params):
    ids: list[str]
    offset: XY = XY(x=40, y=40)


class SaveWorkflow(Params):
    format: Literal["invoke-nb", "invokeai"] = "invoke-nb"


class LoadWorkflow(Params):
    text: str


_EVENT_STATES: dict[str, RunState] = {
    "node_started": "running",
    "progress": "running",
    "node_complete": "done",
    "node_error": "error",
}


def _short(value: Any, limit: int = 200) -> Any:
    """A JSON-ready, size-limited view of an output value for display on a node."""
    if isinstance(value, str):
        return value if len(value) <= limit else value[: limit - 3] + "..."
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    if isinstance(value, list):
        return [_short(v, limit) for v in value[:10]] + (["..."] if len(value) > 10 else [])
    if isinstance(value, dict):
        return {k: _short(v, limit) for k, v in list(value.items())[:10]}
    return _short(repr(value), limit)


def output_summary(output: Any) -> dict[str, Any]:
    """Field -> display value of a node's output (a list of outputs when it iterated)."""
    if isinstance(output, list):
        dumped = [output_summary(o) for o in output[:10]]
        keys = dumped[0].keys() if dumped else ()
        return {k: [d.get(k) for d in dumped] for k in keys}
    try:
        data = output.model_dump(mode="json")
    except Exception:
        data = {k: repr(v) for k, v in vars(output).items()}
    return {k: _short(v) for k, v in data.items()}


class GraphEditor(MessageWidget):
    """Edit a node graph in the browser; ``editor.graph`` is the live :class:`Graph`.

    ``on_invoke(graph)`` runs when the Invoke button is pressed, with a copy of the graph
    (so edits during a queued run do not change it); it may return a ``RunResult``, whose
    outputs are then shown on the nodes. Without it the graph runs in the kernel with
    ``invoke_nb.run``. Hosts running graphs elsewhere pass :meth:`node_event` as the
    runner's ``Services(emit=...)`` to show node states.
    """

    _bundle = "graph_editor"
    expected_errors = (*MessageWidget.expected_errors, NodeError, Cancelled)

    graph_data = traitlets.Dict().tag(sync=True)
    busy = traitlets.Bool(False).tag(sync=True)

    def __init__(
        self,
        graph: Graph | None = None,
        on_invoke: Callable[[Graph], Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.on_invoke = on_invoke
        self.last_result: Any = None
        self.positions: dict[str, dict[str, float]] = {}
        self.labels: dict[str, str] = {}
        self.meta: dict[str, Any] = {}
        self._version = 0
        self._graph = Graph()
        self.graph = graph if graph is not None else Graph()

    # -- the Python side --------------------------------------------------------------------
    @property
    def graph(self) -> Graph:
        """The live graph; assigning another one shows it in the browser."""
        return self._graph

    @graph.setter
    def graph(self, g: Graph) -> None:
        if not isinstance(g, Graph):
            raise TypeError(f"GraphEditor.graph must be an invoke_nb.Graph, got {type(g).__name__}")
        self._graph = g
        wf = g.workflow if isinstance(g.workflow, Workflow) else None
        self.positions = {k: dict(v) for k, v in wf.layout.items()} if wf else {}
        self.labels = dict(wf.labels) if wf else {}
        self.meta = dict(wf.meta) if wf else {}
        self.refresh()

    def refresh(self) -> None:
        """Push the graph (after changing it in Python) and the node registry (after defining
        custom nodes) to the browser."""
        self._publish()
        self.send_event("schemas_changed")

    def workflow(self) -> Workflow:
        """The graph with the editor's layout and labels, as a :class:`Workflow`."""
        return Workflow(
            graph=self._graph,
            meta=dict(self.meta),
            layout=dict(self.positions),
            labels=dict(self.labels),
        )

    def save(self, path: str | Path, *, invokeai: bool = False) -> Path:
        """Write the workflow (ours, or InvokeAI's format) to ``path``."""
        return self.workflow().save(path, invokeai=invokeai)

    def load(self, source: str | Path | dict[str, Any]) -> Graph:
        """Open a workflow (ours or InvokeAI's, a path or parsed JSON) in the editor."""
        wf = read_workflow(source)
        wf.graph.workflow = wf
        self.graph = wf.graph
        return wf.graph

    def set_node_state(self, node_id: str, state: RunState, **info: Any) -> None:
        """Show a run state on a node (``progress`` 0..1, ``message``, ``error``, ``outputs``)."""
        self.send_event("node_state", {"node_id": node_id, "state": state, **info})

    def node_event(self, kind: str, payload: dict[str, Any]) -> None:
        """A runner event callback (``Services(emit=editor.node_event)``) shown on nodes."""
        state = _EVENT_STATES.get(kind)
        node_id = payload.get("node_id")
        if state is None or not isinstance(node_id, str):
            return
        info: dict[str, Any] = {}
        if kind == "progress":
            info["progress"] = payload.get("fraction")
            info["message"] = payload.get("message") or ""
        elif kind == "node_error":
            info["error"] = f"{payload.get('error_type', 'Error')}: {payload.get('error', '')}"
        elif kind == "node_complete" and payload.get("cached"):
            state = "cached"
        self.set_node_state(node_id, state, **info)

    def invoke(self) -> Any:
        """What the Invoke button does: ``on_invoke(graph copy)`` or an in-kernel run."""
        self.busy = True
        self.send_event("reset_states")
        try:
            if self.on_invoke is not None:
                result = self.on_invoke(self._graph.copy())
            else:
                import invoke_nb

                result = invoke_nb.run(self._graph, services=Services(emit=self.node_event))
            self.last_result = result
            self._show_result(result)
            return result
        except GraphError as e:
            if e.node_id in self._graph.nodes:
                self.set_node_state(e.node_id, "error", error=str(e))
            raise
        except NodeError as e:
            self.set_node_state(
                e.node_id, "error", error=f"{type(e.original).__name__}: {e.original}"
            )
            raise
        finally:
            self.busy = False

    # -- internals ----------------------------------------------------------------------------
    def _publish(self) -> None:
        self._version += 1
        nodes = self._graph.nodes
        self.graph_data = {
            "graph": self._graph.to_dict(),
            "layout": {k: v for k, v in self.positions.items() if k in nodes},
            "labels": {k: v for k, v in self.labels.items() if k in nodes},
            "version": self._version,
        }

    def _show_result(self, result: Any) -> None:
        outputs = getattr(result, "outputs", None)
        if not isinstance(outputs, dict):
            return
        cached = getattr(result, "cached", set())
        for nid, out in outputs.items():
            if nid in self._graph.nodes:
                self.set_node_state(
                    nid, "cached" if nid in cached else "done", outputs=output_summary(out)
                )

    def _require(self, ids: Sequence[str]) -> None:
        for nid in ids:
            self._graph.node(nid)

    # -- browser requests ---------------------------------------------------------------------
    @handler("schemas")
    def _schemas(self, _p: Params, _b: list[bytes]) -> dict[str, Any]:
        return registry_schema()

    @handler("add_node", AddNode)
    def _add_node(self, p: AddNode, _b: list[bytes]) -> dict[str, Any]:
        nid = self._graph.add(p.type, **p.values)
        if p.position is not None:
            self.positions[nid] = p.position.model_dump()
        self._publish()
        return {"id": nid}

    @handler("remove_nodes", NodeIds)
    def _remove_nodes(self, p: NodeIds, _b: list[bytes]) -> dict[str, Any]:
        self._require(p.ids)  # all or nothing
        for nid in p.ids:
            self._graph.remove(nid)
            self.positions.pop(nid, None)
            self.labels.pop(nid, None)
        self._publish()
        return {"removed": p.ids}

    @handler("connect", EdgeParams)
    def _connect(self, p: EdgeParams, _b: list[bytes]) -> dict[str, Any]:
        self._graph.connect(p.source, p.source_field, p.destination, p.destination_field)
        self._publish()
        return {"ok": True}

    @handler("disconnect", EdgeParams)
    def _disconnect(self, p: EdgeParams, _b: list[bytes]) -> dict[str, Any]:
        edge = (p.source, p.source_field, p.destination, p.destination_field)
        if not any(
            (e.source.node_id, e.source.field, e.destination.node_id, e.destination.field) == edge
            for e in self._graph.edges
        ):
            raise GraphError(
                f"no edge {p.source}.{p.source_field} -> {p.destination}.{p.destination_field}",
                node_id=p.destination,
                field=p.destination_field,
            )
        self._graph.disconnect(*edge)
        self._publish()
        return {"ok": True}

    @handler("set_value", SetValue)
    def _set_value(self, p: SetValue, _b: list[bytes]) -> dict[str, Any]:
        self._graph.node(p.node_id)
        try:
            if p.unset:
                self._graph.unset(p.node_id, p.field)
            else:
                self._graph.set(p.node_id, **{p.field: p.value})
        finally:
            self._publish()  # a refused value snaps the browser back to the kept one
        return {"value": self.graph_data["graph"]["nodes"][p.node_id].get(p.field)}

    @handler("move", Move)
    def _move(self, p: Move, _b: list[bytes]) -> dict[str, Any]:
        self._require(list(p.positions))
        for nid, xy in p.positions.items():
            self.positions[nid] = xy.model_dump()
        self._publish()
        return {"ok": True}

    @handler("duplicate", Duplicate)
    def _duplicate(self, p: Duplicate, _b: list[bytes]) -> dict[str, Any]:
        self._require(p.ids)
        mapping: dict[str, str] = {}
        try:
            for nid in p.ids:
                spec = self._graph.nodes[nid]
                new = self._graph.add(
                    spec.type,
                    **spec.values,
                    is_intermediate=spec.is_intermediate,
                    use_cache=spec.use_cache,
                )
                mapping[nid] = new
                pos = self.positions.get(nid)
                if pos is not None:
                    self.positions[new] = {"x": pos["x"] + p.offset.x, "y": pos["y"] + p.offset.y}
                if nid in self.labels:
                    self.labels[new] = self.labels[nid]
            for e in list(self._graph.edges):
                if e.source.node_id in mapping and e.destination.node_id in mapping:
                    self._graph.connect(
                        mapping[e.source.node_id],
                        e.source.field,
                        mapping[e.destination.node_id],
                        e.destination.field,
                    )
        except GraphError:
            for new in mapping.values():
                if new in self._graph.nodes:
                    self._graph.remove(new)
            raise
        finally:
            self._publish()
        return {"ids": [mapping[n] for n in p.ids]}

    @handler("validate")
    def _validate(self, _p: Params, _b: list[bytes]) -> dict[str, Any]:
        try:
            self._graph.validate()
        except GraphError as e:
            return {"ok": False, "error": str(e), "node_id": e.node_id, "field": e.field}
        return {"ok": True}

    @handler("invoke")
    def _invoke(self, _p: Params, _b: list[bytes]) -> dict[str, Any]:
        result = self.invoke()
        executed = getattr(result, "executed", None)
        if executed is not None:
            cached = getattr(result, "cached", set())
            seconds = getattr(result, "seconds", 0.0)
            summary = f"ran {len(executed)} nodes, {len(cached)} from cache, in {seconds:.2f} s"
        else:
            summary = "submitted"
        return {"ok": True, "summary": summary}

    @handler("save_workflow", SaveWorkflow)
    def _save_workflow(self, p: SaveWorkflow, _b: list[bytes]) -> dict[str, Any]:
        wf = self.workflow()
        data = wf.to_invokeai() if p.format == "invokeai" else wf.to_dict()
        stem = (
            re.sub(r"[^\w.-]+", "_", str(self.meta.get("name") or "workflow")).strip("_")
            or "workflow"
        )
        suffix = ".invokeai.json" if p.format == "invokeai" else ".json"
        return {"text": json.dumps(data, indent=2), "filename": stem + suffix}

    @handler("load_workflow", LoadWorkflow)
    def _load_workflow(self, p: LoadWorkflow, _b: list[bytes]) -> dict[str, Any]:
        # Parse here: read_workflow would take a non-JSON string for a kernel-side path.
        from invoke_nb.graph.errors import WorkflowError

        try:
            data = json.loads(p.text)
        except ValueError as e:
            raise WorkflowError(f"workflow is not valid JSON: {e}") from None
        wf = parse_workflow(data)
        wf.graph.workflow = wf
        self.graph = wf.graph
        return {"nodes": len(wf.graph.nodes)}
