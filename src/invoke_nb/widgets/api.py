"""The part of a Studio that widgets may use: one explicit, narrow API.

Widgets are typed against :class:`StudioAPI`, never against ``Studio`` itself, and do not
import the studio module: the Studio makes widgets (through :mod:`invoke_nb.widgets.hub`),
not the other way round. Everything a widget needs from the catalog goes through a method
here, so the catalog's repositories can change without touching a widget.
``tests/widgets/test_studio_api.py`` checks that widgets use nothing else and that
``Studio`` has all of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any, Protocol, runtime_checkable

from PIL import Image

from invoke_nb.graph.model import Graph

__all__ = ["CataloguedImage", "StudioAPI", "is_catalogued"]


class CataloguedImage(Protocol):
    """An image of the catalog as the Studio hands it out (``StudioImage``)."""

    image_name: str

    @property
    def name(self) -> str: ...
    @property
    def pil(self) -> Image.Image: ...


def is_catalogued(obj: Any) -> bool:
    """``obj`` is a catalogued image (checked on its class: reading ``pil`` loads pixels)."""
    return isinstance(getattr(type(obj), "pil", None), property) and hasattr(obj, "image_name")


@runtime_checkable
class StudioAPI(Protocol):
    """What a widget may call on the Studio it was made for."""

    events: Any
    """The event bus: ``events.on(kind, fn, main_thread=..., previews=...)``."""
    models: Any
    """The model manager: ``list``, ``install``, ``remove``, ``cache.stats()``."""
    images: Any
    """The public image repository (``star``, ``move``, ``delete``, ``get``)."""
    boards: Any
    """The public board repository (``list``, ``get``, ``create``)."""
    workflows: Any
    """The workflow library (``list``, ``get``, ``save``, ``delete``, ``mark_opened``)."""
    queue_id: str

    # running
    def enqueue(
        self, graph: Graph, batch: Any = None, *, runs: int = 1, prepend: bool = False
    ) -> list[int]: ...
    def wait(self, item_id: int, timeout: float | None = None) -> Any: ...
    def cancel(
        self, item_ids: Sequence[int] | int | None = None, *, batch_id: str | None = None
    ) -> list[int]: ...
    def retry(self, item_ids: Sequence[int] | int) -> list[int]: ...
    def future(self, item_id: int) -> Future[Any]: ...
    def queue_items(self, **filters: Any) -> list[Any]: ...
    def queue_item(self, item_id: int) -> Any: ...
    def queue_counts(self) -> dict[str, int]: ...
    def queue_paused(self) -> bool: ...
    def prune_queue(self) -> int: ...

    # images
    def image(self, name: str) -> CataloguedImage: ...
    def image_pil(self, name: str) -> Image.Image: ...
    def image_record(self, name: str) -> Any: ...
    def thumbnail(self, name: str) -> Image.Image: ...
    def recent_images(self, limit: int, search: str | None = None) -> list[Any]: ...
    def images_of(self, result: Any) -> list[CataloguedImage]: ...

    # generation and recall
    def model_field(self, model: Any = None) -> Any: ...
    def generation_graph(
        self, builder: str, images: tuple[Any, ...] = (), *, prompt: str, **kw: Any
    ) -> Graph: ...
    def recall(self, image: Any, *, model: Any = None) -> Graph: ...
    def txt2img(self, prompt: str, **kw: Any) -> Any: ...
    def img2img(self, image: Any, prompt: str, **kw: Any) -> Any: ...
    def inpaint(self, image: Any, mask: Any, prompt: str, **kw: Any) -> Any: ...
    def outpaint(self, image: Any, prompt: str, **kw: Any) -> Any: ...
