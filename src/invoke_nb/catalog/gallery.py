"""Gallery query planning: which rows make a page, found without sorting the whole table.

DuckDB has no ordered index, so a plain ``ORDER BY created_at DESC LIMIT 100`` reads and
heaps every row. The planner instead sorts only the rows of a time window next to the page
(zone maps skip every other row group), sized from a cached sample of creation times and
checked with counts; see :meth:`GalleryPlanner.window_keys`. It returns sort keys
``(rowid, created_at, image_name, starred)``; the repository fetches the full rows.
"""

from __future__ import annotations

import base64
import bisect
import json
import math
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from invoke_nb.catalog.connection import first
from invoke_nb.catalog.records import to_db_time

__all__ = [
    "GalleryPlanner",
    "chunks",
    "decode_cursor",
    "encode_cursor",
    "escape_like",
    "placeholders",
]

Key = tuple[Any, ...]
After = tuple[bool | None, datetime, str] | None


def encode_cursor(starred: bool | None, created_at: datetime, name: str) -> str:
    """An opaque keyset cursor: the last row's sort key (starred flag, time, name)."""
    raw = json.dumps([starred, to_db_time(created_at).isoformat(), name])
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> tuple[bool | None, datetime, str]:
    """The sort key inside a cursor; ValueError naming the cursor if it is not one of ours."""
    try:
        starred, created, name = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return starred, datetime.fromisoformat(created), str(name)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"invalid gallery cursor {cursor!r}: {exc}") from None


def placeholders(n: int) -> str:
    """``?, ?, ...`` for an IN list: DuckDB answers ``IN (?, ...)`` on a key from its index,
    while ``IN (SELECT unnest(?))`` becomes a join over the whole table."""
    return ", ".join("?" * n)


