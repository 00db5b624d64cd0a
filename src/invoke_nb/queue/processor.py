"""The queue processor: a background thread of the kernel that runs queue items one at a time.

An executor with several workers (Ray) says so with a ``concurrency`` attribute; the
processor then keeps up to that many items in flight, each in its own short-lived thread,
so results arrive (and are catalogued) in order of completion.

Items live in the catalog's ``session_queue`` table, so they survive a kernel restart. The
thread claims the next pending item, rebuilds its graph (batch values applied), runs it on
the executor with a fresh cancel event, and records the outcome. A failing item is marked
failed with its error and traceback and the thread moves on; a cancelled one stops between
denoise steps. Results of recent items stay in memory for ``wait()``/``studio.run``.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from invoke_nb.graph.errors import NodeError
from invoke_nb.graph.model import Graph
from invoke_nb.graph.runner import RunResult
from invoke_nb.nodes.context import Cancelled, Services
from invoke_nb.queue.batch import apply_field_values
from invoke_nb.queue.events import EventBus

__all__ = ["QueueItemError", "QueueNotRunningError", "QueueProcessor"]

log = logging.getLogger("invoke_nb.queue")

ServicesFactory = Callable[[Any, threading.Event, Callable[[str, dict[str, Any]], None]], Services]


class QueueItemError(RuntimeError):
    """A queue item another kernel ran failed there; the message carries its error."""


class QueueNotRunningError(RuntimeError):
    """A wait for an item that only this Studio's queue may run, while that queue is stopped."""


