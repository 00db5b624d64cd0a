"""The node graph editor widget (@xyflow/react in the browser, the Graph in the kernel).

The Python :class:`~invoke_nb.graph.Graph` is the single source of truth. The browser shows
``graph_data`` (graph JSON + layout + labels) and asks for every change with a request; the
Graph validates it (types, connection modes, cycles, values), so a refused edit comes back
as an error message naming the node and field, and nothing changes. Assigning
``editor.graph`` or calling :meth:`GraphEditor.refresh` pushes Python-side changes.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import traitlets
from PIL import Image
from pydantic import Field

from invoke_nb.graph import Graph, GraphError, NodeError
from invoke_nb.graph.workflow import Workflow, loads_json, parse_workflow, read_workflow
from invoke_nb.nodes import registry_schema
from invoke_nb.nodes.context import Cancelled, Services
from invoke_nb.nodes.types import ImageField
from invoke_nb.queue.batch import seed_batch
from invoke_nb.widgets.messages import MessageWidget, Params, Reply, handler

if TYPE_CHECKING:
    from invoke_nb.studio import Studio

__all__ = [
    "GraphEditor",
    "call_on_main",
    "field_model_filter",
    "model_choices",
    "thumbnail_png",
]

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


class InvokeParams(Params):
    runs: int = Field(1, ge=1, le=1000)


class ModelQuery(Params):
    node_type: str
    field: str


class RecentImages(Params):
    limit: int = Field(24, ge=1, le=200)
    search: str | None = None


class ImageName(Params):
    image_name: str


class LibraryList(Params):
    query: str | None = None


class LibrarySave(Params):
    name: str = Field(min_length=1, max_length=200)
    workflow_id: str | None = None
    description: str = ""


class WorkflowId(Params):
    workflow_id: str


def model_choices(records: Sequence[Any], node_type: str, field: str) -> list[dict[str, Any]]:
    """The model records a node's model field may take, as ModelIdentifierField dicts: the
    field's own ``ui_model_*`` hints decide (no hints: any model)."""
    want = field_model_filter(node_type, field)
    out = []
    for r in records:
        if any(getattr(r, key, None) not in allowed for key, allowed in want.items()):
            continue
        out.append({"key": r.key, "hash": r.hash, "name": r.name, "base": r.base, "type": r.type})
    return sorted(out, key=lambda m: (m["name"].lower(), m["base"]))


def field_model_filter(node_type: str, field: str) -> dict[str, list[str]]:
    """The ``ui_model_*`` hints of one field of a registered node type (empty: any model)."""
    from invoke_nb.nodes.base import get_node_class, model_filter

    try:
        info = get_node_class(node_type).input_fields().get(field)
    except KeyError:
        return {}
    return (model_filter(info) if info is not None else None) or {}


