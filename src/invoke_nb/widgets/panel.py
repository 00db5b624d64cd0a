"""Dock a widget in a JupyterLab panel instead of a notebook cell.

Why sidecar: its prebuilt lab extension creates the panel through the notebook's own widget
manager, so the docked view is an ordinary view of our anywidget model, tied to the kernel
that owns it (no second copy of @jupyter-widgets/base, no server of ours). When the kernel
restarts, the widget manager drops its models and the panel closes with them.

Outside JupyterLab (Notebook 7, VS Code, Colab) there is nothing to dock into: display the
widget in a cell as usual; every widget works that way without the lab extension.
The invoke-nb lab extension's commands ("Invoke: open gallery", ...) call
:func:`invoke_nb.studio_views.open_view` in the active notebook's kernel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ipywidgets import DOMWidget

__all__ = ["AREAS", "open_view", "panel_title", "show_in_panel"]

AREAS: Final[dict[str, str]] = {
    "right": "right",
    "main": "tab-after",
    "split-right": "split-right",
    "split-left": "split-left",
    "split-bottom": "split-bottom",
    "split-top": "split-top",
    "tab-before": "tab-before",
    "tab-after": "tab-after",
}
"""Our placement names -> sidecar anchors. ``main`` opens a tab beside the active document."""

TITLE_PREFIX: Final = "Invoke: "
"""Panels whose title starts with this get the lab extension's icons."""


def panel_title(widget: Any) -> str:
    """The panel title for a widget: ``Invoke: Gallery``, ``Invoke: Node editor``, ..."""
    from invoke_nb.widgets.hub import VIEWS

    name = type(widget).__name__
    titles = {v.cls: v.title for v in VIEWS.values()}
    return TITLE_PREFIX + titles.get(name, name)


def show_in_panel(widget: DOMWidget, area: str = "right", title: str | None = None) -> Any:
    """Dock ``widget`` in a JupyterLab panel; returns the panel (a ``sidecar.Sidecar``).

    ``area`` is one of :data:`AREAS` (``right`` sidebar, ``main`` tab beside the notebook,
    ``split-right`` beside it, ...). ``panel.close()`` closes the panel; the widget lives on
    and may be displayed elsewhere too. Needs JupyterLab with the sidecar extension (a
    dependency of invoke-nb); elsewhere display the widget in a cell.
    """
    anchor = AREAS.get(area) if isinstance(area, str) else None
    if anchor is None:
        raise ValueError(
            f"unknown panel area {area!r} for {type(widget).__name__}; "
            f"choose one of: {', '.join(AREAS)}"
        )
    if not hasattr(widget, "_repr_mimebundle_"):
        raise TypeError(
            f"{type(widget).__name__} is not a widget; show_in_panel docks ipywidgets/anywidgets"
        )
    try:
        from sidecar import Sidecar
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "docking needs the `sidecar` package (pip install sidecar); "
            "or display the widget in a cell"
        ) from None

    panel = Sidecar(title=title or panel_title(widget), anchor=anchor)
    # Kernel-side append (not `with panel: display(...)`): works from any thread or cell.
    panel.append_display_data(widget)
    return panel


def open_view(kind: str, area: str = "right", root: str | None = None, **kwargs: Any) -> Any:
    """The old name of :func:`invoke_nb.studio_views.open_view`, which lab extension builds
    made before it moved still call."""
    from invoke_nb.studio_views import open_view as studio_open_view

    return studio_open_view(kind, area, root, **kwargs)