class QueueProcessor:
    """Runs the items of one queue id on an executor, in a daemon thread."""

    def __init__(
        self,
        repo: Any,
        executor: Any,
        bus: EventBus,
        make_services: ServicesFactory,
        *,
        queue_id: str = "default",
        keep_results: int = 256,
        owner: str | None = None,
    ) -> None:
        self.repo = repo
        self.executor = executor
        self.bus = bus
        self.make_services = make_services
        self.queue_id = queue_id
        self.keep_results = keep_results
        self.owner = owner  # claims only this owner's, shared and orphaned items
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._running: dict[int, threading.Event] = {}  # item id -> its cancel event
        self._threads: dict[int, threading.Thread] = {}
        self._futures: dict[int, Future[RunResult]] = {}
        self._results: OrderedDict[int, Future[RunResult]] = OrderedDict()
        self._thread: threading.Thread | None = None
        # outcomes the catalog could not take (disk full, file busy): retried by the loop,
        # which claims nothing new meanwhile, so no item stays in_progress for good
        self._unrecorded: dict[int, dict[str, Any]] = {}
        self.claim_error: Exception | None = None
        """Why the last attempt to claim an item failed (None once one succeeds): a waiter
        that times out names it (a full disk, say), instead of only the timeout."""
        self.paused = False

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="invoke-nb-queue", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel the running items and stop the thread."""
        self._stop.set()
        self.cancel_current()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        for t in list(self._threads.values()):
            t.join(timeout)
        self._record_unrecorded()  # a last try; otherwise the next start fails them

    @property
    def is_running(self) -> bool:
        """Whether the worker thread is alive (a studio made with ``start_queue=False`` has
        none until :meth:`start`)."""
        return self._thread is not None and self._thread.is_alive()

    def run_here(self, item_id: int) -> None:
        """Run one pending item in the calling thread, with the same events, catalog writes
        and result future as the worker thread gives it. Nothing happens when the item is
        no longer pending. A KeyboardInterrupt cancels the item, then propagates."""
        item = self.repo.claim(item_id)
        if item is None:
            return
        try:
            self._run_item(item)
        except BaseException:  # Ctrl-C (KeyboardInterrupt) mid-run: record it, then re-raise
            with self._lock:
                self._running.pop(item_id, None)
            try:
                status, _ = self.repo.finish(item_id, "canceled")
            except Exception:
                log.exception("could not record the outcome of queue item %s", item_id)
                status = "canceled"
            base = {"item_id": item_id, "batch_id": item.batch_id, "session_id": item.session_id}
            self.bus.emit("queue_item_status_changed", {**base, "status": status})
            self._resolve(item_id, None, Cancelled(f"queue item {item_id} was interrupted"))
            raise

    def wake(self) -> None:
        """Tell the thread new items are waiting."""
        self._wake.set()

    def pause(self) -> None:
        """Finish the running item, then take no new ones until :meth:`resume`."""
        self.paused = True

    def resume(self) -> None:
        """Take items again after :meth:`pause`."""
        self.paused = False
        self._wake.set()

    @property
    def running_items(self) -> list[int]:
        """Ids of every item in flight (several with a multi-worker executor)."""
        with self._lock:
            return list(self._running)

    def concurrency(self) -> int:
        """How many items may run at once: the executor's ``concurrency`` (default 1)."""
        try:
            return max(1, int(getattr(self.executor, "concurrency", 1) or 1))
        except (TypeError, ValueError):
            return 1

    # -- results ----------------------------------------------------------------------
    def future(self, item_id: int) -> Future[RunResult]:
        """A future resolved with the item's :class:`RunResult` (or its error)."""
        with self._lock:
            fut = self._results.get(item_id) or self._futures.get(item_id)
            if fut is None:
                fut = Future()
                self._futures[item_id] = fut
            return fut

    def _resolve(self, item_id: int, result: RunResult | None, error: BaseException | None) -> None:
        with self._lock:
            fut = self._futures.pop(item_id, None) or Future()
            self._results[item_id] = fut
            while len(self._results) > self.keep_results:
                self._results.popitem(last=False)
        if not fut.done():
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(result)  # type: ignore[arg-type]

    def resolve_from_catalog(self, item: Any) -> None:
        """Settle the future of an item another kernel finished, from its catalog row: a
        result without in-memory outputs (its images are in the catalog), or its error."""
        if item.status == "completed":
            graph = Graph.from_dict(item.graph)
            result = RunResult(
                graph=graph,
                session_id=item.session_id,
                instances={},
                executed=set(),
                cached=set(),
                values={},
                stats=[],
                seconds=0.0,
            )
            self._resolve(item.item_id, result, None)
        elif item.status == "canceled":
            self._resolve(item.item_id, None, Cancelled(f"queue item {item.item_id} was canceled"))
        else:
            self._resolve(
                item.item_id,
                None,
                QueueItemError(
                    f"queue item {item.item_id} {item.status} in another kernel: "
                    f"{item.error_type}: {item.error_message}"
                ),
            )

    def recent_results(self) -> list[RunResult]:
        """Results of the recently finished items that succeeded, oldest first."""
        with self._lock:
            futs = list(self._results.values())
        return [
            f.result()
            for f in futs
            if f.done() and f.exception() is None and f.result() is not None
        ]

    # -- cancel -----------------------------------------------------------------------
    def cancel_current(self) -> int | None:
        """Stop the running items between steps; returns the (oldest) one's id."""
        with self._lock:
            running = list(self._running.items())
        for _, ev in running:
            ev.set()
        return running[0][0] if running else None

    def cancel(self, item_ids: list[int]) -> list[int]:
        """Cancel items: the running ones through their event first (the node stops at its
        next step check, not after a catalog write), then the rows in the table."""
        with self._lock:
            running = {i: ev for i, ev in self._running.items() if i in item_ids}
        for ev in running.values():
            ev.set()
        done = self.repo.cancel(item_ids)
        for i in done:
            self.bus.emit("queue_item_status_changed", {"item_id": i, "status": "canceled"})
            if i not in running:
                self._resolve(i, None, Cancelled(f"queue item {i} was canceled"))
        return done

    # -- the loop ---------------------------------------------------------------------
    def _record_unrecorded(self) -> bool:
        """Retry writing outcomes that failed to reach the catalog; True when none is left."""
        with self._lock:
            waiting = list(self._unrecorded.items())
        for item_id, final in waiting:
            try:
                self.repo.finish(item_id, **final)
            except Exception as exc:
                log.warning("queue item %s: outcome still not recorded (%s)", item_id, exc)
                return False
            with self._lock:
                self._unrecorded.pop(item_id, None)
        return True

    def _loop(self) -> None:
        while not self._stop.is_set():
            item = None
            limit = self.concurrency()
            with self._lock:
                in_flight = len(self._running)
            if self._unrecorded and not self._record_unrecorded():
                self._stop.wait(1.0)
                continue
            if not self.paused and in_flight < limit:
                try:
                    item = self.repo.claim_next(self.queue_id, owner=self.owner)
                    self.claim_error = None
                except Exception as exc:
                    self.claim_error = exc
                    log.exception("could not claim the next queue item")
            if item is None:
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            cancel = threading.Event()
            with self._lock:
                self._running[item.item_id] = cancel
            if limit == 1 and in_flight == 0:
                # one at a time: each item's final write also claims the next one
                while item is not None:
                    item = self._run_item(item, cancel, claim_next=True)
                    if item is not None:
                        cancel = threading.Event()
                        with self._lock:
                            self._running[item.item_id] = cancel
                continue
            t = threading.Thread(
                target=self._run_item,
                args=(item, cancel),
                name=f"invoke-nb-item-{item.item_id}",
                daemon=True,
            )
            with self._lock:
                self._threads[item.item_id] = t
            t.start()

    def _run_item(
        self, item: Any, cancel: threading.Event | None = None, *, claim_next: bool = False
    ) -> Any:
        """Run one item and record its outcome; with ``claim_next``, return the next item
        claimed in the same transaction (or ``None``)."""
        if cancel is None:
            cancel = threading.Event()
            with self._lock:
                self._running[item.item_id] = cancel
        base = {"item_id": item.item_id, "batch_id": item.batch_id, "session_id": item.session_id}
        self.bus.emit("queue_item_status_changed", {**base, "status": "in_progress"})

        def emit(kind: str, payload: dict[str, Any]) -> None:
            self.bus.emit(kind, {**base, **payload})

        result: RunResult | None = None
        error: BaseException | None = None
        final: dict[str, Any] = {"status": "completed"}
        try:
            graph = Graph.from_dict(item.graph)
            if item.field_values:
                graph = apply_field_values(graph, item.field_values)
            services = self.make_services(item, cancel, emit)
            result = self.executor.run(graph, session_id=item.session_id, services=services)
            if cancel.is_set():
                final["status"] = "canceled"
        except Cancelled as e:
            error = e
            final["status"] = "canceled"
        except Exception as e:  # one failing item must not stop the queue
            error = e
            tb = e.traceback if isinstance(e, NodeError) and e.traceback else traceback.format_exc()
            etype = type(e.original).__name__ if isinstance(e, NodeError) else type(e).__name__
            final = {
                "status": "failed",
                "error_type": etype,
                "error_message": str(e),
                "error_traceback": tb,
            }
        nxt = None
        try:
            # decided now, not when the item started: a pause or stop meanwhile wins
            take_next = claim_next and not self.paused and not self._stop.is_set()
            status, nxt = self.repo.finish(
                item.item_id,
                claim_next=self.queue_id if take_next else None,
                owner=self.owner,
                **final,
            )
        except Exception as exc:
            # the catalog could not take it (a full disk, ...): keep it and retry from the
            # loop; the waiter gets the outcome now
            log.warning("queue item %s: could not record its outcome (%s)", item.item_id, exc)
            with self._lock:
                self._unrecorded[item.item_id] = final
            status = final["status"]
        finally:
            with self._lock:
                self._running.pop(item.item_id, None)
                self._threads.pop(item.item_id, None)
        if status == "canceled" and error is None:
            error = Cancelled(f"queue item {item.item_id} was canceled")
        payload = {**base, "status": status}
        if error is not None and status == "failed":
            payload.update(error_type=type(error).__name__, error_message=str(error))
        self.bus.emit("queue_item_status_changed", payload)
        self._resolve(item.item_id, result if error is None else None, error)
        self._wake.set()  # a slot is free: claim the next item now
        return nxt
