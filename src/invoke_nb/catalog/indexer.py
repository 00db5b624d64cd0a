"""The background indexer: brings the search term index up to date after a bulk insert.

An import of a million InvokeAI images inserts its rows in a few seconds; splitting their
metadata into the term index (:mod:`invoke_nb.catalog.search`) takes several times that. The
rows are usable at once (searches scan the rows the index has not reached, so results are
exact, only slower), and this thread indexes them in runs of :data:`RUN_IDS` image ids. A run
holds the catalog twice, briefly: to read its rows' text, and to store its postings; the words
are split between the two on a private in-memory DuckDB, so meanwhile every other catalog
operation of the process (a gallery page, a save) runs. A crash loses at most the run under
way (the watermark moves with each run's postings). A catalog opened with rows left to index starts
it again.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from typing import Any

from invoke_nb.catalog import search

__all__ = ["RUN_IDS", "BackgroundIndexer"]

log = logging.getLogger(__name__)

RUN_IDS = 32_768
"""Image ids per run (~22 MB of InvokeAI metadata text)."""


_RUNNING: weakref.WeakSet[BackgroundIndexer] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    """At interpreter exit, let each indexer finish its run under way: a daemon thread killed
    inside DuckDB while Python tears down can crash the process on its way out."""
    for indexer in list(_RUNNING):
        indexer.stop()


class BackgroundIndexer:
    """One thread per catalog that indexes until the watermark reaches the last row."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.error: BaseException | None = None
        """The exception that stopped the last run, if any (the rows stay unindexed and
        searchable by scan; the next start retries)."""

    @property
    def running(self) -> bool:
        """Whether the thread is indexing now."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def start(self) -> None:
        """Index in the background unless already doing so."""
        with self._lock:
            if self.running:
                return
            self._stop.clear()
            self.error = None
            self._thread = threading.Thread(target=self._run, name="catalog-indexer", daemon=True)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the thread is done (or ``timeout`` seconds); True if it is."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.running

    def stop(self) -> None:
        """Stop after the run under way (what is indexed stays indexed)."""
        self._stop.set()
        self.wait()

    def lag(self) -> int:
        """Rows not indexed yet."""
        with self._db.connection() as conn:
            return search.lag(conn)

    def _run(self) -> None:
        import duckdb

        t = time.perf_counter()
        done = 0
        # words are split on a private DuckDB, outside the catalog: the catalog is held only
        # to read a run's text and to store its postings (about a third of the run's time)
        private = duckdb.connect(config={"threads": 1, "memory_limit": "256MB"})
        try:
            while not self._stop.is_set():
                with self._db.transaction() as conn:
                    run = search.read_run(conn, RUN_IDS)
                    if run is None:  # nothing left, or a few rows: index them at once
                        n = search.index_some(conn, RUN_IDS)
                        if not n:
                            break
                        done += n
                        continue
                words = search.split_run(private, run[2])
                with self._db.transaction() as conn:
                    if search.write_run(conn, run, words):
                        done += run[2].num_rows
        except BaseException as exc:  # kept for the caller; the rows stay searchable by scan
            self.error = exc
            log.warning("search index: stopped after %d rows: %s", done, exc)
            return
        finally:
            private.close()
        if done:
            log.info("search index: %d rows in %.1f s", done, time.perf_counter() - t)
