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

import asyncio
import contextlib
import io
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import wait as futures_wait
from pathlib import Path
from typing import Any

from PIL import Image

from invoke_nb.catalog import Catalog
from invoke_nb.catalog.connection import pid_alive
from invoke_nb.catalog.files import check_image_name
from invoke_nb.catalog.queue import TERMINAL, new_owner, release_owner
from invoke_nb.catalog.sink import CatalogImageSink
from invoke_nb.executors.local import LocalExecutor
from invoke_nb.graph.errors import GraphError
from invoke_nb.graph.model import Graph
from invoke_nb.graph.runner import RunResult
from invoke_nb.models.cache import get_model_cache
from invoke_nb.models.manager import ModelManager
from invoke_nb.nodes.context import Cancelled, Services, memory_image
from invoke_nb.nodes.types import ImageField
from invoke_nb.presets import Presets
from invoke_nb.queue.batch import Batch, expand_batch, split_batch_nodes
from invoke_nb.queue.events import EventBus
from invoke_nb.queue.processor import QueueNotRunningError, QueueProcessor
from invoke_nb.studio_images import StudioBoards, StudioImages

__all__ = ["Studio", "StudioImage", "StudioResult", "studio"]


class StudioImage:
    """A catalogued image: shows inline, and passes back into graphs as an image input."""

    def __init__(self, studio: Studio, image_name: str) -> None:
        self._studio = studio
        self.image_name = image_name
        self._record: Any = None

    @property
    def name(self) -> str:
        return self.image_name

    @property
    def record(self) -> Any:
        """The catalog row (an ``ImageRecord``), refreshed on each access."""
        self._record = self._studio.catalog.images.get(self.image_name)
        return self._record

    @property
    def pil(self) -> Image.Image:
        """The full image as PIL."""
        return self._studio.catalog.images.get_pil(self.image_name)

    @property
    def path(self) -> Path:
        """The PNG on disk."""
        return self._studio.catalog.images.path(self.image_name)

    @property
    def metadata(self) -> dict[str, Any] | None:
        """InvokeAI-style generation metadata (``invokeai_metadata``)."""
        return self._studio.catalog.images.get_metadata(self.image_name)

    @property
    def graph(self) -> Graph | None:
        """The graph that made the image (``invokeai_graph``), ready to edit or re-run."""
        data = self._studio.catalog.images.get_graph(self.image_name)
        return Graph.from_dict(data) if data else None

    @property
    def field(self) -> ImageField:
        """A reference to use as an image input."""
        return ImageField(image_name=self.image_name)

    def star(self, starred: bool = True) -> StudioImage:
        self._studio.catalog.images.star([self.image_name], starred)
        return self

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.pil.save(buf, format="PNG")
        return buf.getvalue()

    def __repr__(self) -> str:
        return f"<StudioImage {self.image_name}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StudioImage) and other.image_name == self.image_name

    def __hash__(self) -> int:
        return hash(self.image_name)


class StudioResult:
    """What ``studio.run`` returns: the run result plus the images it catalogued."""

    def __init__(self, run: RunResult, images: list[StudioImage], item_id: int | None) -> None:
        self.run = run
        self.images = images
        self.item_id = item_id

    @property
    def outputs(self) -> dict[str, Any]:
        return self.run.outputs

    @property
    def executed(self) -> set[str]:
        return self.run.executed

    @property
    def cached(self) -> set[str]:
        return self.run.cached

    @property
    def stats(self) -> list[Any]:
        return self.run.stats

    @property
    def image(self) -> StudioImage:
        """The last catalogued image (most graphs make one)."""
        if not self.images:
            raise LookupError("this run catalogued no image")
        return self.images[-1]

    def __repr__(self) -> str:
        return (
            f"<StudioResult item={self.item_id} images={len(self.images)} "
            f"executed={len(self.executed)} cached={len(self.cached)}>"
        )