def thumbnail_png(image: Image.Image, size: int = 256) -> bytes:
    """A small PNG of ``image`` for showing in the browser (a binary buffer, not base64)."""
    im = image.copy()
    im.thumbnail((size, size))
    if im.mode not in ("RGB", "RGBA", "L", "LA"):
        im = im.convert("RGBA")
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def call_on_main(fn: Callable[..., Any], *args: Any) -> None:
    """Call ``fn(*args)`` on the kernel's main thread (widgets are not thread-safe); called
    directly outside a kernel or when already there."""
    if threading.current_thread() is threading.main_thread():
        fn(*args)
        return
    from invoke_nb.queue.events import kernel_loop

    loop = kernel_loop()
    if loop is None:
        fn(*args)
    else:
        loop.add_callback(fn, *args)


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

    With a ``studio`` (``studio.editor(g)``), Invoke queues the graph ``runs`` times on the
    studio's queue and returns at once; node states, progress, errors and output images of
    the editor's own queue items come from ``studio.events``; model fields offer the
    studio's models and the workflow library is the studio catalog's.

    Without one, ``on_invoke(graph)`` runs when the Invoke button is pressed, with a copy of
    the graph (so edits during a run do not change it); it may return a ``RunResult``, whose
    outputs are then shown on the nodes. Without either the graph runs in the kernel with
    ``invoke_nb.run``. Hosts running graphs elsewhere pass :meth:`node_event` as the
    runner's ``Services(emit=...)`` to show node states.
    """

    _bundle = "graph_editor"
    expected_errors = (*MessageWidget.expected_errors, NodeError, Cancelled)

    graph_data = traitlets.Dict().tag(sync=True)
    busy = traitlets.Bool(False).tag(sync=True)
    # queue items of this editor not finished yet (studio mode)
    pending = traitlets.Int(0).tag(sync=True)
    # which optional parts the browser shows: "studio" (queue, models, library, images)
    features = traitlets.List(traitlets.Unicode()).tag(sync=True)
    # the library workflow the graph was opened from / saved to
    workflow_id = traitlets.Unicode(None, allow_none=True).tag(sync=True)

    def __init__(
        self,
        graph: Graph | None = None,
        on_invoke: Callable[[Graph], Any] | None = None,
        *,
        studio: Studio | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if studio is not None and on_invoke is not None:
            raise ValueError("GraphEditor takes a studio or an on_invoke callback, not both")
        self.on_invoke = on_invoke
        self.studio = studio
        self.items: dict[int, str] = {}  # queue item id -> status, for this editor's items
        self._unsubscribe: Callable[[], None] | None = None
        if studio is not None:
            self.features = ["studio"]
            self._unsubscribe = studio.events.on("*", self._on_studio_event, main_thread=True)
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
        self.workflow_id = None
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

    def invoke(self, runs: int = 1) -> Any:
        """What the Invoke button does: queue ``runs`` copies on the studio (returns the item
        ids at once), or ``on_invoke(graph copy)``, or an in-kernel run."""
        if self.studio is not None:
            return self._enqueue(runs)
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

    def close(self) -> None:
        """Close the widget and stop listening to the studio's events."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        super().close()

    # -- the studio's workflow library ----------------------------------------------------------
    def save_to_library(
        self, name: str, *, workflow_id: str | None = None, description: str = ""
    ) -> str:
        """Save the workflow in the studio's library (a new entry, or ``workflow_id``'s);
        returns its id."""
        studio = self._need_studio("save to the workflow library")
        self.meta["name"] = name
        if description:
            self.meta["description"] = description
        data = self.workflow().to_dict()
        repo = studio.catalog.workflows
        if workflow_id:
            rec = repo.update(workflow_id, workflow=data, name=name, description=description)
        else:
            rec = repo.create(data, name=name, description=description)
        self.workflow_id = rec.workflow_id
        return rec.workflow_id

    def open_from_library(self, workflow_id: str) -> Graph:
        """Open a workflow of the studio's library (and mark it recently opened)."""
        studio = self._need_studio("open from the workflow library")
        rec = studio.catalog.workflows.get(workflow_id)
        g = self.load(rec.workflow)
        studio.catalog.workflows.mark_opened(workflow_id)
        self.workflow_id = workflow_id
        return g

    # -- studio mode ------------------------------------------------------------------------------
    def _need_studio(self, what: str) -> Studio:
        if self.studio is None:
            raise LookupError(
                f"cannot {what}: this editor has no studio; open it with studio.editor(graph)"
            )
        return self.studio

    def _enqueue(self, runs: int) -> list[int]:
        studio = self._need_studio("queue the graph")
        if runs < 1:
            raise ValueError(f"runs must be at least 1, got {runs}")
        try:
            g = self._graph.copy()
            seeds = seed_batch(g, runs) if runs > 1 else None  # a new seed per run
            ids = studio.enqueue(g, batch=seeds) if seeds else studio.enqueue(g, runs=runs)
        except GraphError as e:
            if e.node_id in self._graph.nodes:
                self.set_node_state(e.node_id, "error", error=str(e))
            raise
        self.send_event("reset_states")
        for i in ids:
            self.items[i] = "pending"
            studio.queue.future(i).add_done_callback(
                lambda f, i=i: call_on_main(self._item_finished, i, f)
            )
        self.pending = sum(s in ("pending", "in_progress") for s in self.items.values())
        return ids

    def _on_studio_event(self, kind: str, payload: dict[str, Any]) -> None:
        item = payload.get("item_id")
        if item not in self.items:
            return
        if kind == "queue_item_status_changed":
            status = str(payload.get("status"))
            if status == "in_progress":
                self.send_event("reset_states")
            self.items[item] = status
            self.pending = sum(s in ("pending", "in_progress") for s in self.items.values())
            if status == "failed" and payload.get("error_message"):
                self.send_event(
                    "run_error",
                    {"item_id": item, "message": str(payload.get("error_message"))},
                )
        else:
            self.node_event(kind, payload)

    def _item_finished(self, item_id: int, fut: Future[Any]) -> None:
        self.items[item_id] = "done" if fut.exception() is None else "failed"
        self.pending = sum(s in ("pending", "in_progress") for s in self.items.values())
        if fut.exception() is None and fut.result() is not None:
            self.last_result = fut.result()
            self._show_result(fut.result())

    def _image_pil(self, result: Any, ref: ImageField) -> Image.Image | None:
        value = getattr(result, "value", None)
        if value is not None:
            try:
                img = value(ref)
                if isinstance(img, Image.Image):
                    return img
            except Exception:
                pass
        if self.studio is not None:
            try:
                return self.studio.catalog.images.get_pil(ref.image_name)
            except Exception:
                return None
        return None

    def _send_node_image(self, node_id: str, name: str, image: Image.Image) -> None:
        self.send_event(
            "node_image",
            {"node_id": node_id, "image_name": name, "width": image.width, "height": image.height},
            [thumbnail_png(image)],
        )

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
                last = out[-1] if isinstance(out, list) and out else out
                ref = getattr(last, "image", None)
                if isinstance(ref, ImageField):
                    img = self._image_pil(result, ref)
                    if img is not None:
                        self._send_node_image(nid, ref.image_name, img)

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
        spec = self._graph.node(p.node_id)
        try:
            if p.unset:
                self._graph.unset(p.node_id, p.field)
            else:
                before = dict(spec.values)
                self._graph.set(p.node_id, **{p.field: p.value})
                ref = spec.values.get(p.field)
                if isinstance(ref, ImageField) and not ref.image_name.startswith("mem-"):
                    try:  # a catalog image only: a checked name with a row
                        self._need_studio("use catalog images").image(ref.image_name)
                    except Exception:
                        spec.values.clear()
                        spec.values.update(before)
                        raise
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

    @handler("invoke", InvokeParams)
    def _invoke(self, p: InvokeParams, _b: list[bytes]) -> dict[str, Any]:
        if self.studio is not None:
            ids = self._enqueue(p.runs)
            n = len(ids)
            return {"ok": True, "summary": f"queued {n} run{'s' if n > 1 else ''}", "items": ids}
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
        wf = parse_workflow(loads_json(p.text))
        wf.graph.workflow = wf
        self.graph = wf.graph
        return {"nodes": len(wf.graph.nodes)}

    @handler("models", ModelQuery)
    def _models(self, p: ModelQuery, _b: list[bytes]) -> dict[str, Any]:
        studio = self._need_studio("list models")
        return {
            "models": model_choices(studio.models.list(), p.node_type, p.field),
            "filter": field_model_filter(p.node_type, p.field),
        }

    @handler("recent_images", RecentImages)
    def _recent_images(self, p: RecentImages, _b: list[bytes]) -> Reply:
        return recent_images(self._need_studio("list images"), p.limit, p.search)

    @handler("image_thumbnail", ImageName)
    def _image_thumbnail(self, p: ImageName, _b: list[bytes]) -> Reply:
        studio = self._need_studio("show catalog images")
        rec = studio.catalog.images.get(p.image_name)
        thumb = studio.catalog.images.get_thumbnail(p.image_name)
        return Reply(
            {"image_name": p.image_name, "width": rec.width, "height": rec.height},
            [thumbnail_png(thumb)],
        )

    @handler("library_list", LibraryList)
    def _library_list(self, p: LibraryList, _b: list[bytes]) -> dict[str, Any]:
        studio = self._need_studio("list the workflow library")
        return {
            "workflows": [
                {
                    "workflow_id": r.workflow_id,
                    "name": r.name,
                    "description": r.description,
                    "category": r.category,
                    "nodes": len((r.workflow.get("graph") or r.workflow).get("nodes") or {}),
                    "updated_at": r.updated_at.isoformat(),
                    "opened_at": r.opened_at.isoformat() if r.opened_at else None,
                }
                for r in studio.catalog.workflows.list(query=p.query)
            ]
        }

    @handler("library_open", WorkflowId)
    def _library_open(self, p: WorkflowId, _b: list[bytes]) -> dict[str, Any]:
        g = self.open_from_library(p.workflow_id)
        return {"nodes": len(g.nodes), "name": self.meta.get("name")}

    @handler("library_save", LibrarySave)
    def _library_save(self, p: LibrarySave, _b: list[bytes]) -> dict[str, Any]:
        wid = self.save_to_library(p.name, workflow_id=p.workflow_id, description=p.description)
        return {"workflow_id": wid}

    @handler("library_delete", WorkflowId)
    def _library_delete(self, p: WorkflowId, _b: list[bytes]) -> dict[str, Any]:
        self._need_studio("delete from the workflow library").catalog.workflows.delete(
            p.workflow_id
        )
        if self.workflow_id == p.workflow_id:
            self.workflow_id = None
        return {"ok": True}


def recent_images(studio: Studio, limit: int = 24, search: str | None = None) -> Reply:
    """The newest catalogued images: names and sizes, with a thumbnail buffer each."""
    page = studio.catalog.images.list(limit=limit, search=search or None)
    rows, buffers = [], []
    for rec in page.items:
        try:
            thumb = studio.catalog.images.get_thumbnail(rec.image_name)
        except Exception:
            continue
        rows.append({"image_name": rec.image_name, "width": rec.width, "height": rec.height})
        buffers.append(thumbnail_png(thumb, 128))
    return Reply({"images": rows}, buffers)
