"""Pre-aggregated gallery counts, per slice of time: totals and deep pages without scans.

A gallery total (``count(*)`` over a million rows) and a page at offset 500,000 (which rows
come 500,000th in time order?) both cost a scan of the images table. ``gallery_tallies``
answers both from a few thousand rows: it counts the images of every combination of the
gallery's filter columns (``board_id``, ``image_category``, ``is_intermediate``, ``starred``)
in each *bucket*, a slice of ``created_at`` holding about :data:`BUCKET_ROWS` images
(``gallery_buckets`` lists each bucket's start in microseconds; the first starts at
:data:`FIRST`). A total is a sum of tallies; a page at any offset is found by summing the
tallies of the buckets in page order up to the offset, then sorting only the rows of the one
or two buckets that hold the page (zone maps on ``created_at`` skip the rest).

Deleted rows (``deleted_at`` set) are never counted: every gallery query leaves them out.

The tallies follow the images table by a watermark on ``images.image_id`` (as the term index
does, :mod:`invoke_nb.catalog.search`): :func:`catch_up` counts the rows above it, and every
transaction that inserts images calls it before it commits (an import calls it once, after
its last batch). Changes to counted rows (star, board move, category, delete) are applied as
deltas in the changing transaction: :func:`subtract` the rows' old values before the change,
:func:`add` their new values after it. Tallies are appended as signed rows (a change never
rewrites a row in place) and compacted when they grow; readers sum them. While rows above
the watermark exist (an import mid-way), readers fall back to scanning (:func:`ready`).
A bucket grown past twice its size is split at its median time, and its two halves counted
again from the images table, in the writing transaction.

Every statement that changes the tallies also gives ``gallery_tally_state.version`` a new
random value (:func:`touch`), in the same transaction: a reader that sees the version it saw
before knows the tallies are unchanged, whichever process wrote since, so it may reuse what
it derived from them (:class:`TallyCache`). Random, not a counter: a version that a rolled-back
transaction made visible to its own reads is never taken again by a committed one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from invoke_nb.catalog import gallery_keys
from invoke_nb.catalog.connection import first

__all__ = [
    "BUCKET_ROWS",
    "FIRST",
    "State",
    "TallyCache",
    "add",
    "bucket_counts",
    "catch_up",
    "ready",
    "rebuild",
    "state",
    "subtract",
    "time_of",
    "time_range",
    "total",
    "touch",
]

BUCKET_ROWS = 16_384
"""Images per bucket after a rebuild or a split; a bucket is split past twice this."""
SPLIT_EVERY = 256
"""Inserts look for buckets to split (and tallies to compact) when the image ids pass a
multiple of this: bucket sizes bear only on speed, never on what a query answers."""
FIRST = -(2**62)
"""Start of the first bucket: before any time (microseconds since 1970)."""
KEY = ("board_id", "image_category", "is_intermediate", "starred")
_KEY = ", ".join(KEY)
_EPOCH = datetime(1970, 1, 1)
T = TypeVar("T")


def time_of(micros: int) -> datetime:
    """A bucket start as the naive UTC time the images table stores."""
    return _EPOCH + timedelta(microseconds=micros)


def _mark(conn: Any) -> int:
    return int(first(conn.execute("SELECT counted_upto FROM gallery_tally_state"))[0])


def _tally(conn: Any, sign: int, where: str, params: list[Any], upto: int) -> None:
    """Append the signed tallies of the images matching ``where`` (counted rows only)."""
    conn.execute(
        f"INSERT INTO gallery_tallies SELECT b.lo, {', '.join('r.' + k for k in KEY)}, "
        f"{int(sign)} * count(*) FROM ("
        f"SELECT epoch_us(created_at) AS t, {_KEY} FROM images "
        f"WHERE deleted_at IS NULL AND image_id <= ? AND ({where})"
        ") r ASOF JOIN gallery_buckets b ON r.t >= b.lo GROUP BY ALL",
        [upto, *params],
    )
    touch(conn)


def touch(conn: Any) -> None:
    """Mark the tallies changed (see the module docstring): call in every transaction that
    changes ``gallery_tallies`` or ``gallery_buckets`` outside this module's functions."""
    conn.execute("UPDATE gallery_tally_state SET version = gen_random_uuid()")


