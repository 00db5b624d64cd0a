"""The Studio's side of the widgets: the view methods and the narrow API widgets call.

The Studio never imports the widget package at module level: each view method asks the
studio's :class:`~invoke_nb.widgets.hub.ViewHub` (made on first use) for a view. Widgets in
turn see the Studio only as a :class:`~invoke_nb.widgets.api.StudioAPI`; the methods below
that are not view methods are that API's catalog reads and queue calls, so widgets never
reach into ``studio.catalog``'s repositories.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from PIL import Image

from invoke_nb.graph.model import Graph

if TYPE_CHECKING:
    from invoke_nb.studio import Studio

__all__ = ["StudioViews", "open_view"]


class StudioViews:
    """Mixed into :class:`~invoke_nb.studio.Studio`: views, and the API widgets use."""

    _hub: Any = None

    def views(self: Studio) -> Any:
        """The studio's :class:`~invoke_nb.widgets.hub.ViewHub` (made on first use)."""
        if self._hub is None:
            from invoke_nb.widgets.hub import ViewHub

            self._hub = ViewHub(self)
        return self._hub

    # -- views ------------------------------------------------------------------------------
    def gallery(self: Studio, **filters: Any) -> Any:
        """A gallery widget over this studio's images (``board=``, ``starred=``, ``search=``,
        ``order=`` set its filters); live while the queue runs."""
        return self.views().make("gallery", **filters)

    def queue_view(self: Studio) -> Any:
        """A widget listing queue items by batch, with progress, cancel and retry."""
        return self.views().make("queue")

    def models_view(self: Studio) -> Any:
        """A widget listing installed models, installing and removing them, with cache stats."""
        return self.views().make("models")

    def editor(self: Studio, graph: Graph | None = None) -> Any:
        """A node graph editor wired to this studio: Invoke queues the graph (with a batch
        count), nodes show progress and output images, workflows save to the library."""
        return self.views().make("editor", graph)

    def canvas(self: Studio, image: Any = None, *, width: int = 512, height: int = 512) -> Any:
        """A canvas (raster and control layers, inpaint mask, regional guidance, reference
        images, bounding box) that generates into its box with txt2img, img2img, inpaint or
        outpaint, chosen from what the box holds. ``width``/``height``: the box when there
        is no image."""
        return self.views().make("canvas", image, width=width, height=height)

    # -- the narrow API widgets call (widgets.api.StudioAPI) ---------------------------------
    @property
    def workflows(self: Studio) -> Any:
        """The workflow library (list, get, save, delete, mark_opened)."""
        return self.catalog.workflows

    def future(self: Studio, item_id: int) -> Future[Any]:
        """The future of a queue item (done when it finishes)."""
        return self.queue.future(item_id)

    def queue_item(self: Studio, item_id: int) -> Any:
        """One queue item's row (``NotFoundError`` names a missing one)."""
        return self.catalog.queue.get(item_id)

    def queue_counts(self: Studio) -> dict[str, int]:
        """Items of this studio's queue by status."""
        return self.catalog.queue.counts(queue_id=self.queue_id)

    def queue_paused(self: Studio) -> bool:
        return bool(getattr(self.queue, "paused", False))

    def prune_queue(self: Studio) -> int:
        """Remove finished items from this studio's queue; returns how many."""
        return self.catalog.queue.prune(queue_id=self.queue_id)

    def image_pil(self: Studio, name: str) -> Image.Image:
        """A catalogued image's pixels."""
        return self.catalog.images.get_pil(name)

    def image_record(self: Studio, name: str) -> Any:
        """A catalogued image's row (an ``ImageRecord``)."""
        return self.catalog.images.get(name)

    def thumbnail(self: Studio, name: str) -> Image.Image:
        """A catalogued image's thumbnail."""
        return self.catalog.images.get_thumbnail(name)

    def recent_images(self: Studio, limit: int, search: str | None = None) -> list[Any]:
        """The newest catalogued image rows (``search`` filters by prompt)."""
        return self.catalog.images.list(limit=limit, search=search or None).items

    def images_of(self: Studio, result: Any) -> list[Any]:
        """The catalogued images of a queue item's result (``wait``'s or its future's)."""
        return self._result_images(result)


def open_view(kind: str, area: str = "right", root: str | None = None, **kwargs: Any) -> Any:
    """Make one of the default studio's views and dock it: what the lab extension's commands
    run in the kernel. ``kind`` is a key of ``widgets.hub.VIEWS``; ``root`` picks the studio
    root if the kernel has no default studio yet (empty -> ``$INVOKE_NB_ROOT`` or
    ``~/invoke-nb``). Returns ``(widget, panel)``."""
    from invoke_nb.studio import studio
    from invoke_nb.widgets.hub import view_class
    from invoke_nb.widgets.panel import AREAS, show_in_panel

    view_class(kind)  # checked before the studio opens its catalog
    if area not in AREAS:
        raise ValueError(f"unknown panel area {area!r}; choose one of: {', '.join(AREAS)}")
    widget = studio(root or None).views().make(kind, **kwargs)
    return widget, show_in_panel(widget, area=area)