class StudioStats:
    """Run statistics (like InvokeAI's invocation stats); a table in a notebook."""

    def __init__(
        self, by_type: dict[str, dict[str, float]], runs: int, cache: dict[str, Any]
    ) -> None:
        self.by_type = by_type
        self.runs = runs
        self.cache = cache

    def rows(self) -> list[tuple[str, int, int, float, float, float]]:
        mib = 1024**2
        return [
            (
                t,
                int(a["count"]),
                int(a["cached"]),
                a["seconds"],
                a["peak_ram"] / mib,
                a["peak_vram"] / mib,
            )
            for t, a in sorted(self.by_type.items(), key=lambda kv: -kv[1]["seconds"])
        ]

    def __str__(self) -> str:
        head = f"{'node type':<24}{'count':>7}{'cached':>8}{'seconds':>10}{'RAM MiB':>10}{'VRAM MiB':>10}"
        lines = [f"{self.runs} runs", head]
        lines += [
            f"{t:<24}{c:>7}{k:>8}{s:>10.3f}{r:>10.0f}{v:>10.0f}" for t, c, k, s, r, v in self.rows()
        ]
        hits, misses = self.cache.get("hits", 0), self.cache.get("misses", 0)
        lines.append(
            f"model cache: {hits} hits, {misses} misses, {self.cache.get('loads', 0)} loads"
        )
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        import html

        cells = "".join(
            f"<tr><td>{html.escape(t)}</td><td>{c}</td><td>{k}</td><td>{s:.3f}</td><td>{r:.0f}</td><td>{v:.0f}</td></tr>"
            for t, c, k, s, r, v in self.rows()
        )
        return (
            f"<p>{self.runs} runs; model cache: {self.cache.get('hits', 0)} hits, "
            f"{self.cache.get('misses', 0)} misses</p><table><tr><th>node type</th><th>count</th>"
            f"<th>cached</th><th>seconds</th><th>peak RAM MiB</th><th>peak VRAM MiB</th></tr>{cells}</table>"
        )


