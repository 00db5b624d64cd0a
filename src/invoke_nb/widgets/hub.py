"""The widgets hub: the one place that knows every view, makes them and routes between them.

A Studio owns one :class:`ViewHub` (made on first use, so a studio that shows no widget never
imports the widget stack). The hub keeps a weak list of the views it made and answers the
actions that cross views: the gallery's "recall" opens the graph in the newest editor (or a
new docked one), "use as canvas layer" adds to the newest canvas. Adding a view is one entry
in :data:`VIEWS` (and its class in its own module); nothing in the Studio changes.
"""

from __future__ import annotations

import importlib
import weakref
from typing import Any, Final, NamedTuple

from invoke_nb.graph.model import Graph
from invoke_nb.widgets.api import StudioAPI

__all__ = ["VIEWS", "ViewHub"]


class View(NamedTuple):
    module: str  # under invoke_nb.widgets
    cls: str
    title: str  # panel title after "Invoke: "


VIEWS: Final[dict[str, View]] = {
    "gallery": View("gallery", "Gallery", "Gallery"),
    "editor": View("graph_editor", "GraphEditor", "Node editor"),
    "canvas": View("canvas", "Canvas", "Canvas"),
    "queue": View("queue_view", "QueueView", "Queue"),
    "models": View("model_view", "ModelView", "Models"),
}
"""Every view the studio makes, by the kind name the lab extension's commands use."""


def view_class(kind: str) -> type:
    """The widget class of a view kind (imports its module)."""
    view = VIEWS.get(kind)
    if view is None:
        raise ValueError(f"unknown view {kind!r}; choose one of: {', '.join(VIEWS)}")
    return getattr(importlib.import_module(f"invoke_nb.widgets.{view.module}"), view.cls)


class ViewHub:
    """The views of one studio, and the routes between them."""

    def __init__(self, studio: StudioAPI) -> None:
        self.studio = studio
        self._made: dict[str, list[weakref.ref[Any]]] = {}

    # -- making views ---------------------------------------------------------------------------
    def make(self, kind: str, *args: Any, **kwargs: Any) -> Any:
        """A new view of ``kind`` (see :data:`VIEWS`), remembered for routing."""
        cls = view_class(kind)
        if kind == "editor":
            widget = cls(*args, studio=self.studio, **kwargs)
        else:
            widget = cls(self.studio, *args, **kwargs)
        if kind == "gallery":
            widget.on_recall(lambda image, graph: self.to_editor(graph))
            widget.on_use(self.use_image)
        self._made.setdefault(kind, []).append(weakref.ref(widget))
        return widget

    def latest(self, kind: str) -> Any:
        """The newest open view of ``kind``, or None."""
        alive = [w for w in (r() for r in self._made.get(kind, [])) if w is not None]
        alive = [w for w in alive if not getattr(w, "_closed", False)]
        return alive[-1] if alive else None

    # -- routes between views -------------------------------------------------------------------
    @staticmethod
    def present(widget: Any, area: str) -> None:
        """Dock a widget made from another widget's action (JupyterLab), else show it."""
        try:
            widget.show(area=area)
        except Exception:
            from IPython.display import display

            display(widget)

    def to_editor(self, graph: Graph) -> Any:
        """Gallery "recall": the graph goes into the newest editor, or a new docked one."""
        editor = self.latest("editor")
        if editor is not None:
            editor.graph = graph
            return editor
        editor = self.make("editor", graph)
        self.present(editor, "main")
        return editor

    def use_image(self, image: Any, purpose: str) -> Any:
        """Gallery "use as": a canvas layer, or an img2img graph in the editor."""
        if purpose == "canvas":
            canvas = self.latest("canvas")
            if canvas is not None:
                canvas.add_layer(image)
                return canvas
            canvas = self.make("canvas", image)
            self.present(canvas, "split-right")
            return canvas
        from invoke_nb.graph import standard

        prompt = self.studio.image_record(image.name).positive_prompt or ""
        graph = standard.img2img(self.studio.model_field(None), image.pil, prompt)
        return self.to_editor(graph)
