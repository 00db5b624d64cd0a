"""Short-lived, shared-by-lease DuckDB connections to the catalog file.

DuckDB lets one process at a time open a database file. This module makes that workable for
several kernels on one studio root (the design is described in the package docstring):

* a process opens the file only when it needs it, keeps the connection while operations keep
  coming, and closes it after ``idle_release`` seconds of quiet;
* a process that finds the file locked leaves a marker ``<file>.waiting/<pid>`` and retries with
  jittered backoff; the holder sees the marker when its current operation ends and closes at
  once, then stands back briefly before re-opening so the waiter gets its turn;
* if the lock is still held after ``busy_timeout`` seconds the waiter raises
  :class:`CatalogBusyError` naming the holder's PID (parsed from DuckDB's message).

Within a process every operation goes through one re-entrant lock, so threads (the queue
thread, the notebook's main thread) take turns on the single connection.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb

from invoke_nb.catalog.errors import CatalogBusyError

__all__ = ["Database", "first", "pid_alive"]

_LOCK_RE = re.compile(r"Conflicting lock is held in (?P<exe>.*?) \(PID (?P<pid>\d+)\)")


def pid_alive(pid: int) -> bool:
    """True if a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# Small commits would otherwise trigger a checkpoint (a rewrite of changed blocks) almost
# every time: ~10 ms per queue status change instead of ~2. The WAL is checkpointed when the
# connection is released (idle or handed to another kernel) and at this size.
_CHECKPOINT = "256MB"


