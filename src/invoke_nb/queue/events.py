"""The event bus: what the queue and runner report, to Python callbacks and widgets.

Kinds: ``queue_item_status_changed``, ``batch_enqueued``, ``node_started``, ``progress``,
``node_complete``, ``node_error``, ``image_saved``, ``model_load_started``,
``model_load_complete``. Payloads are dicts; ``progress`` may carry a preview image.

Events are raised on the queue's worker thread. A subscriber that touches widgets asks for
``main_thread=True``: its callback is then scheduled on the kernel's event loop (when one
runs) instead of being called on the worker thread.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any

__all__ = ["EVENT_KINDS", "EventBus", "call_on_main", "kernel_loop"]

log = logging.getLogger("invoke_nb.events")

EVENT_KINDS = frozenset(
    {
        "queue_item_status_changed",
        "batch_enqueued",
        "node_started",
        "progress",
        "node_complete",
        "node_error",
        "image_saved",
        "model_load_started",
        "model_load_complete",
    }
)

Callback = Callable[[str, dict[str, Any]], None]


def kernel_loop() -> Any:
    """The running kernel's IO loop (tornado or asyncio), or ``None`` outside a kernel."""
    try:
        from IPython import get_ipython

        ip = get_ipython()
        kernel = getattr(ip, "kernel", None)
        return getattr(kernel, "io_loop", None)
    except Exception:
        return None


def call_on_main(fn: Callable[..., Any], *args: Any) -> None:
    """Call ``fn(*args)`` on the kernel's main thread (widgets are not thread-safe): on its
    event loop from another thread; directly when already there or outside a kernel. The
    one helper for this: the event bus and every widget use it."""
    if threading.current_thread() is not threading.main_thread():
        loop = kernel_loop()
        if loop is not None:
            loop.add_callback(fn, *args)
            return
    fn(*args)


class EventBus:
    """Subscribe with :meth:`on`; the queue publishes with :meth:`emit`."""

    def __init__(self) -> None:
        self._subs: dict[str, list[tuple[Callback, bool]]] = defaultdict(list)
        self._lock = threading.Lock()
        self._preview_subs: list[tuple[Callback, bool]] = []

    def on(
        self, kind: str, callback: Callback, *, main_thread: bool = False, previews: bool = False
    ) -> Callable[[], None]:
        """Call ``callback(kind, payload)`` for events of ``kind`` (``"*"`` for all).

        ``previews=True`` asks for preview images in ``progress`` events: they are computed
        only while such a subscriber exists. Returns a function that unsubscribes.
        """
        if kind != "*" and kind not in EVENT_KINDS:
            raise ValueError(
                f"unknown event kind {kind!r}; kinds: {', '.join(sorted(EVENT_KINDS))}"
            )
        entry = (callback, main_thread)
        with self._lock:
            self._subs[kind].append(entry)
            if previews:
                self._preview_subs.append(entry)

        def off() -> None:
            with self._lock:
                if entry in self._subs[kind]:
                    self._subs[kind].remove(entry)
                if entry in self._preview_subs:
                    self._preview_subs.remove(entry)

        return off

    def wants_previews(self) -> bool:
        """Whether a subscriber asked for progress previews."""
        with self._lock:
            return bool(self._preview_subs)

    def emit(self, kind: str, payload: dict[str, Any]) -> None:
        """Deliver an event to its subscribers; a failing callback is logged, not raised."""
        with self._lock:
            subs = list(self._subs.get(kind, ())) + list(self._subs.get("*", ()))
        if not subs:
            return
        for cb, main in subs:
            if main:
                call_on_main(self._call, cb, kind, payload)
            else:
                self._call(cb, kind, payload)

    @staticmethod
    def _call(cb: Callback, kind: str, payload: dict[str, Any]) -> None:
        try:
            cb(kind, payload)
        except Exception:
            log.exception("event callback for %s failed", kind)