class Studio:
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
        self._views: dict[str, list[Any]] = {}  # widgets made here (weak), for gallery actions
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
            image_sink=_TrackingSink(self, emit),
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

    def wait(self, item_id: int, timeout: float | None = None) -> RunResult:
        """Block until a queue item finishes; its result, or its error raised. Without a
        queue thread (``start_queue=False``) a pending item runs here, now.

        An item another kernel ran (the shared queue) gives a result without in-memory
        outputs: its images are in the catalog (``StudioResult`` of :meth:`run` lists them).
        """
        fut = self.queue.future(item_id)
        if not fut.done() and not self.queue.is_running:
            self.queue.run_here(item_id)
        end = None if timeout is None else time.monotonic() + timeout
        while not fut.done():
            left = self._POLL if end is None else min(self._POLL, end - time.monotonic())
            futures_wait([fut], timeout=max(0.0, left))
            if fut.done():
                break
            if end is not None and time.monotonic() >= end:
                raise TimeoutError(f"queue item {item_id} did not finish in time")
            self._check_item(item_id)
        return fut.result()

    _POLL = 1.0  # seconds between catalog checks while waiting for an item

    def _check_item(self, item_id: int) -> None:
        """While waiting: settle an item this kernel will not finish itself.

        Finished elsewhere (shared queue): resolve its future from the catalog. Running in
        a process that is gone: fail it (as a restart would). Pending on this Studio's own
        queue while that queue is not running: raise instead of waiting for ever."""
        if item_id in self.queue.running_items:
            return
        item = self.catalog.queue.get(item_id)
        fut = self.queue.future(item_id)
        if item.status in TERMINAL:
            time.sleep(0.05)  # this kernel may be recording it right now
            if not fut.done() and item_id not in self.queue.running_items:
                self.queue.resolve_from_catalog(item)
        elif item.status == "in_progress" and item.worker_pid not in (None, os.getpid()):
            if not pid_alive(int(item.worker_pid)):
                self.catalog.queue.fail_interrupted(
                    f"the kernel running it (PID {item.worker_pid}) stopped"
                )
        elif (
            item.status == "pending"
            and not self.queue.is_running
            and (item.owner == self.owner or item.owner is None)
        ):
            raise QueueNotRunningError(
                f"queue item {item_id} waits for this Studio's queue, which is not running "
                "(start_queue=False, or the Studio is closing): call studio.queue.start()"
            )

    def _session_images(self, session_id: str) -> list[str]:
        with self.catalog.db.connection() as conn:
            rows = conn.execute(
                "SELECT image_name FROM images WHERE session_id = ? AND NOT is_intermediate "
                "ORDER BY created_at, image_name",
                [session_id],
            ).fetchall()
        return [r[0] for r in rows]

    def run(
        self, graph: Graph, *, progress: bool = True, timeout: float | None = None
    ) -> StudioResult:
        """Run ``graph`` now (ahead of queued items) and wait, with a progress bar.

        Ctrl-C (a kernel interrupt) cancels the run between steps and raises ``Cancelled``.
        A studio without a queue thread (``start_queue=False``) runs the graph in this
        thread, with the same events and catalog writes (``timeout`` does not apply).
        """
        (item_id,) = self.enqueue(_single(graph), prepend=True)
        images: list[StudioImage] = []
        done = threading.Event()
        bar = _ProgressBar(len(graph.nodes)) if progress else None

        def on_event(kind: str, payload: dict[str, Any]) -> None:
            if payload.get("item_id") != item_id:
                return
            if kind == "image_saved":
                images.append(StudioImage(self, payload["image_name"]))
            if bar is not None:
                bar.update(kind, payload)

        off = self.events.on("*", on_event)
        fut = self.queue.future(item_id)
        fut.add_done_callback(lambda _f: done.set())
        try:
            try:
                if not self.queue.is_running:
                    self.queue.run_here(item_id)
                ticks = 0
                while not done.wait(0.05):
                    if timeout is not None and (timeout := timeout - 0.05) <= 0:
                        raise TimeoutError(f"queue item {item_id} did not finish in time")
                    ticks += 1
                    if ticks % int(self._POLL / 0.05) == 0:
                        self._check_item(item_id)
            except KeyboardInterrupt:
                self.queue.cancel([item_id])
                done.wait(30)
                raise Cancelled(f"run {item_id} interrupted") from None
            result = fut.result()
        finally:
            off()
            if bar is not None:
                bar.close()
        return StudioResult(result, images or self._result_images(result), item_id)

    def _result_images(self, result: RunResult) -> list[StudioImage]:
        """Images of a result: from the output cache, else (ran elsewhere) its session's."""
        found = self._output_images(result)
        if not found and not result.instances:
            found = [StudioImage(self, n) for n in self._session_images(result.session_id)]
        return found

    def _output_images(self, result: RunResult) -> list[StudioImage]:
        """Catalogued images a run returned from the output cache (nothing new was saved)."""
        names = []
        for nid, insts in result.instances.items():
            if result.graph.nodes[nid].is_intermediate:
                continue
            for inst in insts:
                ref = getattr(inst.output, "image", None)
                if isinstance(ref, ImageField):
                    names.append(ref.image_name)
        known = self.catalog.images.exists(names) if names else set()
        return [StudioImage(self, n) for n in names if n in known]

    async def arun(self, graph: Graph) -> StudioResult:
        """``await studio.arun(graph)``: run without blocking the kernel's event loop."""
        (item_id,) = self.enqueue(_single(graph), prepend=True)
        images: list[StudioImage] = []

        def on_event(kind: str, payload: dict[str, Any]) -> None:
            if payload.get("item_id") == item_id:
                images.append(StudioImage(self, payload["image_name"]))

        off = self.events.on("image_saved", on_event)
        try:
            result = await asyncio.to_thread(self.wait, item_id)
        finally:
            off()
        return StudioResult(result, images or self._result_images(result), item_id)

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

    # -- one-liners -----------------------------------------------------------------------
    def _model(self, model: Any) -> Any:
        from invoke_nb.nodes.types import ModelIdentifierField

        if model is None:
            mains = self.models.list(type="main")
            if not mains:
                raise LookupError(
                    "no main model installed: studio.models.install('path | url | org/repo') first"
                )
            rec = mains[0]
        elif isinstance(model, str):
            rec = self.models.get(model)
        else:
            rec = self.models.find(model)
        return ModelIdentifierField(
            key=rec.key, hash=rec.hash, name=rec.name, base=rec.base, type=rec.type
        )

    def _style(self, style: Any, prompt: str, negative: str) -> tuple[str, str]:
        if style is None:
            return prompt, negative
        from invoke_nb.presets import apply_style

        preset = self.presets.find(style) if isinstance(style, str) else style
        return apply_style(preset, prompt, negative)

    def _generation(
        self,
        build: Callable[..., Graph],
        *args: Any,
        model: Any,
        prompt: str,
        negative: str,
        style: Any,
        board: str | None,
        loras: Sequence[Any],
        progress: bool,
        **kw: Any,
    ) -> StudioImage:
        from invoke_nb.graph.standard import OUTPUT

        ident = self._model(model)
        prompt, negative = self._style(style, prompt, negative)
        lora_pairs = [
            (self._model(x[0]), float(x[1]))
            if isinstance(x, (tuple, list))
            else (self._model(x), 1.0)
            for x in loras
        ]
        g = build(ident, *args, prompt, negative=negative, loras=lora_pairs, **kw)
        if board is not None:
            g.set(OUTPUT, board={"board_id": self._board_id(board)})
        result = self.run(g, progress=progress)
        return result.image

    def _board_id(self, board: str) -> str:
        for b in self.catalog.boards.list(include_archived=True):
            if board in (b.board_id, b.board_name):
                return b.board_id
        return self.catalog.boards.create(board).board_id

    def txt2img(
        self,
        prompt: str,
        *,
        model: Any = None,
        negative: str = "",
        width: int = 512,
        height: int = 512,
        steps: int = 30,
        cfg_scale: float = 7.5,
        scheduler: str = "euler",
        seed: int | None = None,
        board: str | None = None,
        loras: Sequence[Any] = (),
        style: Any = None,
        progress: bool = True,
        **kw: Any,
    ) -> StudioImage:
        """Text to image with InvokeAI's standard graph; returns the catalogued image.

        ``model`` is a name, key or record (default: the first main model installed);
        ``loras`` are names or ``(name, weight)`` pairs; ``style`` a style preset name;
        ``board`` a board name or id (created when new). ``seed=None`` draws one.
        """
        from invoke_nb.graph import standard

        return self._generation(
            standard.txt2img,
            model=model,
            prompt=prompt,
            negative=negative,
            style=style,
            board=board,
            loras=loras,
            progress=progress,
            width=width,
            height=height,
            steps=steps,
            cfg_scale=cfg_scale,
            scheduler=scheduler,
            seed=_seed(seed),
            **kw,
        )

    def img2img(
        self,
        image: Any,
        prompt: str,
        *,
        strength: float = 0.75,
        model: Any = None,
        negative: str = "",
        seed: int | None = None,
        board: str | None = None,
        loras: Sequence[Any] = (),
        style: Any = None,
        progress: bool = True,
        **kw: Any,
    ) -> StudioImage:
        """Image to image: ``strength`` 0 keeps the input, 1 ignores it."""
        from invoke_nb.graph import standard

        return self._generation(
            standard.img2img,
            _pil_or_field(image),
            model=model,
            prompt=prompt,
            negative=negative,
            style=style,
            board=board,
            loras=loras,
            progress=progress,
            strength=strength,
            seed=_seed(seed),
            **kw,
        )

    def inpaint(
        self,
        image: Any,
        mask: Any,
        prompt: str,
        *,
        strength: float = 1.0,
        model: Any = None,
        negative: str = "",
        seed: int | None = None,
        board: str | None = None,
        loras: Sequence[Any] = (),
        style: Any = None,
        progress: bool = True,
        **kw: Any,
    ) -> StudioImage:
        """Repaint where ``mask`` is black (white keeps; InvokeAI's convention)."""
        from invoke_nb.graph import standard

        return self._generation(
            standard.inpaint,
            _pil_or_field(image),
            _pil_or_field(mask),
            model=model,
            prompt=prompt,
            negative=negative,
            style=style,
            board=board,
            loras=loras,
            progress=progress,
            strength=strength,
            seed=_seed(seed),
            **kw,
        )

    def outpaint(
        self,
        image: Any,
        prompt: str,
        *,
        model: Any = None,
        negative: str = "",
        seed: int | None = None,
        board: str | None = None,
        loras: Sequence[Any] = (),
        style: Any = None,
        progress: bool = True,
        **kw: Any,
    ) -> StudioImage:
        """Fill the transparent pixels of an RGBA image."""
        from invoke_nb.graph import standard

        img = image.pil if isinstance(image, StudioImage) else image
        return self._generation(
            standard.outpaint,
            img,
            model=model,
            prompt=prompt,
            negative=negative,
            style=style,
            board=board,
            loras=loras,
            progress=progress,
            seed=_seed(seed),
            **kw,
        )

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
    ) -> Any:
        """Bring an InvokeAI library in: images with metadata, boards, starred and
        intermediate flags, created times, user workflows, style presets and model records
        (registered in place). Never writes to the InvokeAI root; a second run adds nothing;
        an interrupted run continues where it stopped. ``files``: "link" (hard links, copies
        across file systems), "copy" or "none" (records only). Returns an
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

    # -- widgets --------------------------------------------------------------------------
    def gallery(self, **filters: Any) -> Any:
        """A gallery widget over this studio's images (``board=``, ``starred=``, ``search=``,
        ``order=`` set its filters); live while the queue runs."""
        from invoke_nb.widgets.gallery import Gallery

        gallery = Gallery(self, **filters)
        gallery.on_recall(lambda image, graph: self._to_editor(graph))
        gallery.on_use(self._use_image)
        return gallery

    def _latest(self, kind: str) -> Any:
        refs = self._views.get(kind, [])
        alive = [
            w for w in (r() for r in refs) if w is not None and not getattr(w, "_closed", False)
        ]
        return alive[-1] if alive else None

    def _keep(self, kind: str, widget: Any) -> Any:
        import weakref

        self._views.setdefault(kind, []).append(weakref.ref(widget))
        return widget

    @staticmethod
    def _present(widget: Any, area: str) -> None:
        """Dock a widget made from another widget's action (JupyterLab), else show it."""
        try:
            widget.show(area=area)
        except Exception:
            from IPython.display import display

            display(widget)

    def _to_editor(self, graph: Graph) -> Any:
        """Gallery "recall": the graph goes into the newest editor, or a new docked one."""
        editor = self._latest("editor")
        if editor is not None:
            editor.graph = graph
            return editor
        editor = self.editor(graph)
        self._present(editor, "main")
        return editor

    def _use_image(self, image: StudioImage, purpose: str) -> Any:
        """Gallery "use as": a canvas layer, or an img2img graph in the editor."""
        if purpose == "canvas":
            canvas = self._latest("canvas")
            if canvas is not None:
                canvas.add_layer(image)
                return canvas
            canvas = self.canvas(image)
            self._present(canvas, "split-right")
            return canvas
        from invoke_nb.graph import standard

        graph = standard.img2img(self._model(None), image.pil, image.record.positive_prompt or "")
        return self._to_editor(graph)

    def queue_view(self) -> Any:
        """A widget listing queue items by batch, with progress, cancel and retry."""
        from invoke_nb.widgets.queue_view import QueueView

        return QueueView(self)

    def models_view(self) -> Any:
        """A widget listing installed models, installing and removing them, with cache stats."""
        from invoke_nb.widgets.model_view import ModelView

        return ModelView(self)

    def editor(self, graph: Graph | None = None) -> Any:
        """A node graph editor wired to this studio: Invoke queues the graph (with a batch
        count), nodes show progress and output images, workflows save to the library."""
        from invoke_nb.widgets.graph_editor import GraphEditor

        return self._keep("editor", GraphEditor(graph, studio=self))

    def canvas(self, image: Any = None) -> Any:
        """A canvas (layers, inpaint mask, bounding box) that generates into its box with
        txt2img, img2img, inpaint or outpaint, chosen from what the box holds."""
        from invoke_nb.widgets.canvas import Canvas

        return self._keep("canvas", Canvas(self, image))


