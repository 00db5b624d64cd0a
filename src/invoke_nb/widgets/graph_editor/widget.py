"""The node graph editor widget: the Python side (the live Graph, running it, the studio's
queue events) of extension/src/widgets/graph_editor."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

import traitlets
from PIL import Image

from invoke_nb.graph import Graph, GraphError, NodeError
from invoke_nb.graph.workflow import Workflow, read_workflow
from invoke_nb.nodes.context import Cancelled, Services
from invoke_nb.nodes.types import ImageField
from invoke_nb.queue.batch import seed_batch
from invoke_nb.queue.events import call_on_main
from invoke_nb.widgets.graph_editor.library import WorkflowLibrary
from invoke_nb.widgets.graph_editor.outputs import _EVENT_STATES, output_summary
from invoke_nb.widgets.graph_editor.protocol import RunState
from invoke_nb.widgets.graph_editor.requests import GraphRequests
from invoke_nb.widgets.imaging import encode_image
from invoke_nb.widgets.messages import MessageWidget

if TYPE_CHECKING:
    from invoke_nb.widgets.api import StudioAPI

__all__ = ["GraphEditor"]


class GraphEditor(GraphRequests, WorkflowLibrary, MessageWidget):
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
        studio: StudioAPI | None = None,
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
                from invoke_nb.graph import run

                result = run(self._graph, services=Services(emit=self.node_event))
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

    # -- studio mode ------------------------------------------------------------------------------
    def _need_studio(self, what: str) -> StudioAPI:
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
            studio.future(i).add_done_callback(
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
                return self.studio.image_pil(ref.image_name)
            except Exception:
                return None
        return None

    def _send_node_image(self, node_id: str, name: str, image: Image.Image) -> None:
        self.send_event(
            "node_image",
            {"node_id": node_id, "image_name": name, "width": image.width, "height": image.height},
            [encode_image(image, size=256)],
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