class Database:
    """The catalog file plus the lease logic around its one connection."""

    def __init__(
        self, path: Path, *, busy_timeout: float = 30.0, idle_release: float = 0.5
    ) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self.idle_release = idle_release
        self._waiting_dir = self.path.with_name(self.path.name + ".waiting")
        self._marker = self._waiting_dir / str(os.getpid())
        self._lock = threading.RLock()
        self._conn: duckdb.DuckDBPyConnection | None = None
        self._depth = 0
        self._in_tx = False
        self._last_used = 0.0
        self._wake = threading.Event()
        self._closed = False
        self._reaper: threading.Thread | None = None

    # -- public -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Yield the open connection (opening it if needed); nested uses share it."""
        with self._lock:
            if self._conn is None:
                self._conn = self._open()
                self._start_reaper()
            self._depth += 1
            try:
                yield self._conn
            finally:
                self._depth -= 1
                self._last_used = time.monotonic()
                if self._depth == 0 and self._others_waiting():
                    self._close_conn()

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open on the connection (read it while holding
        :meth:`connection`: then only this thread can have opened it)."""
        return self._in_tx

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Yield a connection inside BEGIN ... COMMIT; an exception rolls everything back.

        Nested calls join the outer transaction (DuckDB has no savepoints).
        """
        with self.connection() as conn:
            if self._in_tx:
                yield conn
                return
            conn.execute("BEGIN TRANSACTION")
            self._in_tx = True
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:  # the body or the COMMIT failed: leave no open transaction
                with contextlib.suppress(duckdb.Error):
                    conn.execute("ROLLBACK")
                raise
            finally:
                self._in_tx = False

    @contextlib.contextmanager
    def sandboxed(self, config: dict[str, Any]) -> Iterator[duckdb.DuckDBPyConnection]:
        """Yield a read-only connection opened with ``config`` (for users' SQL), then close it.

        DuckDB refuses two connections with different settings to one file in one process,
        so the catalog's own connection is closed first; everything else in this process
        waits on the lock meanwhile and reopens the normal connection afterwards."""
        with self._lock:
            if self._depth:
                raise RuntimeError(
                    "a sandboxed query cannot run inside a catalog operation or transaction"
                )
            self._close_conn()
            conn = self._open(read_only=True, config=config)
            try:
                yield conn
            finally:
                conn.close()
                self._last_used = time.monotonic()

    def release(self) -> None:
        """Close the connection now if no operation is using it (lets other processes in)."""
        with self._lock:
            if self._depth == 0:
                self._close_conn()

    def close(self) -> None:
        """Release the file and stop the idle reaper."""
        self._closed = True
        self._wake.set()
        self.release()

    @property
    def is_open(self) -> bool:
        """Whether this process currently holds the file."""
        return self._conn is not None

    # -- internals ----------------------------------------------------------------------------
    def _open(
        self, *, read_only: bool = False, config: dict[str, Any] | None = None
    ) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.002
        marked = False
        try:
            if self._waiters():
                # others queued first: queue up too (so they hand the file back), let them in
                self._mark()
                marked = True
                self._stand_back()
            while True:
                try:
                    if read_only:
                        return duckdb.connect(str(self.path), read_only=True, config=config or {})
                    conn = duckdb.connect(str(self.path))
                    # a setting, not a connect config: plain duckdb.connect() of the same
                    # file elsewhere in this process must not meet a configuration mismatch
                    conn.execute(f"SET checkpoint_threshold = '{_CHECKPOINT}'")
                    return conn
                except (duckdb.IOException, duckdb.ConnectionException) as exc:
                    # another process holds the file, or (a sandboxed query) another
                    # connection of this process has it open with other settings: both pass
                    match = _LOCK_RE.search(str(exc))
                    busy = "Could not set lock" in str(exc) or "different configuration" in str(exc)
                    if match is None and not busy:
                        raise
                    if not marked:
                        self._mark()
                        marked = True
                    if time.monotonic() >= deadline:
                        pid = int(match["pid"]) if match else None
                        exe = match["exe"] if match else None
                        raise CatalogBusyError(
                            str(self.path), pid, exe, self.busy_timeout
                        ) from None
                    time.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, 0.01)
        finally:
            if marked:
                with contextlib.suppress(OSError):
                    self._marker.unlink()

    def _mark(self) -> None:
        self._waiting_dir.mkdir(parents=True, exist_ok=True)
        self._marker.touch()

    def _waiters(self) -> list[int]:
        try:
            names = os.listdir(self._waiting_dir)
        except FileNotFoundError:
            return []
        me = os.getpid()
        pids = []
        for name in names:
            if name.isdigit() and int(name) != me:
                pid = int(name)
                if pid_alive(pid):
                    pids.append(pid)
                else:
                    with contextlib.suppress(OSError):
                        (self._waiting_dir / name).unlink()
        return pids

    def _others_waiting(self) -> bool:
        return bool(self._waiters())

    def _stand_back(self, limit: float = 0.1) -> None:
        """Give a waiting process the first turn after we released the file."""
        end = time.monotonic() + limit
        while self._waiters() and time.monotonic() < end:
            time.sleep(0.005)

    def _close_conn(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    def _start_reaper(self) -> None:
        self._closed = False
        self._wake.set()
        if self._reaper is None or not self._reaper.is_alive():
            self._reaper = threading.Thread(
                target=self._reap, name=f"catalog-reaper:{self.path.name}", daemon=True
            )
            self._reaper.start()

    def _reap(self) -> None:
        """Close the connection when idle too long or when another process waits for it."""
        while not self._closed:
            if self._conn is None:
                self._wake.clear()
                self._wake.wait(1.0)
                continue
            time.sleep(0.01)
            if self._conn is None or self._depth:
                continue
            idle = time.monotonic() - self._last_used
            wanted = idle >= self.idle_release or self._others_waiting()
            if wanted and self._lock.acquire(blocking=False):
                try:
                    if self._depth == 0:
                        self._close_conn()
                finally:
                    self._lock.release()


def first(cursor: duckdb.DuckDBPyConnection) -> Any:
    """The first row of a result, reading it to the end.

    DuckDB 2 refuses further work on a connection (``register``, ...) while a result is only
    partly fetched, so the catalog never leaves one open with ``fetchone``."""
    rows = cursor.fetchall()
    return rows[0] if rows else None