def chunks(items: Sequence[Any], size: int = 1000) -> Iterable[list[Any]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def escape_like(text: str) -> str:
    """Make ``%``, ``_`` and ``\\`` literal in a LIKE pattern (used with ``ESCAPE '\\'``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class GalleryPlanner:
    """Finds the sort keys of a gallery page; keeps a per-process sample of creation times."""

    def __init__(self, small: int = 5000, sample_rows: int = 4096) -> None:
        self.small = small  # below this many rows a plain sort is cheapest
        self.sample_rows = sample_rows
        self._sample_cache: tuple[int, float, list[datetime]] | None = None

    # Gallery pages are found in two steps. Step one sorts only the narrow sort key (rowid,
    # created_at, image_name) of the rows inside a time window; step two fetches the full rows
    # of the page by rowid. DuckDB skips every row group outside a time window by its zone
    # map (images are mostly added in time order). The window is sized from a cached sample
    # of creation times (so quiet spells and bursts do not fool it), checked with cheap counts
    # (a count reads only the filter columns of the window's row groups), widened until it
    # holds the rows needed and narrowed if it holds far too many. A deep offset first skips
    # whole stretches of rows by counting them instead of sorting them. Results are exact
    # whatever the data; only the speed depends on the estimates.

    def time_sample(self, conn: Any, total: int) -> list[datetime]:
        """Sorted creation times of a random sample of rows, refreshed when the table grew
        or shrank by 5% or a minute passed."""
        cached = self._sample_cache
        now = time.monotonic()
        if cached and abs(cached[0] - total) <= 0.05 * total and now - cached[1] < 60:
            return cached[2]
        rows = conn.execute(
            f"SELECT created_at FROM images USING SAMPLE {self.sample_rows} ROWS"
        ).fetchall()
        sample = sorted(r[0] for r in rows)
        self._sample_cache = (total, now, sample)
        return sample

    def window_keys(
        self,
        conn: Any,
        where: list[str],
        params: list[Any],
        desc: bool,
        offset: int,
        count: int,
        after: After,
        plain: bool = False,
    ) -> list[Key]:
        """Sort keys of a page; ``plain`` sorts the matching rows at once (for filters that
        match few rows through an index, such as a search)."""
        where, params = list(where), list(params)
        direction, cmp = ("DESC", "<") if desc else ("ASC", ">")
        edge: datetime | None = None
        if after is not None:
            _, c_created, c_name = after
            edge = to_db_time(c_created)
            where.append(
                f"created_at {cmp}= ? AND (created_at {cmp} ? OR (created_at = ? AND image_name {cmp} ?))"
            )
            params += [edge, edge, edge, c_name]
        order = f"ORDER BY created_at {direction}, image_name {direction}"

        def keys(extra: list[str], extra_params: list[Any], skip: int) -> list[tuple[Any, ...]]:
            sql = (
                f"SELECT rowid, created_at, image_name, starred FROM images "
                f"WHERE {' AND '.join([*where, *extra])} {order} "
                f"LIMIT {int(count)} OFFSET {int(skip)}"
            )
            return conn.execute(sql, [*params, *extra_params]).fetchall()

        lo, hi, total = first(
            conn.execute("SELECT min(created_at), max(created_at), count(*) FROM images")
        )
        if not total:
            return []
        if plain or total <= self.small or hi == lo:
            return keys([], [], offset)
        if edge is None:
            edge = hi if desc else lo
        far = lo if desc else hi  # the end of time in the direction of the pages
        sample = self.time_sample(conn, total)
        step = 1 if desc else -1

        def move(point: datetime, by: timedelta) -> datetime:
            return point - by if desc else point + by

        def width_for(near: datetime, k_rows: float) -> timedelta:
            """Time from ``near`` (toward ``far``) that holds about ``k_rows`` rows of all."""
            cut = bisect.bisect_right(sample, near) if desc else bisect.bisect_left(sample, near)
            target = cut - step * k_rows * len(sample) / total
            index = math.floor(target) if desc else math.ceil(target)
            if not 0 <= index < len(sample):
                return abs(near - far)
            width = abs(near - sample[index])
            return width if width > timedelta(0) else (hi - lo) * (k_rows / total)

        def n_rows(near: datetime, width: timedelta, far_inclusive: bool = True) -> int:
            """Rows matching the filters from ``near`` (inclusive) to ``near`` moved by ``width``."""
            if desc:
                cond = ["created_at <= ?", f"created_at {'>=' if far_inclusive else '>'} ?"]
            else:
                cond = ["created_at >= ?", f"created_at {'<=' if far_inclusive else '<'} ?"]
            sql = f"SELECT count(*) FROM images WHERE {' AND '.join([*where, *cond])}"
            return int(first(conn.execute(sql, [*params, near, move(near, width)]))[0])

        # 1. skip whole stretches of rows before a deep offset by counting them: ``skipped``
        #    rows lie strictly before ``boundary``; rows at the boundary time stay in the window
        boundary, skipped, density = edge, 0, 1.0
        if offset > count:
            matching = n_rows(edge, abs(edge - far))
            if offset >= matching:
                return []
            cut = bisect.bisect_right(sample, edge) if desc else bisect.bisect_left(sample, edge)
            in_range = total * (cut if desc else len(sample) - cut) / len(sample)
            density = min(1.0, max(matching / max(in_range, 1.0), 1e-6))
            width = width_for(edge, offset / density * 0.97)
            for _ in range(4):
                before = n_rows(edge, width, far_inclusive=False)
                if before <= offset:
                    boundary, skipped = move(edge, width), before
                    break
                width *= offset / before * 0.95
        # 2. widen a window past the boundary until it holds the rows still needed
        need = offset - skipped + count
        rest = abs(boundary - far)
        k_rows = 1.5 * need / density
        width = width_for(boundary, k_rows)
        extra: list[str] = []
        extra_params: list[Any] = []
        if skipped:
            extra.append(f"created_at {'<=' if desc else '>='} ?")
            extra_params.append(boundary)
        if width < rest:  # optimistic first try: a full page from the window is the answer
            window = [*extra, f"created_at {'>=' if desc else '<='} ?"]
            page = keys(window, [*extra_params, move(boundary, width)], offset - skipped)
            if len(page) == count:
                return page
        narrow_k, narrow_w = 0.0, timedelta(0)  # the widest window known to hold too few rows
        while width < rest:
            found = n_rows(boundary, width)
            if found < need:
                narrow_k, narrow_w = k_rows, width
                k_rows *= min(8.0, max(2.0, 1.5 * need / max(found, 1)))
                if k_rows >= total / 4:
                    # a rare filter: counting ever wider windows would cost more than one
                    # sort, which DuckDB speeds up by pruning on its running top-N bound
                    break
                wider = width_for(boundary, k_rows)
                width = wider if wider > width else width + (hi - lo) * (k_rows / total)
                continue
            # enough rows; if far too many, bisect (in rows, via the sample) so the sort below
            # sees a few times the rows needed
            wide_k = k_rows
            for _ in range(6):
                if found <= 4 * need:
                    break
                middle_k = (narrow_k + wide_k) / 2
                middle = width_for(boundary, middle_k)
                if not narrow_w < middle < width:
                    break
                in_middle = n_rows(boundary, middle)
                if in_middle >= need:
                    wide_k, width, found = middle_k, middle, in_middle
                else:
                    narrow_k, narrow_w = middle_k, middle
            extra.append(f"created_at {'>=' if desc else '<='} ?")
            extra_params.append(move(boundary, width))
            break
        return keys(extra, extra_params, offset - skipped)

    def starred_first_keys(
        self,
        conn: Any,
        where: list[str],
        params: list[Any],
        desc: bool,
        offset: int,
        count: int,
        after: After,
        plain: bool = False,
    ) -> list[Key]:
        """Starred rows in time order, then the others: two windowed scans, not one sort."""
        keys: list[tuple[Any, ...]] = []
        skip = offset
        in_starred = after is None or bool(after[0])
        if in_starred:
            seg = [*where, "starred"]
            keys = self.window_keys(conn, seg, params, desc, skip, count, after, plain)
            if len(keys) < count and skip:
                n_starred = first(
                    conn.execute(f"SELECT count(*) FROM images WHERE {' AND '.join(seg)}", params)
                )[0]
                skip = max(0, skip - n_starred)
            else:
                skip = 0
        if len(keys) < count:
            seg = [*where, "NOT starred"]
            rest_after = None if in_starred else after
            keys += self.window_keys(
                conn, seg, params, desc, skip, count - len(keys), rest_after, plain
            )
        return keys