def subtract(conn: Any, where: str, params: list[Any]) -> None:
    """Take the images matching ``where`` out of the tallies (before changing or deleting
    them, in the same transaction); their ids also go to the gallery keys' change log
    (:func:`invoke_nb.catalog.gallery_keys.log_rows`): every change to a counted column
    passes here."""
    _tally(conn, -1, where, params, _mark(conn))
    gallery_keys.log_rows(conn, where, params)


def add(conn: Any, where: str, params: list[Any]) -> None:
    """Count the images matching ``where`` again (after changing them)."""
    _tally(conn, 1, where, params, _mark(conn))
    _compact_if_grown(conn)  # a change leaves every row in its bucket: no bucket grew


def catch_up(conn: Any) -> int:
    """Count the rows added since the watermark (call inside the inserting transaction);
    returns how many rows that was."""
    mark = _mark(conn)
    top, n = first(
        conn.execute("SELECT max(image_id), count(*) FROM images WHERE image_id > ?", [mark])
    )
    if not n:
        return 0
    if n > 4 * BUCKET_ROWS:  # an import: cutting fresh buckets beats halving one many times
        rebuild(conn)
        return int(n)
    _tally(conn, 1, "image_id > ?", [mark], top)
    conn.execute("UPDATE gallery_tally_state SET counted_upto = ?", [top])
    if top // SPLIT_EVERY != mark // SPLIT_EVERY:
        _split_full(conn, top)  # and compacts
    return int(n)


def ready(conn: Any) -> bool:
    """Whether every image row is counted (no import left rows above the watermark)."""
    return state(conn).ready


@dataclass(frozen=True)
class State:
    """What a reader needs to know of the tallies, read in one statement (:func:`state`)."""

    ready: bool
    """Every image row is counted (no import left rows above the watermark)."""
    version: str
    """Changes whenever the tallies change (see the module docstring)."""
    counted_upto: int


def state(conn: Any, hint: int = -1) -> State:
    """The tallies' state. ``hint``: the watermark seen last time; the check for uncounted
    rows rides in the same statement when it is still the watermark (one statement instead
    of two: each costs a few tenths of a millisecond however small), else runs again."""
    mark, version, above = first(
        conn.execute(
            "SELECT counted_upto, version, "
            "EXISTS (SELECT 1 FROM images WHERE image_id > ?) FROM gallery_tally_state",
            [hint],
        )
    )
    if mark != hint:
        above = first(conn.execute("SELECT count(*) > 0 FROM images WHERE image_id > ?", [mark]))
        above = above[0]
    return State(not above, str(version), int(mark))


class TallyCache:
    """What a process derived from the tallies (bucket counts of a filter, board counts),
    kept while the tallies' version stays the same. The version comes from the database,
    read in the reader's own snapshot, so writes by other processes are seen too."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self.version: str | None = None
        self.hint = -1
        self._items: dict[Any, Any] = {}

    def state(self, conn: Any) -> State:
        """The tallies' state (:func:`state`); drops what an older version derived."""
        st = state(conn, self.hint)
        self.hint = st.counted_upto
        if st.version != self.version:
            self._items.clear()
            self.version = st.version
        return st

    def forget(self) -> None:
        """Drop everything kept (as a change of the tallies would): benchmarks time the
        first read after a write with it."""
        self._items.clear()
        self.version = None

    def get(self, key: Any, make: Callable[[], T]) -> T:
        """``make()``, computed once per version of the tallies (call after :meth:`state`
        in the same snapshot)."""
        try:
            return self._items[key]  # type: ignore[no-any-return]
        except KeyError:
            pass
        if len(self._items) >= self.size:
            self._items.clear()
        value = self._items[key] = make()
        return value


def rebuild(conn: Any) -> None:
    """Count everything again: buckets of :data:`BUCKET_ROWS` images in time order (the
    migration, repairs)."""
    conn.execute("DELETE FROM gallery_tallies")
    conn.execute("DELETE FROM gallery_buckets")
    conn.execute(f"INSERT INTO gallery_buckets VALUES ({FIRST})")
    conn.execute(
        "INSERT INTO gallery_buckets SELECT DISTINCT t FROM ("
        "SELECT epoch_us(created_at) AS t, row_number() OVER (ORDER BY created_at) AS i "
        f"FROM images WHERE deleted_at IS NULL) WHERE i > 1 AND i % {BUCKET_ROWS} = 1"
    )
    top = first(conn.execute("SELECT coalesce(max(image_id), -1) FROM images"))[0]
    _tally(conn, 1, "TRUE", [], top)
    conn.execute("UPDATE gallery_tally_state SET counted_upto = ?", [top])
    _note_compacted(conn)


