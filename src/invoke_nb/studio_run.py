"""Running a graph and waiting for it: ``studio.run``, ``arun`` and ``wait``.

A run is a queue item like any other (so the queue's events, catalog writes and
cancellation apply), queued ahead of the others; waiting watches the item's future and,
for items another kernel may run (the shared queue), the catalog row.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import wait as futures_wait
from typing import TYPE_CHECKING, Any

from invoke_nb.catalog.connection import pid_alive
from invoke_nb.catalog.queue import TERMINAL
from invoke_nb.graph.model import Graph
from invoke_nb.graph.runner import RunResult
from invoke_nb.nodes.context import Cancelled
from invoke_nb.queue.processor import QueueNotRunningError
from invoke_nb.studio_results import ProgressBar, StudioImage, StudioResult

if TYPE_CHECKING:
    from invoke_nb.studio import Studio

__all__ = ["Running"]


class Running:
    """Mixed into :class:`~invoke_nb.studio.Studio`: run, arun, wait."""

    def wait(self: Studio, item_id: int, timeout: float | None = None) -> RunResult:
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
                raise self._timeout(item_id)
            self._check_item(item_id)
        return fut.result()

    _POLL = 1.0  # seconds between catalog checks while waiting for an item

    def _timeout(self, item_id: int) -> TimeoutError:
        """The error of a wait that ran out, with the queue's reason when it could not even
        claim items (a full disk refuses the claim's write)."""
        why = getattr(self.queue, "claim_error", None)
        reason = f" (the queue cannot claim items: {why})" if why is not None else ""
        return TimeoutError(f"queue item {item_id} did not finish in time{reason}")

    def _check_item(self: Studio, item_id: int) -> None:
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

    def _session_images(self: Studio, session_id: str) -> list[str]:
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
        bar = ProgressBar(len(graph.nodes)) if progress else None

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
                        raise self._timeout(item_id)
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

    def _result_images(self: Studio, result: RunResult) -> list[StudioImage]:
        """Images of a result: from the output cache, else (ran elsewhere) its session's."""
        found = self._output_images(result)
        if not found and not result.instances:
            found = [StudioImage(self, n) for n in self._session_images(result.session_id)]
        return found

    def _output_images(self: Studio, result: RunResult) -> list[StudioImage]:
        """Catalogued images a run returned from the output cache (nothing new was saved)."""
        names = [ref.image_name for ref in result.image_refs()]
        known = self.catalog.images.exists(names) if names else set()
        return [StudioImage(self, n) for n in names if n in known]

    async def arun(self: Studio, graph: Graph) -> StudioResult:
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
