"""The Studio: the notebook face of the engine.

A studio root (default ``~/invoke-nb``, env ``INVOKE_NB_ROOT``) holds the catalog, the images
and the models folder. A ``Studio`` wires them to the kernel-wide model cache, a queue
processor thread, an executor and an event bus::

    studio = inb.Studio()
    studio.models.install("path/or/repo-id", name="my-model")
    img = studio.txt2img("a lighthouse at dusk", model="my-model", seed=1)
    img                      # shows inline
    studio.sql("select model_name, count(*) from images group by 1").df()
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from PIL import Image

from invoke_nb.catalog import Catalog
from invoke_nb.catalog.files import check_image_name
from invoke_nb.catalog.queue import new_owner, release_owner
from invoke_nb.catalog.sink import CatalogImageSink
from invoke_nb.executors.local import LocalExecutor
from invoke_nb.graph.errors import GraphError
from invoke_nb.graph.model import Graph
from invoke_nb.models.cache import get_model_cache
from invoke_nb.models.manager import ModelManager
from invoke_nb.nodes.context import ImageSink, Services, memory_image
from invoke_nb.nodes.types import ImageField
from invoke_nb.presets import Presets
from invoke_nb.queue.batch import Batch, expand_batch, split_batch_nodes
from invoke_nb.queue.events import EventBus
from invoke_nb.queue.processor import QueueProcessor
from invoke_nb.studio_generate import Generation
from invoke_nb.studio_images import StudioBoards, StudioImages
from invoke_nb.studio_results import StudioImage, StudioResult, StudioStats
from invoke_nb.studio_run import Running
from invoke_nb.studio_views import StudioViews

__all__ = ["Studio", "StudioImage", "StudioResult", "studio"]


class Studio(Running, Generation, StudioViews):
    """Catalog, models, cache, queue and events of one studio root."""

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        start_queue: bool = True,
        queue_id: str = "default",
        precision: str | None = None,
    ) -> None:
        if precision is not None:  # checked before anything is opened
            from invoke_nb.models.devices import normalize_precision

            normalize_precision(precision)
        self.catalog = Catalog(root)
        self.root = self.catalog.root
        self.events = EventBus()
        # denoise previews every N steps while a subscriber asked for them (events.on(...,
        # previews=True), as the gallery and canvas do)
        self.preview_every = 1
        self.models = ModelManager(
            self.root / "models", self.catalog.models, cache=get_model_cache()
        )
        if precision is not None:  # the kernel-wide cache: every Studio of the kernel
            self.models.cache.precision = precision
        self._model_listener = self._forward_model_event
        self.models.cache.add_listener(self._model_listener)
        self.executor: Any = LocalExecutor()
        self.sink = CatalogImageSink(self.catalog)
        self.presets = Presets(self.catalog.style_presets)
        self.boards = StudioBoards(self)  # the public face of catalog.boards / .images
        self.images = StudioImages(self, self.boards)
        # who queued an item: this Studio's run()/arun()/enqueue() items are run only here
        # (or, once it is closed or its process is gone, by whichever kernel is left)
        self.owner = new_owner()
        self.queue = QueueProcessor(
            self.catalog.queue,
            self.executor,
            self.events,
            self._services,
            queue_id=queue_id,
            owner=self.owner,
        )
        self.queue_id = queue_id
        self.recovered_items = self.catalog.queue.fail_interrupted(
            "the kernel running it stopped before it finished"
        )
        self._closed = False
        if start_queue:
            self.queue.start()

    # -- wiring -----------------------------------------------------------------------
    def _services(
        self, item: Any, cancel: threading.Event, emit: Callable[[str, dict[str, Any]], None]
    ) -> Services:
        return Services(
            image_sink=_TrackingSink(self.sink, emit),
            models=self.models,
            emit=emit,
            cancel=cancel,
            extra={"style_presets": self.presets.find},
            preview_every=self.preview_every if self.events.wants_previews() else 0,
        )

    def _forward_model_event(self, kind: str, payload: dict[str, Any]) -> None:
        mapped = {"load_started": "model_load_started", "load_complete": "model_load_complete"}.get(
            kind, kind
        )
        if mapped in ("model_load_started", "model_load_complete"):
            self.events.emit(mapped, payload)

    def use_executor(self, executor: Any = "local", **kwargs: Any) -> Any:
        """Run queue items elsewhere: ``"local"`` (this kernel), ``"ray"`` (a Ray cluster,
        ``address=``, ``workers=``, ``num_gpus_per_worker=``; see ``RayExecutor``) or an
        executor object. The previous executor is closed; returns the new one."""
        if isinstance(executor, str):
            if executor == "local":
                new: Any = LocalExecutor(**kwargs)
            elif executor == "ray":
                from invoke_nb.executors.ray import RayExecutor

                new = RayExecutor(**kwargs)
            else:
                raise ValueError(f"unknown executor {executor!r}; use 'local' or 'ray'")
        else:
            if kwargs:
                raise TypeError(
                    "keyword arguments go with an executor name, not an executor object"
                )
            new = executor
        old, self.executor = self.executor, new
        self.queue.executor = new
        self.queue.wake()
        if old is not new:
            old.close()
        return new

    # -- running ------------------------------------------------------------------------
    def enqueue(
        self,
        graph: Graph,
        batch: Any = None,
        *,
        runs: int = 1,
        prepend: bool = False,
        destination: str | None = None,
        shared: bool = False,
    ) -> list[int]:
        """Queue ``graph`` (expanded by ``batch`` and ``runs``); returns the item ids at once.

        Items belong to this Studio: another kernel on the same root does not run them while
        this Studio is open. ``shared=True`` puts them in the shared queue instead, where the
        queue of every kernel on the root (same ``queue_id``) may take them; :meth:`wait`
        then reads the outcome from the catalog when another kernel ran the item."""
        self._check_open()
        # batch/generator nodes become batch data, as InvokeAI's editor does on enqueue
        graph, node_groups = split_batch_nodes(graph, self._board_image_names)
        graph.validate()
        b = Batch.parse(batch, runs)
        b = Batch(node_groups + b.data, b.runs)
        b.validate(graph)
        data = self._portable(graph).to_dict()
        values = (
            [[v.to_json() for v in fv] for fv in expand_batch(b)] if b.data else [None] * b.runs
        )
        import uuid

        batch_id = str(uuid.uuid4())
        priority = 1_000_000 + int(time.time()) if prepend else 0
        ids = self.catalog.queue.enqueue(
            [data] * len(values),
            batch_id=batch_id,
            queue_id=self.queue_id,
            priority=priority,
            field_values=values,
            destination=destination,
            origin="python",
            owner=None if shared else self.owner,
        )
        self.events.emit(
            "batch_enqueued", {"batch_id": batch_id, "item_ids": ids, "count": len(ids)}
        )
        self.queue.wake()
        return ids

    def _board_image_names(self, board_id: str, category: str) -> list[str]:
        """A board's image names for an image generator node (InvokeAI's "images" are the
        general category, "assets" the control/mask/user/other ones), newest first."""
        cats = ["general"] if category == "images" else ["control", "mask", "user", "other"]
        names: list[str] = []
        cursor = None
        while True:
            page = self.catalog.images.list(
                board_id=board_id, category=cats, limit=500, cursor=cursor
            )
            names += [r.image_name for r in page.items]
            if page.next_cursor is None:
                return names
            cursor = page.next_cursor

    def _portable(self, graph: Graph) -> Graph:
        """Images that live only in kernel memory are catalogued (as intermediates) so that a
        queued graph still finds them after a restart or on another worker."""
        g = None
        for nid, spec in graph.nodes.items():
            for fname, value in spec.values.items():
                if isinstance(value, ImageField) and not value.image_name.startswith("mem-"):
                    try:  # a name from a shared workflow or a PNG's graph: stays in images/
                        check_image_name(value.image_name)
                    except ValueError as e:
                        raise GraphError(
                            f"node {nid!r} field {fname!r}: {e}", node_id=nid, field=fname
                        ) from None
                if isinstance(value, ImageField) and value.image_name.startswith("mem-"):
                    img = memory_image(value.image_name)
                    if img is None:
                        continue
                    if g is None:
                        g = graph.copy()
                    rec = self.catalog.images.save(
                        img, is_intermediate=True, origin="internal", category="user"
                    )
                    g.nodes[nid].values[fname] = ImageField(image_name=rec.image_name)
        return g or graph

    def cancel(
        self, item_ids: Sequence[int] | int | None = None, *, batch_id: str | None = None
    ) -> list[int]:
        """Cancel items (given ids, a batch, or everything pending and running)."""
        if isinstance(item_ids, int):
            item_ids = [item_ids]
        if item_ids is None:  # everything of this kernel's (and the shared queue's)
            q = self.catalog.queue.list(
                status=["pending", "in_progress"], batch_id=batch_id, queue_id=self.queue_id
            )
            item_ids = [i.item_id for i in q if i.owner in (self.owner, None)]
        return self.queue.cancel(list(item_ids))

    def retry(self, item_ids: Sequence[int] | int) -> list[int]:
        """Queue failed or canceled items again."""
        ids = self.catalog.queue.retry(
            [item_ids] if isinstance(item_ids, int) else list(item_ids), owner=self.owner
        )
        self.queue.wake()
        return ids

    def queue_items(self, **filters: Any) -> list[Any]:
        """Queue items (``status=``, ``batch_id=``) in execution order."""
        return self.catalog.queue.list(queue_id=self.queue_id, **filters)

    # -- statistics, recall -------------------------------------------------------------
    def stats(self) -> StudioStats:
        """Per node type over recent runs: count, cached, seconds, peak RAM/VRAM; plus the
        model cache's hits, misses and loads. Shows as a table in a notebook."""
        from invoke_nb.graph.runner import aggregate_stats

        runs = self.queue.recent_results()
        by_type = aggregate_stats([s for r in runs for s in r.stats])
        return StudioStats(by_type, len(runs), self.models.cache.stats().as_dict())

    def recall(self, image: Any, *, model: Any = None) -> Graph:
        """The graph that made an image (ours, InvokeAI's, a PNG path, or a file object), with
        model references resolved to models installed here (by key, hash, then name and
        base). ``model`` stands in for old metadata (InvokeAI 2.x ``Dream``) that names none."""
        from invoke_nb.interchange.recall import recall_graph

        return recall_graph(self, image, model=model)

    def rerun(
        self, image: Any, *, seed: int | None = None, model: Any = None, progress: bool = True
    ) -> StudioImage:
        """Generate an image again from its graph; ``seed`` changes the seed. An image made by
        InvokeAI 6.x with the same model re-generates pixel for pixel."""
        from invoke_nb.interchange.recall import set_seed

        g = self.recall(image, model=model)
        if seed is not None:
            set_seed(g, seed)
        return self.run(g, progress=progress).image

    def import_invokeai(
        self,
        root: str | os.PathLike[str],
        *,
        files: str = "link",
        models: bool = True,
        batch_size: int | None = None,
        progress: Any = True,
        index: bool | str = "background",
    ) -> Any:
        """Bring an InvokeAI library in: images with metadata, boards, starred and
        intermediate flags, created times, user workflows, style presets and model records
        (registered in place). Never writes to the InvokeAI root; a second run adds nothing;
        an interrupted run continues where it stopped. ``files``: "link" (hard links, copies
        across file systems), "copy" or "none" (records only). ``index``: the search index
        of the new rows is built by a background thread (``"background"``: the gallery and
        search work at once, searches scan what is not indexed yet), before returning
        (True) or when the catalog next opens (False). Returns an
        :class:`~invoke_nb.interchange.invokeai.InvokeAIImportReport` (print it)."""
        from invoke_nb.interchange.invokeai import BATCH_ROWS, import_invokeai

        self._check_open()
        return import_invokeai(
            self.catalog,
            root,
            files=files,  # type: ignore[arg-type]
            models=models,
            batch_size=batch_size or BATCH_ROWS,
            progress=progress,
            index=index,  # type: ignore[arg-type]
        )

    # -- catalog ------------------------------------------------------------------------
    def sql(self, query: str, params: list[Any] | None = None) -> Any:
        """Read-only SQL over the catalog; returns a DuckDB relation (``.df()``, ``.pl()``)."""
        return self.catalog.sql(query, params)

    def image(self, name: str) -> StudioImage:
        """A catalogued image by name."""
        self.catalog.images.get(name)
        return StudioImage(self, name)

    # -- lifecycle ----------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this Studio is closed")

    def close(self) -> None:
        """Stop the queue thread and release the catalog (the model cache stays warm)."""
        if self._closed:
            return
        self._closed = True
        self.queue.stop()
        release_owner(self.owner)  # what it left pending may now run in another kernel
        with contextlib.suppress(Exception):
            self.executor.close()
        self.models.cache.remove_listener(self._model_listener)
        with contextlib.suppress(Exception):
            self.catalog.close()

    def __enter__(self) -> Studio:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Studio root={str(self.root)!r}>"


class _TrackingSink:
    """An image sink (the catalog's), plus an ``image_saved`` event per image: what the
    runner gets, so saving goes runner -> sink, never back through the Studio."""

    def __init__(self, sink: ImageSink, emit: Callable[[str, dict[str, Any]], None]) -> None:
        self.sink = sink
        self.emit = emit

    def save(self, image: Image.Image, **kw: Any) -> str:
        name = self.sink.save(image, **kw)
        self.emit(
            "image_saved",
            {
                "image_name": name,
                "node_id": kw.get("node_id"),
                "width": image.width,
                "height": image.height,
            },
        )
        return name

    def get(self, name: str) -> Image.Image | None:
        return self.sink.get(name)


_default: Studio | None = None
_default_lock = threading.Lock()


def studio(root: str | os.PathLike[str] | None = None) -> Studio:
    """The kernel's default Studio (created on first use)."""
    global _default
    with _default_lock:
        if _default is None or _default._closed:
            _default = Studio(root)
        return _default