class _TrackingSink:
    """The catalog sink, plus an ``image_saved`` event per image."""

    def __init__(self, studio: Studio, emit: Callable[[str, dict[str, Any]], None]) -> None:
        self.studio = studio
        self.emit = emit

    def save(self, image: Image.Image, **kw: Any) -> str:
        name = self.studio.sink.save(image, **kw)
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
        return self.studio.sink.get(name)


def _single(graph: Graph) -> Graph:
    """``graph`` when it makes one queue item; batch nodes make several, so they go through
    :meth:`Studio.enqueue` (which returns every item id) instead."""
    from invoke_nb.nodes.batch import BATCH_TYPES
    from invoke_nb.queue.batch import BatchError

    batch_nodes = [nid for nid, s in graph.nodes.items() if s.type in BATCH_TYPES]
    if batch_nodes:
        raise BatchError(
            f"graph has batch nodes ({', '.join(batch_nodes)}): it makes one queue item per "
            "value, so use studio.enqueue(graph) and studio.wait(item_id) for each"
        )
    return graph


class _ProgressBar:
    """A tqdm bar over node executions, with denoise steps in the postfix."""

    def __init__(self, total: int) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, unit="node", leave=False)

    def update(self, kind: str, payload: dict[str, Any]) -> None:
        if kind == "node_complete":
            self.bar.update(1)
        elif kind == "node_started":
            self.bar.set_description(str(payload.get("node_type", "")))
        elif kind == "progress" and payload.get("step") is not None:
            self.bar.set_postfix_str(f"step {payload['step']}/{payload.get('total')}")

    def close(self) -> None:
        self.bar.close()


_default: Studio | None = None
_default_lock = threading.Lock()


def studio(root: str | os.PathLike[str] | None = None) -> Studio:
    """The kernel's default Studio (created on first use)."""
    global _default
    with _default_lock:
        if _default is None or _default._closed:
            _default = Studio(root)
        return _default


def _seed(seed: int | None) -> int:
    import random

    return random.randint(0, 2**32 - 1) if seed is None else int(seed)


def _pil_or_field(image: Any) -> Any:
    """PIL images stay PIL (the graph keeps them in memory); catalog images pass by name."""
    if isinstance(image, StudioImage):
        return image.pil
    if isinstance(image, (str, Path)) and Path(image).exists():
        return Image.open(image)
    return image