def _note_compacted(conn: Any) -> None:
    n = first(conn.execute("SELECT count(*) FROM gallery_tallies"))[0]
    conn.execute("UPDATE gallery_tally_state SET compacted_rows = ?", [n])


def _compact_if_grown(conn: Any) -> None:
    """Sum the signed rows of each key into one when the table has grown well past its
    compacted size (every star or move appends rows)."""
    rows, compacted = first(
        conn.execute(
            "SELECT (SELECT count(*) FROM gallery_tallies), compacted_rows FROM gallery_tally_state"
        )
    )
    if rows <= 2 * compacted + 4096:
        return
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE _tallies AS SELECT lo, "
        f"{_KEY}, sum(n) AS n FROM gallery_tallies GROUP BY ALL HAVING sum(n) <> 0"
    )
    try:
        conn.execute("DELETE FROM gallery_tallies")
        conn.execute("INSERT INTO gallery_tallies SELECT * FROM _tallies")
    finally:
        conn.execute("DROP TABLE IF EXISTS _tallies")
    _note_compacted(conn)
    touch(conn)


def _split_full(conn: Any, mark: int) -> None:
    """Split each bucket holding more than twice :data:`BUCKET_ROWS` at its median time and
    count its halves again (a bucket of one instant cannot be split and stays whole);
    then compact the tallies if they have grown. ``mark``: the watermark."""
    tried: set[int] = set()
    while full := [
        lo
        for (lo,) in conn.execute(
            "SELECT lo FROM gallery_tallies GROUP BY lo HAVING sum(n) > ?", [2 * BUCKET_ROWS]
        ).fetchall()
        if lo not in tried
    ]:
        for lo in full:
            tried.add(lo)
            _split(conn, lo, mark)
    _compact_if_grown(conn)


def _split(conn: Any, lo: int, mark: int) -> None:
    """Split one bucket at its median time; the halves are checked again by the caller."""
    hi = first(conn.execute("SELECT min(lo) FROM gallery_buckets WHERE lo > ?", [lo]))[0]
    where, params = time_range(lo, hi)
    mid = first(
        conn.execute(
            "SELECT epoch_us(quantile_disc(created_at, 0.5)) FROM images "
            f"WHERE deleted_at IS NULL AND image_id <= ? AND {where}",
            [mark, *params],
        )
    )[0]
    if mid is None or mid <= lo:
        return
    conn.execute("INSERT INTO gallery_buckets VALUES (?)", [mid])
    conn.execute("DELETE FROM gallery_tallies WHERE lo = ?", [lo])
    _tally(conn, 1, where, params, mark)


def time_range(lo: int, hi: int | None) -> tuple[str, list[Any]]:
    """The ``created_at`` condition of a bucket (or run of buckets) ``[lo, hi)``."""
    where, params = [], []
    if lo != FIRST:
        where.append("created_at >= ?")
        params.append(time_of(lo))
    if hi is not None:
        where.append("created_at < ?")
        params.append(time_of(hi))
    return " AND ".join(where) or "TRUE", params


def bucket_counts(conn: Any, where: list[str], params: list[Any]) -> list[tuple[int, bool, int]]:
    """``(lo, starred, n)`` per bucket and starred flag over the tallies matching ``where``
    (conditions on the :data:`KEY` columns); empty ones left out. A run of a stream's
    non-empty buckets ends where its next non-empty bucket starts: no matching row lies
    between, so no bucket ends are needed."""
    cond = " AND ".join(where) or "TRUE"
    return conn.execute(
        f"SELECT lo, starred, sum(n) AS n FROM gallery_tallies WHERE {cond} "
        "GROUP BY lo, starred HAVING sum(n) <> 0",
        params,
    ).fetchall()


def total(conn: Any, where: list[str], params: list[Any]) -> int:
    """How many counted images match ``where`` (conditions on the :data:`KEY` columns)."""
    cond = " AND ".join(where) or "TRUE"
    row = first(conn.execute(f"SELECT sum(n) FROM gallery_tallies WHERE {cond}", params))
    return int(row[0] or 0)
