"""The gallery's keys in memory: pages, totals and searches without sorting or scanning rows.

DuckDB keeps no ordered index, so the SQL paths of :mod:`invoke_nb.catalog.images` find a
page by sorting a window of rows, and a board's or a search's page by scanning a column of
every row, then read the page's rows one by one where they lie apart (a few ms per query at a
million images, tens for a search). This module keeps, per process, just the columns a
gallery query filters and sorts on, for every image, in numpy arrays in page order
(``created_at``, then ``image_name``): creation time, image id, board, category, model name,
key and base as small integer codes, and the combination of board, category and the
intermediate/starred flags as one small integer (a class); 32 bytes per image (32 MB at a
million). A query's matches are a *stream*: a boolean mask over the positions (one lookup
table over the classes, gathered) with counts per block of positions, kept per filter and
updated in place as rows change; a page at any offset skips whole blocks by their counts,
and its rows are then read by image id through the ``images_image_id`` index, in one
statement. A one-word search adds the word's postings from the term index
(:mod:`invoke_nb.catalog.search`): the positions of the rows holding it (a rare word: its
streams then look at those rows only) or a mask. Boards' counts and covers come from the
same arrays (:meth:`GalleryKeys.board_summary`).

Staying exact while other writers work. The arrays follow the database, whichever process
writes, by two watermarks read inside the query's own transaction (so a page and its total
come from one snapshot):

* new rows: image ids come from a sequence, so rows above the highest id the arrays hold are
  new; they are read and placed (appended, or inserted at their time).
* changed rows: every change to existing rows (star, board move, category, delete) logs their
  ids in ``gallery_changes`` in the changing transaction (:func:`log_rows`, called by
  :func:`invoke_nb.catalog.tallies.subtract` and the board deletion); a reader re-reads the keys
  of the ids logged after the last sequence number it saw. A logged NULL id means "read
  everything again" (:func:`log_all`: a rebuild, or a log trimmed past a slow reader).

A transaction that rolls back takes its log rows with it, and readers never see them; a
reader inside a writing transaction does not use the arrays (they must hold only committed
state): :meth:`GalleryKeys.usable`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from invoke_nb.catalog.connection import first
from invoke_nb.catalog.gallery_columns import Classes, Codes, Columns, code_or_none
from invoke_nb.catalog.gallery_masks import SparseStream, Stream, Word, sorted_unique
from invoke_nb.catalog.records import to_db_time

__all__ = [
    "LOG_KEEP",
    "GalleryKeys",
    "KeysFilter",
    "log_all",
    "log_rows",
]

LOG_KEEP = 65_536
"""Log rows kept when the change log is trimmed (it is trimmed past twice this)."""
MAX_STREAMS = 16
"""Streams (and search word masks) kept at once: ~1 MB each at a million images."""
SPARSE_SHARE = 8
"""A search word held by at most 1/8 of the rows is kept as their positions, and its
streams look only at those rows."""
SUMMARY_BLOCK = 4096
"""Positions looked at in the first step of the walk back for the boards' newest images (each
step looks at twice as many as the one before)."""
RECORDS_KEPT = 4096
"""Page rows kept (:meth:`GalleryKeys.kept_records`): ~1 KB each with their metadata text."""
RELOAD_SHARE = 0.05
"""New or changed rows beyond this share of the arrays (and 4,096) are read by reloading all."""
_EPOCH = datetime(1970, 1, 1)
_KEY_COLS = (
    "image_id, epoch_us(created_at) AS t, board_id, image_category, is_intermediate, starred, "
    "model_name, model_key, model_base"
)


def log_rows(conn: Any, where: str, params: list[Any]) -> None:
    """Log the ids of the images matching ``where``: call before changing or deleting them,
    in the changing transaction (see the module docstring)."""
    seqs = conn.execute(
        "INSERT INTO gallery_changes SELECT nextval('gallery_change_seq'), image_id "
        f"FROM images WHERE {where} RETURNING seq",
        params,
    ).fetchall()
    if seqs and max(seqs)[0] // LOG_KEEP != (min(seqs)[0] - 1) // LOG_KEEP:  # now and then
        _trim(conn)


def log_all(conn: Any) -> None:
    """Tell every reader to read all keys again (a rebuild, a repair)."""
    conn.execute("INSERT INTO gallery_changes VALUES (nextval('gallery_change_seq'), NULL)")


def _trim(conn: Any) -> None:
    """Keep the log short: past ``2 * LOG_KEEP`` rows, drop all but the newest ``LOG_KEEP``
    and leave a NULL row just below them, so a reader that had not seen the dropped rows
    reads everything again."""
    n, top = first(conn.execute("SELECT count(*), max(seq) FROM gallery_changes"))
    if n <= 2 * LOG_KEEP:
        return
    keep_from = top - LOG_KEEP
    conn.execute("DELETE FROM gallery_changes WHERE seq < ?", [keep_from])
    conn.execute("INSERT INTO gallery_changes VALUES (?, NULL)", [keep_from - 1])


def micros(when: datetime) -> int:
    """A time as the arrays hold it: microseconds since 1970, naive UTC as the table stores."""
    return (to_db_time(when) - _EPOCH) // timedelta(microseconds=1)


@dataclass(frozen=True)
class KeysFilter:
    """The filters of a gallery query as the arrays answer them (made from an
    :class:`~invoke_nb.catalog.query.ImageQuery` by the image repository)."""

    board: str | None
    no_board: bool
    starred: bool | None
    is_intermediate: bool | None
    categories: tuple[str, ...] | None
    model: str | None
    base: str | None
    since: int | None
    until: int | None


class GalleryKeys:
    """The gallery's keys of one catalog, in this process (see the module docstring)."""

    def __init__(self) -> None:
        self.enabled = True
        """False: every query takes the SQL paths (tests compare the two; benchmarks time both)."""
        self._cols: Columns | None = None
        self._pos_of = np.zeros(0, np.int32)  # image id -> position (-1: not held)
        self._max_id = -1  # every image id up to this has been read (or never existed)
        self._seq = -1  # the change log's sequence number seen last
        self._streams: dict[Any, Stream | SparseStream] = {}
        self._summary: dict[str, tuple[int, int, int | None]] | None = None
        self._class_counts: np.ndarray | None = None  # rows per class, kept as rows change
        self.cover_names: dict[int, str] = {}
        """Names of the boards' default covers by image id (the boards' listing keeps them)."""
        self._words: dict[Any, Word] = {}
        self.boards, self.cats, self.models, self.bases = Codes(), Codes(), Codes(), Codes()
        self.classes = Classes()
        self.records: OrderedDict[int, Any] = OrderedDict()
        """Page rows read lately (the table's values), by image id (:meth:`kept_records`):
        a row changes only through a logged change, which drops it here."""
        self.loads = 0
        """How many times every key was read (tests and benchmarks look)."""

    @property
    def max_id(self) -> int:
        """The highest image id read (rows above it are new to the arrays)."""
        return self._max_id

    # -- following the database ------------------------------------------------------------
    def forget(self) -> None:
        """Drop everything held (the next query reads all keys again)."""
        self._cols = None
        self.records.clear()
        self._streams.clear()
        self._words.clear()

    def kept_records(
        self, ids: list[int], read: Callable[[list[int]], dict[int, Any]]
    ) -> dict[int, Any]:
        """The page rows of ``ids``: those read lately from here, the others by
        ``read(missing)`` (call after :meth:`refresh`, in the same transaction); keeps the
        newest :data:`RECORDS_KEPT`."""
        found = {i: self.records[i] for i in ids if i in self.records}
        missing = [i for i in ids if i not in found]
        if missing:
            fresh = read(missing)
            found.update(fresh)
            self.records.update(fresh)
            while len(self.records) > RECORDS_KEPT:
                self.records.popitem(last=False)
        for i in ids:
            if i in self.records:
                self.records.move_to_end(i)
        return found

    def drop_derived(self) -> None:
        """Forget the masks derived per filter and search word and the rows read lately,
        keeping the keys (a benchmark times a filter's first ask with it)."""
        self.records.clear()
        self._streams.clear()
        self._words.clear()

    def refresh(self, conn: Any) -> None:
        """Bring the arrays to the state of ``conn``'s snapshot (call inside the query's
        transaction): one statement when nothing changed."""
        rows = conn.execute(
            "SELECT NULL, max(image_id) FROM images WHERE image_id > ? UNION ALL "
            "SELECT seq, image_id FROM gallery_changes WHERE seq > ?",
            [self._max_id, self._seq],
        ).fetchall()
        top = next(i for seq, i in rows if seq is None)
        changes = [(seq, i) for seq, i in rows if seq is not None]
        cols = self._cols
        limit = max(4096, RELOAD_SHARE * (cols.n if cols is not None else 0))
        if cols is None or len(changes) > limit or any(i is None for _, i in changes):
            self._load(conn)
            return
        if changes:
            for _, i in changes:
                self.records.pop(i, None)
            self._reread(conn, sorted({i for _, i in changes}))
            self._seq = max(seq for seq, _ in changes)
        if top is not None:
            self._add_new(conn, int(top), limit)

    def _load(self, conn: Any) -> None:
        """Read every key. The page order comes from sorting only the image ids (by time,
        then name); the other columns are read unsorted and put in that order here: ~3x
        faster than sorting them all in DuckDB."""
        seq, top = first(
            conn.execute(
                "SELECT (SELECT coalesce(max(seq), -1) FROM gallery_changes), "
                "(SELECT coalesce(max(image_id), -1) FROM images)"
            )
        )
        order = conn.sql(
            "SELECT image_id FROM images WHERE deleted_at IS NULL ORDER BY created_at, image_name"
        ).to_arrow_table()
        table = conn.sql(
            f"SELECT {_KEY_COLS} FROM images WHERE deleted_at IS NULL"
        ).to_arrow_table()
        keys = self._encode(table)
        where = np.full(int(top) + 1, -1, np.int64)
        where[keys["ids"]] = np.arange(len(keys["ids"]))
        perm = where[order.column(0).to_numpy()]
        self._cols = Columns({k: v[perm] for k, v in keys.items()})
        self.records.clear()
        self._max_id, self._seq = int(top), int(seq)
        self._reindex()
        self.loads += 1

    def _encode(self, table: pa.Table) -> dict[str, np.ndarray]:
        def num(name: str) -> np.ndarray:
            return table.column(name).to_numpy(zero_copy_only=False)

        board = self.boards.encode(table.column("board_id"))
        cat = self.cats.encode(table.column("image_category"))
        cls = self.classes.encode(board, cat, num("is_intermediate"), num("starred"))
        return {
            "t": num("t").astype(np.int64),
            "ids": num("image_id").astype(np.int64),
            "cls": cls,
            "model_name": self.models.encode(table.column("model_name")),
            "model_key": self.models.encode(table.column("model_key")),
            "base": self.bases.encode(table.column("model_base")),
        }

    def _count_classes(self, classes: np.ndarray, sign: int) -> None:
        """Keep the rows per class (:meth:`board_summary`) up to date as rows change."""
        if self._class_counts is None:
            return
        if self._class_counts.size < len(self.classes.items):
            grown = np.zeros(len(self.classes.items), np.int64)
            grown[: self._class_counts.size] = self._class_counts
            self._class_counts = grown
        np.add.at(self._class_counts, classes, sign)

    def _reindex(self) -> None:
        """Positions moved (a load, an insert in the middle): the id -> position map again."""
        self._summary = None
        self._class_counts = None
        cols = self._cols
        assert cols is not None
        self._pos_of = np.full(max(self._max_id + 1, 1), -1, np.int32)
        self._pos_of[cols.ids] = np.arange(cols.n, dtype=np.int32)
        self._streams.clear()
        self._words.clear()

    def _reread(self, conn: Any, ids: list[int]) -> None:
        """The current keys of changed rows (a deleted row reads as gone)."""
        cols = self._cols
        assert cols is not None
        held = [i for i in ids if i is not None and i <= self._max_id and self._pos_of[i] >= 0]
        if not held:
            return
        table = conn.sql(
            f"SELECT {_KEY_COLS} FROM images WHERE deleted_at IS NULL AND image_id IN "
            f"({', '.join(map(str, held))})"
        ).to_arrow_table()
        new = self._encode(table)
        pos = self._pos_of[np.asarray(held, np.int64)]
        self._count_classes(cols.cls[pos], -1)
        cols.cls[pos] = 0  # deleted unless read again below
        cols.cls[self._pos_of[new["ids"]]] = new["cls"]
        self._count_classes(cols.cls[pos], 1)
        self._update_streams(pos)
        self._summary = None

    def _add_new(self, conn: Any, top: int, limit: float) -> None:
        """Read the rows above the highest id held and place them in page order."""
        cols = self._cols
        assert cols is not None
        if top - self._max_id > limit:  # ids come from a sequence: at most this many rows
            self._load(conn)
            return
        table = conn.sql(
            f"SELECT {_KEY_COLS}, image_name FROM images WHERE image_id > ? AND image_id <= ? "
            "AND deleted_at IS NULL ORDER BY created_at, image_name",
            params=[self._max_id, top],
        ).to_arrow_table()
        self._max_id = top
        if self._pos_of.size <= top:
            grown = np.full(max(top + 1, 2 * self._pos_of.size), -1, np.int32)
            grown[: self._pos_of.size] = self._pos_of
            self._pos_of = grown
        if not table.num_rows:
            return
        new = self._encode(table)
        if cols.n == 0 or new["t"][0] > cols.t[-1]:  # the usual case: newer than all held
            start = cols.n
            cols.append(new)
            self._pos_of[new["ids"]] = np.arange(start, cols.n, dtype=np.int32)
            self._extend_streams(start)
            self._count_classes(new["cls"], 1)
            self._summary = None
            return
        at = np.searchsorted(cols.t, new["t"], "left")
        ends = np.searchsorted(cols.t, new["t"], "right")
        tied = np.flatnonzero(ends > at)
        if tied.size:  # rows held at the same time: their names decide
            names = self._names(
                conn,
                cols.ids[
                    np.unique(
                        np.concatenate(
                            [np.arange(a, e) for a, e in zip(at[tied], ends[tied], strict=True)]
                        )
                    )
                ],
            )
            new_names = table.column("image_name").to_pylist()
            for i in tied:
                # before the first row held at that time whose name sorts after the new one
                # (deleted rows, nameless now, may lie anywhere among them: they never show)
                later = (
                    p
                    for p in range(at[i], ends[i])
                    if names.get(int(cols.ids[p]), "") > new_names[i]
                )
                at[i] = next(later, ends[i])
        cols.insert(at, new)
        self._reindex()

    @staticmethod
    def _names(conn: Any, ids: np.ndarray) -> dict[int, str]:
        rows = conn.execute(
            f"SELECT image_id, image_name FROM images WHERE image_id IN ({', '.join(map(str, ids))})"
        ).fetchall()
        return {int(i): n for i, n in rows}

    # -- answering --------------------------------------------------------------------------
    def _class_table(self, f: KeysFilter, flag: bool | None) -> np.ndarray:
        """Which classes (board, category, flags) ``f`` and the starred flag ``flag``
        (None: either) keep."""
        starred = f.starred if flag is None else flag
        clash = f.starred is not None and flag is not None and f.starred != flag
        board = 0 if f.no_board else None
        if f.board is not None:
            board = code_or_none(self.boards, f.board)
        cats = None
        if f.categories is not None:
            cats = {c for c in (self.cats.get(x) for x in f.categories) if c is not None}

        def keep(b: int, c: int, inter: bool, star: bool) -> bool:
            return (
                not clash
                and (board is None or b == board)
                and (cats is None or c in cats)
                and (f.is_intermediate is None or inter == f.is_intermediate)
                and (starred is None or star == starred)
            )

        return self.classes.table(keep)

    def _extra(self, f: KeysFilter, at: slice | np.ndarray) -> np.ndarray | None:
        """The rows at ``at`` that pass ``f``'s filters outside the classes (model, base,
        time), or None if it has none."""
        cols = self._cols
        assert cols is not None
        m = None
        if f.model is not None:
            code = code_or_none(self.models, f.model)
            m = (cols.model_name[at] == code) | (cols.model_key[at] == code)
        if f.base is not None:
            b = cols.base[at] == code_or_none(self.bases, f.base)
            m = b if m is None else m & b
        if f.since is not None:
            t = cols.t[at] >= f.since
            m = t if m is None else m & t
        if f.until is not None:
            t = cols.t[at] < f.until
            m = t if m is None else m & t
        return m

    def _match(self, f: KeysFilter, flag: bool | None, at: slice | np.ndarray) -> np.ndarray:
        """Whether the rows at positions ``at`` are live, match ``f`` and have the starred
        flag ``flag`` (None: either)."""
        cols = self._cols
        assert cols is not None
        m = np.take(self._class_table(f, flag), cols.cls[at])
        extra = self._extra(f, at)
        return m if extra is None else m & extra

    def _match_both(self, f: KeysFilter) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_match` of every row for both starred flags, in one pass over the classes
        (a starred-first page needs both streams)."""
        cols = self._cols
        assert cols is not None
        both = self._class_table(f, True).astype(np.uint8) * 2 + self._class_table(f, False)
        v = np.take(both, cols.cls)
        starred, others = v == 2, v == 1
        extra = self._extra(f, slice(0, cols.n))
        if extra is not None:
            starred &= extra
            others &= extra
        return starred, others

    def _stream(
        self, f: KeysFilter, flag: bool | None, words: tuple[Any, ...]
    ) -> Stream | SparseStream:
        """The rows matching ``f``, the starred flag and the search words, as a stream
        (:class:`~invoke_nb.catalog.gallery_masks.Stream`, or a ``SparseStream`` when a search
        word narrows it to few rows: then only those rows are looked at); kept and kept up
        to date until positions move."""
        key = (f, flag, words)
        found = self._streams.get(key)
        if found is not None:
            return found
        cols = self._cols
        assert cols is not None
        sparse = [self._words[w] for w in words if self._words[w].positions is not None]
        stream: Stream | SparseStream
        if sparse:
            at = sparse[0].positions
            for w in sparse[1:]:
                at = np.intersect1d(at, w.positions, assume_unique=True)
            assert at is not None
            ok = self._match(f, flag, at)
            for w in words:  # the sparse ones hold every row of ``at`` already
                if self._words[w].mask is not None:
                    ok &= self._words[w].holds(at)
            stream = SparseStream(at[ok])
        elif flag is not None and (f, not flag, words) not in self._streams:
            pair = self._match_both(f)  # the other stream too: it is asked for next
            for m in pair:
                for w in words:
                    m &= self._words[w].holds(slice(0, cols.n))
            stream = Stream(pair[0] if flag else pair[1])
            self._keep_stream((f, not flag, words), Stream(pair[1] if flag else pair[0]))
        else:
            m = self._match(f, flag, slice(0, cols.n))
            for w in words:
                m &= self._words[w].holds(slice(0, cols.n))
            stream = Stream(m)
        self._keep_stream(key, stream)
        return stream

    def _keep_stream(self, key: Any, stream: Stream | SparseStream) -> None:
        if len(self._streams) >= MAX_STREAMS:
            self._streams.pop(next(iter(self._streams)))
        self._streams[key] = stream

    def _update_streams(self, at: np.ndarray) -> None:
        """Changed rows (positions ``at``): every kept stream looks at them again."""
        for (f, flag, words), stream in self._streams.items():
            m = self._match(f, flag, at)
            for w in words:
                m &= self._words[w].holds(at)
            stream.set(at, m)

    def _extend_streams(self, start: int) -> None:
        """Rows appended from ``start`` on: kept streams without search words take them in;
        those with words are dropped (their words take in the new rows' postings when next
        asked for: :meth:`word_key`)."""
        cols = self._cols
        assert cols is not None
        for key in [k for k in self._streams if k[2]]:
            del self._streams[key]
        for (f, flag, _), stream in self._streams.items():
            stream.extend(start, self._match(f, flag, slice(start, cols.n)))

    def word_key(
        self, key: Any, mark: int, read: Callable[[int], tuple[np.ndarray, np.ndarray, int]]
    ) -> Any:
        """Make sure the rows holding a search word are known, kept under ``key`` (the
        word's vocabulary terms); returns the key for :meth:`page`. ``mark``: the term
        index's watermark; ``read(above)`` gives the terms' postings of the image ids above
        ``above``: the ids, whether each belongs to a negative term, and how many negative
        terms there are (see :mod:`invoke_nb.catalog.search`). A word kept from before
        reads only the postings of rows added since. A word few rows hold is kept as
        their positions, else as a mask over all rows."""
        cols = self._cols
        assert cols is not None
        word = self._words.get(key)
        if word is not None and word.mark == mark and word.n == cols.n:
            return key
        if word is not None and word.mark <= mark and word.n <= cols.n:
            word.extend(self._holders(*read(word.mark), word.n), cols.n, mark)
            return key
        ids, negative, n_neg = read(-1)
        if not n_neg and ids.size <= cols.n // SPARSE_SHARE:
            pos = self._pos_of[ids[ids <= self._max_id]]
            word = Word(sorted_unique(pos[pos >= 0]), None, cols.n, mark)
        else:
            m = self._holders(ids, negative, n_neg, 0)
            word = Word(None, m, cols.n, mark)
        if len(self._words) >= MAX_STREAMS:
            self._words.clear()
            self._streams = {k: v for k, v in self._streams.items() if not k[2]}
        self._words[key] = word
        return key

    def _holders(self, ids: np.ndarray, negative: np.ndarray, n_neg: int, lo: int) -> np.ndarray:
        """Whether each row from position ``lo`` on holds the word, from its postings."""
        cols = self._cols
        assert cols is not None
        size = cols.n - lo
        inside = ids <= self._max_id
        if not inside.all():
            ids, negative = ids[inside], negative[inside]
        # rows not held (position -1) land in one spare slot at the end, cut off below (as
        # do rows before ``lo``): no filtering pass over the postings
        pos = self._pos_of[ids]
        if lo:
            pos = pos - lo
            pos[pos < 0] = size
        if not n_neg:
            m = np.zeros(size + 1, np.bool_)
            m[pos] = True
        elif n_neg == 1 and negative.all():  # one negative term: the rows not on its list
            m = np.ones(size + 1, np.bool_)
            m[pos] = False
        else:
            hits = np.bincount(pos[negative], minlength=size + 1)
            m = hits < n_neg  # missing from some negative term's list: holds that term
            m[pos[~negative]] = True
        return m[:size]

    def page(
        self,
        conn: Any,
        f: KeysFilter,
        *,
        desc: bool,
        starred_first: bool,
        offset: int,
        count: int,
        after: tuple[bool | None, datetime, str] | None,
        words: tuple[Any, ...] = (),
    ) -> tuple[list[tuple[int, bool]], int]:
        """Image ids (and starred flags) of rows ``offset`` to ``offset + count`` of the
        matches (after the cursor key ``after``, if given), in page order, and how many rows
        match in all.
        ``words``: keys from :meth:`word_key`, all of which must hold."""
        cols = self._cols
        assert cols is not None
        if starred_first:
            streams = [self._stream(f, True, words), self._stream(f, False, words)]
        else:
            streams = [self._stream(f, None, words)]
        total = sum(s.total for s in streams)
        drops = [0] * len(streams)
        if after is not None:
            drops = self._after(conn, streams, after, desc, starred_first)
        out: list[np.ndarray] = []
        skip, need = offset, count
        for stream, drop in zip(streams, drops, strict=True):
            if need <= 0:
                break
            left = stream.total - drop
            if skip >= left:
                skip -= left
                continue
            part = stream.take(drop + skip, need, desc)
            out.append(part)
            need -= part.size
            skip = 0
        chosen = np.concatenate(out) if out else np.zeros(0, np.int64)
        starred = np.array([False, *(c[3] for c in self.classes.items[1:])])[cols.cls[chosen]]
        return list(zip(cols.ids[chosen].tolist(), starred.tolist(), strict=True)), total

    def _after(
        self,
        conn: Any,
        streams: list[Stream | SparseStream],
        after: tuple[bool | None, datetime, str],
        desc: bool,
        starred_first: bool,
    ) -> list[int]:
        """How many rows of each stream come before a cursor key (its time, then its name,
        in page order): the rows a cursor's next page skips."""
        cols = self._cols
        assert cols is not None
        flag, created, name = after
        t = micros(created)
        lo = int(np.searchsorted(cols.t, t, "left"))
        hi = int(np.searchsorted(cols.t, t, "right"))

        def before(stream: Stream | SparseStream) -> int:
            n = stream.count(hi, cols.n) if desc else stream.count(0, lo)
            tied = stream.positions_in(lo, hi)
            if tied.size:  # rows at the cursor's time: their names decide
                names = self._names(conn, cols.ids[tied])
                n += sum(
                    1
                    for i in cols.ids[tied]
                    if (names.get(int(i), "") >= name if desc else names.get(int(i), "") <= name)
                )
            return n

        if not starred_first:
            return [before(streams[0])]
        if flag:
            return [before(streams[0]), 0]
        return [streams[0].total, before(streams[1])]

    def board_summary(
        self, image_categories: tuple[str, ...], asset_categories: tuple[str, ...]
    ) -> dict[str, tuple[int, int, int | None]]:
        """Per board holding any image: its images and assets (InvokeAI's counts:
        intermediates in neither) and the image id of its newest image that is not an
        intermediate (the default cover); kept until a change. The counts come from one
        count of the classes; the newest images from a walk back over the positions in
        blocks, until every board has been met."""
        if self._summary is not None:
            return self._summary
        cols = self._cols
        assert cols is not None
        items = self.classes.items
        if self._class_counts is None:
            self._class_counts = np.bincount(cols.cls, minlength=len(items)).astype(np.int64)
        self._count_classes(np.zeros(0, np.int32), 0)  # grown to the classes known
        counts = self._class_counts
        images = {c for c in (self.cats.get(x) for x in image_categories) if c is not None}
        assets = {c for c in (self.cats.get(x) for x in asset_categories) if c is not None}
        board_of = np.full(len(items), -1, np.int64)  # class -> board code (-1: not counted)
        found: dict[int, list[int]] = {}
        for cls, item in enumerate(items):
            if item is None or not counts[cls]:
                continue
            board, cat, inter, _ = item
            if board == 0 or inter:
                continue
            board_of[cls] = board
            tally = found.setdefault(board, [0, 0])
            tally[0] += int(counts[cls]) if cat in images else 0
            tally[1] += int(counts[cls]) if cat in assets else 0
        newest: dict[int, int] = {}
        end, step = cols.n, SUMMARY_BLOCK
        while len(newest) < len(found) and end > 0:
            lo = max(0, end - step)
            step *= 2  # active boards are met in the first steps; the walk ends in log steps
            owners = np.take(board_of, cols.cls[lo:end])[::-1]
            seen, first_at = np.unique(owners, return_index=True)
            for board, at in zip(seen.tolist(), first_at.tolist(), strict=True):
                if board >= 0 and board not in newest:
                    newest[board] = int(cols.ids[end - 1 - at])
            end = lo
        names = {code: value for value, code in self.boards.of.items() if value is not None}
        self._summary = {
            names[b]: (tally[0], tally[1], newest.get(b)) for b, tally in found.items()
        }
        return self._summary

    def usable(self, in_transaction: bool) -> bool:
        """Whether a query may use the arrays: not inside a transaction that may have written
        (the arrays hold committed state only)."""
        return self.enabled and not in_transaction
