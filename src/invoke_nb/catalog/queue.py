"""The session queue table: what a Studio's queue thread runs, persisted across restarts.

Order of execution is ``priority DESC, item_id ASC`` (a higher priority jumps ahead, as
InvokeAI's "prepend" does; equal priorities run first-in first-out). :meth:`claim_next` picks
and marks the next item in one transaction, so two kernels sharing a root never run the same
item. Each claim records the worker's PID; :meth:`fail_interrupted` fails only items whose
worker process is gone, so a restarting kernel does not fail a sibling kernel's running item.

Ownership (several kernels on one root): an item carries the ``owner`` that queued it, a
``host:pid:start-time:uuid`` made per Studio by :func:`new_owner`, or NULL for the shared
queue. A processor that claims with ``owner=`` takes (1) its own items, (2) shared items,
(3) items whose owner is gone (its process died, or its Studio closed in this process): so a
kernel never runs another live kernel's ``run()`` items, and a restarted kernel still runs what a
dead one left pending. An owner on another host counts as alive (its PID cannot be checked).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from invoke_nb.catalog.connection import Database, first, pid_alive
from invoke_nb.catalog.errors import NotFoundError
from invoke_nb.catalog.pngchunks import dumps
from invoke_nb.catalog.records import QueueItem, QueueStatus, utcnow

__all__ = ["TERMINAL", "QueueRepository", "new_owner", "owner_alive", "release_owner"]

TERMINAL: frozenset[str] = frozenset({"completed", "failed", "canceled"})
_STATUSES = ("pending", "in_progress", "completed", "failed", "canceled")
_COLS = tuple(QueueItem.model_fields)
_SELECT = f"SELECT {', '.join(_COLS)} FROM session_queue"


_HOST = socket.gethostname()
_live_owners: set[str] = set()  # owners made by Studios of this process and not yet closed
_owners_lock = threading.Lock()


def _started(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot, from /proc; "" where there is
    no /proc), so a PID reused by a new process is not taken for the old one."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return ""
    fields = stat[stat.rfind(b")") + 2 :].split()
    return fields[19].decode() if len(fields) > 19 else ""


def new_owner() -> str:
    """A fresh owner id for a Studio of this process (``host:pid:start:uuid``), alive."""
    pid = os.getpid()
    owner = f"{_HOST}:{pid}:{_started(pid)}:{uuid.uuid4().hex[:12]}"
    with _owners_lock:
        _live_owners.add(owner)
    return owner


def release_owner(owner: str) -> None:
    """The Studio behind ``owner`` closed: its pending items may go to other kernels."""
    with _owners_lock:
        _live_owners.discard(owner)


def owner_alive(owner: str | None) -> bool:
    """Whether the Studio that queued an item may still run it (see the module docstring)."""
    if owner is None:
        return False
    host, pid_text, started, *_ = [*owner.split(":"), "", "", ""]
    if host != _HOST or not pid_text.isdigit():
        return True
    pid = int(pid_text)
    if pid == os.getpid():
        with _owners_lock:
            return owner in _live_owners
    if not pid_alive(pid):
        return False
    now = _started(pid)
    return not (started and now and now != started)  # same PID, another process


def _claimable(conn: Any, queue_id: str, owner: str | None) -> tuple[str, list[Any]]:
    """SQL condition (and parameters) for the pending items ``owner`` may claim."""
    if owner is None:  # the repository used directly (tools, tests): no ownership filter
        return "TRUE", []
    others = conn.execute(
        "SELECT DISTINCT owner FROM session_queue WHERE queue_id = ? AND status = 'pending' "
        "AND owner IS NOT NULL AND owner <> ?",
        [queue_id, owner],
    ).fetchall()
    gone = [o for (o,) in others if not owner_alive(o)]
    return "(owner IS NULL OR owner = ? OR owner IN (SELECT unnest(?)))", [owner, gone]


def _item(row: Sequence[Any]) -> QueueItem:
    data = dict(zip(_COLS, row, strict=True))
    data["graph"] = json.loads(data["graph"])
    if data["field_values"] is not None:
        data["field_values"] = json.loads(data["field_values"])
    return QueueItem.model_validate(data)


class QueueRepository:
    """Queue items: enqueue in bulk, claim the next, set status, cancel, prune, recover."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def enqueue(
        self,
        graphs: Sequence[dict[str, Any]],
        *,
        batch_id: str | None = None,
        queue_id: str = "default",
        priority: int = 0,
        field_values: Sequence[list[dict[str, Any]] | None] | None = None,
        destination: str | None = None,
        origin: str | None = None,
        session_ids: Sequence[str] | None = None,
        owner: str | None = None,
    ) -> list[int]:
        """Add items (one per graph) in one transaction; returns their item ids in order.

        ``owner`` (from :func:`new_owner`) keeps them for that Studio; None shares them."""
        if field_values is not None and len(field_values) != len(graphs):
            raise ValueError(f"{len(graphs)} graphs but {len(field_values)} field_values entries")
        if session_ids is not None and len(session_ids) != len(graphs):
            raise ValueError(f"{len(graphs)} graphs but {len(session_ids)} session ids")
        for i, g in enumerate(graphs):
            if not isinstance(g, dict):
                raise TypeError(f"queue item {i}: graph must be a dict, got {type(g).__name__}")
        if not graphs:
            return []
        batch_id = batch_id or str(uuid.uuid4())
        now = utcnow()
        table = pa.table(
            {
                "ord": list(range(len(graphs))),
                "batch_id": [batch_id] * len(graphs),
                "queue_id": [queue_id] * len(graphs),
                "session_id": list(session_ids or [str(uuid.uuid4()) for _ in graphs]),
                "priority": [priority] * len(graphs),
                "graph": [dumps(g) for g in graphs],
                "field_values": [
                    dumps(fv) if fv is not None else None
                    for fv in (field_values or [None] * len(graphs))
                ],
                "destination": [destination] * len(graphs),
                "origin": [origin] * len(graphs),
                "owner": pa.array([owner] * len(graphs), pa.string()),
                "created_at": pa.array([now] * len(graphs), pa.timestamp("us")),
            }
        )
        cols = (
            "batch_id, queue_id, session_id, priority, graph, field_values, destination, origin, "
            "owner"
        )
        with self._db.transaction() as conn:
            conn.register("_new_items", table)
            try:
                rows = conn.execute(
                    f"INSERT INTO session_queue ({cols}, status, created_at, updated_at) "
                    f"SELECT {cols}, 'pending', created_at, created_at FROM _new_items ORDER BY ord "
                    "RETURNING item_id"
                ).fetchall()
            finally:
                conn.unregister("_new_items")
        return sorted(r[0] for r in rows)

    def get(self, item_id: int) -> QueueItem:
        """One item; NotFoundError if none."""
        with self._db.connection() as conn:
            row = first(conn.execute(f"{_SELECT} WHERE item_id = ?", [item_id]))
        if row is None:
            raise NotFoundError(f"no queue item {item_id}")
        return _item(row)

    def list(
        self,
        *,
        status: QueueStatus | Sequence[QueueStatus] | None = None,
        batch_id: str | None = None,
        queue_id: str | None = None,
        limit: int | None = None,
    ) -> list[QueueItem]:
        """Items in execution order (priority, then id)."""
        where, params = self._filters(status, batch_id, queue_id)
        sql = _SELECT + (f" WHERE {' AND '.join(where)}" if where else "")
        sql += " ORDER BY priority DESC, item_id" + (f" LIMIT {int(limit)}" if limit else "")
        with self._db.connection() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [_item(r) for r in rows]

    @staticmethod
    def _filters(
        status: QueueStatus | Sequence[QueueStatus] | None,
        batch_id: str | None,
        queue_id: str | None,
    ) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            bad = [s for s in statuses if s not in _STATUSES]
            if bad:
                raise ValueError(f"unknown queue status {bad[0]!r}; one of {_STATUSES}")
            where.append("status IN (SELECT unnest(?))")
            params.append(statuses)
        if batch_id is not None:
            where.append("batch_id = ?")
            params.append(batch_id)
        if queue_id is not None:
            where.append("queue_id = ?")
            params.append(queue_id)
        return where, params

    def counts(self, *, queue_id: str | None = None, batch_id: str | None = None) -> dict[str, int]:
        """Number of items per status (every status present, zero if none)."""
        where, params = self._filters(None, batch_id, queue_id)
        sql = "SELECT status, count(*) FROM session_queue"
        sql += f" WHERE {' AND '.join(where)}" if where else ""
        with self._db.connection() as conn:
            rows = dict(conn.execute(sql + " GROUP BY status", params).fetchall())
        return {s: int(rows.get(s, 0)) for s in _STATUSES}

    def claim_next(
        self, queue_id: str = "default", *, owner: str | None = None
    ) -> QueueItem | None:
        """Mark the next pending item in_progress (run by this process) and return it.

        With ``owner``, only items that owner may run (see the module docstring)."""
        with self._db.transaction() as conn:
            cond, params = _claimable(conn, queue_id, owner)
            row = first(
                conn.execute(
                    "SELECT item_id FROM session_queue WHERE queue_id = ? AND status = 'pending' "
                    f"AND {cond} ORDER BY priority DESC, item_id LIMIT 1",
                    [queue_id, *params],
                )
            )
            if row is None:
                return None
            now = utcnow()
            conn.execute(
                "UPDATE session_queue SET status = 'in_progress', started_at = ?, updated_at = ?, "
                "worker_pid = ? WHERE item_id = ?",
                [now, now, os.getpid(), row[0]],
            )
            return _item(first(conn.execute(f"{_SELECT} WHERE item_id = ?", [row[0]])))

    def claim(self, item_id: int) -> QueueItem | None:
        """Mark one pending item in_progress (owned by this process) and return it; None when
        it is no longer pending (another worker took it, or it was canceled)."""
        now = utcnow()
        with self._db.transaction() as conn:
            row = first(
                conn.execute(
                    "UPDATE session_queue SET status = 'in_progress', started_at = ?, "
                    "updated_at = ?, worker_pid = ? WHERE item_id = ? AND status = 'pending' "
                    "RETURNING item_id",
                    [now, now, os.getpid(), item_id],
                )
            )
            if row is None:
                return None
            return _item(first(conn.execute(f"{_SELECT} WHERE item_id = ?", [item_id])))

    def set_status(
        self,
        item_id: int,
        status: QueueStatus,
        *,
        error_type: str | None = None,
        error_message: str | None = None,
        error_traceback: str | None = None,
    ) -> QueueItem:
        """Move an item to a new status; terminal statuses set ``completed_at``.

        An item already completed, failed or canceled keeps its status (a late "completed"
        after a cancel does not resurrect it); the returned item shows what is stored."""
        if status not in _STATUSES:
            raise ValueError(f"unknown queue status {status!r}; one of {_STATUSES}")
        now = utcnow()
        with self._db.transaction() as conn:
            row = first(
                conn.execute("SELECT status FROM session_queue WHERE item_id = ?", [item_id])
            )
            if row is None:
                raise NotFoundError(f"no queue item {item_id}")
            if row[0] not in TERMINAL:
                conn.execute(
                    "UPDATE session_queue SET status = ?, updated_at = ?, "
                    "started_at = CASE WHEN ? = 'in_progress' THEN coalesce(started_at, ?) ELSE started_at END, "
                    "completed_at = CASE WHEN ? IN ('completed', 'failed', 'canceled') THEN ? ELSE completed_at END, "
                    "error_type = coalesce(?, error_type), error_message = coalesce(?, error_message), "
                    "error_traceback = coalesce(?, error_traceback) WHERE item_id = ?",
                    [status, now, status, now, status, now, error_type, error_message,
                     error_traceback, item_id],
                )  # fmt: skip
        return self.get(item_id)

    def finish(
        self,
        item_id: int,
        status: QueueStatus,
        *,
        error_type: str | None = None,
        error_message: str | None = None,
        error_traceback: str | None = None,
        claim_next: str | None = None,
        owner: str | None = None,
    ) -> tuple[str, QueueItem | None]:
        """Record an item's final status and, with ``claim_next=queue_id``, claim the next
        pending item in the same transaction (one commit per item instead of two).

        Returns the stored status (a canceled item stays canceled) and the claimed item."""
        if status not in TERMINAL:
            raise ValueError(f"finish needs a final status, not {status!r}")
        now = utcnow()
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT status FROM session_queue WHERE item_id = ?", [item_id]
            ).fetchone()
            if row is None:
                raise NotFoundError(f"no queue item {item_id}")
            stored = row[0]
            if stored not in TERMINAL:
                conn.execute(
                    "UPDATE session_queue SET status = ?, updated_at = ?, completed_at = ?, "
                    "error_type = ?, error_message = ?, error_traceback = ? WHERE item_id = ?",
                    [status, now, now, error_type, error_message, error_traceback, item_id],
                )
                stored = status
            nxt = None
            if claim_next is not None:
                cond, params = _claimable(conn, claim_next, owner)
                found = conn.execute(
                    "SELECT item_id FROM session_queue WHERE queue_id = ? AND status = 'pending' "
                    f"AND {cond} ORDER BY priority DESC, item_id LIMIT 1",
                    [claim_next, *params],
                ).fetchone()
                if found is not None:
                    conn.execute(
                        "UPDATE session_queue SET status = 'in_progress', started_at = ?, "
                        "updated_at = ?, worker_pid = ? WHERE item_id = ?",
                        [now, now, os.getpid(), found[0]],
                    )
                    nxt = _item(conn.execute(f"{_SELECT} WHERE item_id = ?", [found[0]]).fetchone())
        return stored, nxt

    def cancel(
        self,
        item_ids: Sequence[int] | None = None,
        *,
        batch_id: str | None = None,
        queue_id: str | None = None,
    ) -> list[int]:
        """Cancel pending/in-progress items (given ids, a batch, or all); returns their ids.

        The running item's worker sees the status change when it checks; this only records it."""
        where, params = self._filters(["pending", "in_progress"], batch_id, queue_id)
        if item_ids is not None:
            where.append("item_id IN (SELECT unnest(?))")
            params.append(list(item_ids))
        now = utcnow()
        with self._db.transaction() as conn:
            rows = conn.execute(
                f"UPDATE session_queue SET status = 'canceled', updated_at = ?, completed_at = ? "
                f"WHERE {' AND '.join(where)} RETURNING item_id",
                [now, now, *params],
            ).fetchall()
        return sorted(r[0] for r in rows)

    def fail_interrupted(self, reason: str = "the kernel running it stopped") -> list[int]:
        """Fail in_progress items whose worker process is gone (call on Studio start)."""
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT item_id, worker_pid FROM session_queue WHERE status = 'in_progress'"
            ).fetchall()
            dead = [
                item_id
                for item_id, pid in rows
                if pid is None or pid == os.getpid() or not pid_alive(int(pid))
            ]
            if dead:
                now = utcnow()
                conn.execute(
                    "UPDATE session_queue SET status = 'failed', error_type = 'Interrupted', "
                    "error_message = ?, updated_at = ?, completed_at = ? "
                    "WHERE item_id IN (SELECT unnest(?))",
                    [reason, now, now, dead],
                )
        return sorted(dead)

    def retry(self, item_ids: Sequence[int], *, owner: str | None = None) -> list[int]:
        """Enqueue copies of failed/canceled items (same batch, graph, priority), owned by
        ``owner`` (None: shared)."""
        new_ids = []
        for item_id in item_ids:
            new_ids.append(self._retry_one(item_id, owner))
        return new_ids

    def _retry_one(self, item_id: int, owner: str | None) -> int:
        with self._db.transaction() as conn:
            item = self.get(item_id)
            if item.status not in ("failed", "canceled"):
                raise ValueError(
                    f"queue item {item_id} is {item.status}; only failed or canceled items retry"
                )
            (new_id,) = self.enqueue(
                [item.graph],
                batch_id=item.batch_id,
                queue_id=item.queue_id,
                priority=item.priority,
                field_values=[item.field_values],
                destination=item.destination,
                origin=item.origin,
                owner=owner,
            )
            conn.execute(
                "UPDATE session_queue SET retried_from_item_id = ? WHERE item_id = ?",
                [item_id, new_id],
            )
        return new_id

    def prune(self, *, queue_id: str | None = None) -> int:
        """Delete completed, failed and canceled items; returns how many."""
        where, params = self._filters(sorted(TERMINAL), None, queue_id)  # type: ignore[arg-type]
        with self._db.transaction() as conn:
            rows = conn.execute(
                f"DELETE FROM session_queue WHERE {' AND '.join(where)} RETURNING item_id", params
            ).fetchall()
        return len(rows)

    def clear(self, *, queue_id: str | None = None) -> int:
        """Delete every item (running ones too: cancel them first); returns how many."""
        where, params = self._filters(None, None, queue_id)
        sql = "DELETE FROM session_queue" + (f" WHERE {' AND '.join(where)}" if where else "")
        with self._db.transaction() as conn:
            rows = conn.execute(sql + " RETURNING item_id", params).fetchall()
        return len(rows)
