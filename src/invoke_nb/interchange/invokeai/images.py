"""InvokeAI's images: rows read from SQLite as Arrow batches, files linked or copied.

Speed (1,000,000 rows), three stages on two cores: a reader thread reads the image rows (by
rowid) as Arrow record batches of ``batch_size`` rows through the ADBC SQLite driver (C code
fills the columns; no Python object per row); a shaper thread extracts the gallery columns
(model, prompts, seed, steps, cfg, scheduler) from each batch's metadata JSON on a private
DuckDB; the writer looks the batch's board ids up in Arrow (membership is read once) and
inserts it with one ``INSERT ... SELECT``. The default batch is one DuckDB row group
(:data:`BATCH_ROWS`), which DuckDB writes to the file directly instead of through its WAL.
Into an empty catalog the indexes on ``images`` are built once after the last batch, in the
transaction that counts the rows for the gallery, whose commit checkpoints. Into a catalog
that holds images, the library's images already there are found once by name first
(:func:`known_rows`) and never shaped: a second run reads names, not metadata. The search
term index is built after the rows (``index``), not inside each batch's transaction.
Files are hard-linked into the studio (``files="link"``, falling back to a copy across file
systems), copied (``"copy"``) or left out (``"none"``: rows only). Models are registered in
place (``owned=False``): nothing is copied, and removing them here never deletes InvokeAI's
files."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from invoke_nb.catalog import name_index, tallies
from invoke_nb.catalog import search as term_index
from invoke_nb.catalog.connection import first
from invoke_nb.catalog.files import make_thumbnail
from invoke_nb.catalog.records import utcnow
from invoke_nb.interchange.invokeai.root import (
    InvokeAIImportReport,
    InvokeAIRoot,
    Schema,
)

__all__ = [
    "BATCH_ROWS", "FilesMode", "ImageReader", "IndexMode", "Known", "Progress", "import_images",
    "known_rows",
]  # fmt: skip


FilesMode = Literal["link", "copy", "none"]
IndexMode = bool | Literal["background"]
Progress = Callable[[int, int], None]

# One DuckDB row group. A transaction that inserts a whole row group writes it straight to the
# database file ("optimistic writes"); smaller batches go through the WAL and are written a
# second time at the checkpoint, which costs ~25% of the import's CPU. Two row groups are
# faster still but lift peak RSS near 2 GiB at 1M rows.
BATCH_ROWS = 122_880


# -- images ---------------------------------------------------------------------------------
# Image rows travel from SQLite to DuckDB as Arrow record batches: the ADBC SQLite driver
# steps SQLite and fills Arrow columns in C (no Python object per row, the GIL released), and
# DuckDB reads each batch in place. The driver infers a column's type from its first batch:
# a text column NULL in every row of it comes typed as an integer (cast back here), and a
# later text value in it fails the stream; the rest is then read by a query that starts with
# one typed row (r = -1, sliced off). That query costs SQLite ~15% more (a co-routine copies
# every row), so it is the fallback, not the rule.
_COLUMNS: dict[str, tuple[str, str]] = {  # name: (SQLite cast, the typed first row's value)
    "image_name": ("TEXT", "''"),
    "image_origin": ("TEXT", "''"),
    "image_category": ("TEXT", "''"),
    "width": ("INTEGER", "0"),
    "height": ("INTEGER", "0"),
    "session_id": ("TEXT", "''"),
    "node_id": ("TEXT", "''"),
    "metadata": ("TEXT", "''"),
    "is_intermediate": ("INTEGER", "0"),
    "starred": ("INTEGER", "0"),
    "has_workflow": ("INTEGER", "0"),
    "created_at": ("TEXT", "''"),
    "updated_at": ("TEXT", "''"),
    "deleted_at": ("TEXT", "''"),
    "image_subfolder": ("TEXT", "''"),
}
_DEFAULTS = {"is_intermediate": "0", "starred": "0", "has_workflow": "0", "image_subfolder": "''"}
FIRST_ROWID = -(2**63)
"""Before every SQLite rowid."""
_ARROW_TYPES = {"TEXT": pa.string(), "INTEGER": pa.int64()}
_ROW_SCHEMA = pa.schema(
    [("r", pa.int64()), *((k, _ARROW_TYPES[t]) for k, (t, _) in _COLUMNS.items())]
)


def _images_select(schema: Schema, typed: bool = False) -> str:
    """Every image row after rowid ``?`` in rowid order (``typed``: after one typed row);
    columns a schema lacks are NULL (or their InvokeAI default).

    Board membership is not joined here: a join costs SQLite an index lookup per image
    (~4 us); :func:`_board_members` reads ``board_images`` once and each batch looks its
    images up in it (:func:`_prepared`).
    """
    exprs = ", ".join(
        f"{schema.col('images', k, t, _DEFAULTS.get(k, 'NULL'))} AS {k}"
        for k, (t, _) in _COLUMNS.items()
    )
    rows = (
        f"SELECT images.rowid AS r, {exprs} FROM images "
        "WHERE images.rowid > ? ORDER BY images.rowid"
    )
    if not typed:
        return rows
    first_row = ", ".join(f"CAST({v} AS {t}) AS {k}" for k, (t, v) in _COLUMNS.items())
    return f"SELECT -1 AS r, {first_row} UNION ALL SELECT * FROM ({rows})"


@contextlib.contextmanager
def _adbc(src: InvokeAIRoot) -> Iterator[Any]:
    """An ADBC connection to the database, read-only. It waits for SQLite's locks as the
    importer's other connection does: opening a live library (a ``-wal`` file beside it) from
    two connections at once otherwise fails one of them with "database is locked"."""
    import adbc_driver_sqlite.dbapi as adbc

    with contextlib.closing(adbc.connect(src.uri())) as conn:
        with conn.cursor() as cur:
            cur.execute("PRAGMA busy_timeout = 10000")
            cur.fetchall()
        yield conn


def _driver_batches(
    src: InvokeAIRoot, schema: Schema, size: int, after: int
) -> Iterator[pa.RecordBatch]:
    """The image rows after rowid ``after`` in rowid order as the driver's record batches (of
    ``size`` rows, and one more or less with the typed row), typed as :data:`_ROW_SCHEMA`
    (see above)."""
    with _adbc(src) as conn:
        for typed in (False, True):
            with conn.cursor() as cur:
                cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(size)})
                cur.execute(_images_select(schema, typed), (after,))
                try:
                    for k, batch in enumerate(cur.fetch_record_batch()):
                        batch = _typed(batch.slice(1) if typed and k == 0 else batch)
                        if batch.num_rows:
                            after = batch["r"][-1].as_py()
                        yield batch
                    return
                except OSError:  # "Type mismatch": a text column typed from NULLs
                    if typed:
                        raise


def _typed(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` as :data:`_ROW_SCHEMA`: a column the driver typed otherwise holds only NULLs
    (SQLite's casts give nothing else), made a column of NULLs of its type."""
    if batch.schema.equals(_ROW_SCHEMA):
        return batch
    columns = []
    for column, field in zip(batch.columns, _ROW_SCHEMA, strict=True):
        if column.type != field.type:
            if column.null_count != len(column):
                raise TypeError(f"InvokeAI images.{field.name}: {column.type}, not {field.type}")
            column = pa.nulls(len(column), field.type)
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, schema=_ROW_SCHEMA)


def _batches(
    src: InvokeAIRoot, schema: Schema, batch_size: int, after: int = FIRST_ROWID
) -> Iterator[pa.Table]:
    """The image rows after rowid ``after`` as Arrow tables of ``batch_size`` rows (the last
    one shorter).

    After the typed row (see above) each driver batch is shifted by one row, so each table
    is the rest of one driver batch and the first row(s) of the next. Those first rows are
    copied: a slice would keep the whole next batch alive as long as the table, twice the
    memory in flight."""
    pending: list[pa.Table] = []
    held = 0
    for batch in _driver_batches(src, schema, batch_size, after):
        part = pa.Table.from_batches([batch])
        pending.append(part)
        held += part.num_rows
        while held >= batch_size:
            pieces, rows = [], 0
            while rows < batch_size:
                piece = pending.pop(0)
                need = batch_size - rows
                if piece.num_rows > need:
                    pending.insert(0, piece.slice(need))
                    piece = piece.take(pa.array(range(need)))  # a copy, see above
                pieces.append(piece)
                rows += piece.num_rows
            held -= batch_size
            yield pa.concat_tables(pieces)
    if held:
        yield pa.concat_tables(pending)


@dataclass(frozen=True)
class Known:
    """The source's images that the catalog holds already (by name), found before reading
    (:func:`known_rows`): the reader starts after ``after`` and leaves out these rows before
    shaping, so importing a library again costs a read of its names, not a parse of every
    row's metadata and a lookup of every name in each batch. A row is left out only if both
    its rowid and its name match: SQLite may give a deleted row's rowid to a new image."""

    rowids: np.ndarray
    """Their SQLite rowids, sorted."""
    names: pa.Array
    """Their names, in the same order."""
    after: int
    """No row up to this rowid is new."""

    def split(self, batch: pa.Table) -> tuple[pa.Table, int]:
        """``batch`` without the known rows, and how many there were."""
        if not len(self.rowids):
            return batch, 0
        r = batch["r"].to_numpy()
        at = np.searchsorted(self.rowids, r).clip(max=len(self.rowids) - 1)
        known = self.rowids[at] == r
        rows = np.flatnonzero(known)
        if len(rows):
            same = pc.equal(batch["image_name"].take(rows), self.names.take(at[rows]))
            known[rows] = same.to_numpy(zero_copy_only=False)
        n = int(known.sum())
        return (batch.filter(pa.array(~known)) if n else batch), n

    @property
    def before(self) -> int:
        """How many known rows lie up to ``after`` (never read)."""
        return int(np.searchsorted(self.rowids, self.after, side="right"))


def known_rows(catalog: Any, src: InvokeAIRoot) -> Known | None:
    """The rows of ``src`` whose image names the catalog holds; None when it holds no image
    (then every row is new). Reads ``(rowid, image_name)`` through SQLite's covering index on
    the names (~0.25 s at 1M rows) and matches them in DuckDB (~0.25 s)."""
    with catalog.db.connection() as db:
        if not first(db.execute("SELECT count(*) FROM images"))[0]:
            return None
    with _adbc(src) as conn, conn.cursor() as cur:
        # a typed first row (left out), as in _images_select: the driver types columns by it
        cur.execute(
            "SELECT -1 AS r, CAST('' AS TEXT) AS image_name UNION ALL SELECT * FROM "
            "(SELECT rowid, CAST(image_name AS TEXT) FROM images)"
        )
        names = cur.fetch_arrow_table().slice(1)
    with catalog.db.connection() as db:
        db.register("_ia_names", names)
        try:
            found = db.sql(
                "SELECT r, image_name, image_name IN (SELECT image_name FROM images) AS known "
                "FROM _ia_names ORDER BY r"
            ).to_arrow_table()
        finally:
            db.unregister("_ia_names")
    del names
    known = pc.fill_null(found["known"], False).to_numpy()
    r = found["r"].to_numpy()
    new = r[~known]
    after = int(new.min()) - 1 if len(new) else int(r.max(initial=FIRST_ROWID))
    held = found.filter(pa.array(known))
    return Known(held["r"].to_numpy(), held["image_name"].combine_chunks(), after)


_Item = tuple[pa.Table | None, int]


class _Handoff:
    """Items from one thread to another, one at a time: :meth:`put` returns once the
    consumer has taken the item (False: stopped meanwhile), so a producer makes its next
    item while the consumer works on this one, never two ahead (~100 MB per batch at 1M
    InvokeAI rows). An exception put in is raised in the consumer; None ends it."""

    def __init__(self, stop: threading.Event) -> None:
        self._queue: queue.Queue[_Item | BaseException | None] = queue.Queue(1)
        self._stop = stop

    def put(self, item: _Item | BaseException | None) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                break
            except queue.Full:
                continue
        done = self._queue.all_tasks_done
        with done:
            while self._queue.unfinished_tasks and not self._stop.is_set():
                done.wait(0.1)
        return not self._stop.is_set()

    def __iter__(self) -> Iterator[_Item]:
        while True:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():  # the producer was stopped: it puts nothing more
                    return
                continue
            self._queue.task_done()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


class ImageReader:
    """Reads batches in one thread and shapes them (:class:`_Shaper`) in another, ahead of
    the DuckDB writer: the driver and DuckDB release the GIL, so reading one batch, parsing
    the one before and inserting the one before that share the cores (reading and parsing
    in one thread left a core idle whenever the writer waited for it). ``known``: rows to
    leave out (see :class:`Known`). Yields ``(table, left_out)``: a shaped batch (None when
    every row of it was left out) and how many rows were left out before it."""

    def __init__(
        self, src: InvokeAIRoot, schema: Schema, batch_size: int, known: Known | None = None
    ) -> None:
        self.known = known
        self._stop = threading.Event()
        self._raw = _Handoff(self._stop)
        self._shaped = _Handoff(self._stop)
        self._threads = [
            threading.Thread(target=target, args=args, name=name, daemon=True)
            for target, args, name in (
                (self._read, (src, schema, batch_size), "invokeai-reader"),
                (self._shape, (), "invokeai-shaper"),
            )
        ]
        for thread in self._threads:
            thread.start()

    def _read(self, src: InvokeAIRoot, schema: Schema, size: int) -> None:
        known = self.known
        try:
            skipped = known.before if known else 0
            after = known.after if known else FIRST_ROWID
            for item in _batches(src, schema, size, after):
                if known is not None:
                    item, n = known.split(item)
                    skipped += n
                    if not item.num_rows:
                        continue
                if not self._raw.put((item, skipped)):
                    return
                skipped = 0
            if not skipped or self._raw.put((None, skipped)):
                self._raw.put(None)
        except BaseException as e:  # handed on to the writer, which raises it
            self._raw.put(e)

    def _shape(self) -> None:
        shape = _Shaper()
        try:
            for item, skipped in self._raw:
                if not self._shaped.put((None if item is None else shape(item), skipped)):
                    return
            self._shaped.put(None)
        except BaseException as e:  # the reader's or our own: the writer raises it
            self._shaped.put(e)
        finally:
            shape.close()

    def __iter__(self) -> Iterator[_Item]:
        return iter(self._shaped)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


# Gallery columns from InvokeAI's metadata (4.x+ model {key, hash, name, base, type}; 3.x model
# {model_name, base_model}; older metadata may name the model as a plain string). Same meaning
# as pngmeta.columns_from_metadata. ``from_json`` parses each row's metadata once into the few
# fields the gallery needs, as text: a value of another JSON type comes out as its JSON text,
# as json_extract_string gives it. A model that is not an object has none of the model's
# fields: only those rows read ``$.model`` again, as text.
_MODEL_KEYS = ("name", "model_name", "key", "base", "base_model")
_TEXT_FIELDS = ("positive_prompt", "negative_prompt", "seed", "steps", "cfg_scale", "scheduler")
_STRUCT = json.dumps(
    {"model": dict.fromkeys(_MODEL_KEYS, "VARCHAR"), **dict.fromkeys(_TEXT_FIELDS, "VARCHAR")}
)

_OBJECT = "starts_with(ltrim(metadata), '{')"
"""Metadata that can be a JSON object; anything else (older tools' text, blanks) is dropped."""
_VALID = f"CASE WHEN {_OBJECT} THEN metadata END"
_CHECKED = f"CASE WHEN {_OBJECT} AND json_valid(metadata) THEN metadata END"

_READ_BATCH = "_ia_batch"


_DERIVED = (
    "image_origin", "image_category", "is_intermediate", "starred", "has_workflow", "created_at",
    "updated_at", "deleted_at", "has_metadata", "model_name", "model_key", "model_base",
    "positive_prompt", "negative_prompt", "seed", "steps", "cfg_scale", "scheduler",
)  # fmt: skip
"""The columns :func:`_shape_sql` computes; the others (names, sizes, the metadata text)
are taken from the read batch as they are: passing them through DuckDB would copy them."""


def _shape_sql(metadata: str) -> str:
    """The :data:`_DERIVED` columns of a batch, run on the reader's own in-memory DuckDB;
    ``metadata``: the SQL that keeps a row's metadata text (:data:`_VALID` trusts it to parse,
    :data:`_CHECKED` checks first); ``has_metadata`` says whether it was kept."""
    no_model_keys = " AND ".join(f"j.model.{k} IS NULL" for k in _MODEL_KEYS)
    plain = "json_extract_string(m, '$.model')"
    return f"""
SELECT coalesce(image_origin, 'internal') AS image_origin,
    coalesce(image_category, 'general') AS image_category,
    coalesce(is_intermediate, 0) <> 0 AS is_intermediate, coalesce(starred, 0) <> 0 AS starred,
    coalesce(has_workflow, 0) <> 0 AS has_workflow,
    coalesce(TRY_CAST(created_at AS TIMESTAMP), $now) AS created_at,
    coalesce(TRY_CAST(updated_at AS TIMESTAMP), TRY_CAST(created_at AS TIMESTAMP), $now)
        AS updated_at,
    TRY_CAST(deleted_at AS TIMESTAMP) AS deleted_at, m IS NOT NULL AS has_metadata,
    coalesce(j.model.name, j.model.model_name, CASE WHEN m IS NOT NULL AND {no_model_keys}
        AND NOT starts_with({plain}, '{{') THEN {plain} END) AS model_name,
    j.model.key AS model_key, coalesce(j.model.base, j.model.base_model) AS model_base,
    j.positive_prompt, j.negative_prompt, TRY_CAST(j.seed AS BIGINT) AS seed,
    TRY_CAST(j.steps AS INTEGER) AS steps, TRY_CAST(j.cfg_scale AS DOUBLE) AS cfg_scale,
    j.scheduler
FROM (SELECT *, from_json(m, '{_STRUCT}') AS j FROM (SELECT *, {metadata} AS m FROM {_READ_BATCH}))
"""


_SHAPE_TRUSTING = _shape_sql(_VALID)
_SHAPE_CHECKING = _shape_sql(_CHECKED)

_INSERTED = (
    "image_name, image_origin, image_category, width, height, session_id, node_id, "
    "is_intermediate, starred, has_workflow, board_id, created_at, updated_at, deleted_at, "
    "metadata, model_name, model_key, model_base, positive_prompt, negative_prompt, seed, "
    "steps, cfg_scale, scheduler"
)
_INSERT_IMAGES = (
    f"INSERT INTO images ({_INSERTED}, source) "
    f"SELECT {_INSERTED.replace('metadata,', 'CASE WHEN has_metadata THEN metadata END,')}, "
    f"'invokeai' FROM {_READ_BATCH}"
)
"""The batch arrives shaped (:class:`_Shaper`), with its board ids and without the rows to
leave out (:func:`_prepared`): a scan and a projection keep the batch's (rowid) order and
leave DuckDB nothing to parse or sort."""


class _Shaper:
    """Turns raw batches into rows of the images table on a private in-memory DuckDB (in the
    reader's thread, so the JSON parsing overlaps the catalog's insert of the batch before).

    Metadata is parsed once: a batch is first shaped trusting every object-looking text to be
    JSON; only if one is not (DuckDB then refuses the whole batch) is it shaped again checking
    each row, the malformed ones stored without metadata as before."""

    def __init__(self) -> None:
        import duckdb

        self._db = duckdb.connect(config={"threads": 1, "memory_limit": SHAPE_MEMORY})

    def __call__(self, batch: pa.Table) -> pa.Table:
        import duckdb

        now = {"now": utcnow()}
        self._db.register(_READ_BATCH, batch)
        try:
            try:
                derived = self._db.sql(_SHAPE_TRUSTING, params=now).to_arrow_table()
            except duckdb.InvalidInputException:  # malformed JSON somewhere in the batch
                derived = self._db.sql(_SHAPE_CHECKING, params=now).to_arrow_table()
        finally:
            self._db.unregister(_READ_BATCH)
        kept = [c for c in batch.column_names if c not in _DERIVED]
        return pa.Table.from_arrays(
            [*batch.select(kept).columns, *derived.columns], [*kept, *derived.column_names]
        )

    def close(self) -> None:
        self._db.close()


_EXISTING = f"""
SELECT b.image_name FROM {_READ_BATCH} b
WHERE EXISTS (SELECT 1 FROM images i WHERE i.image_name = b.image_name)
"""


def _prepared(
    db: Any, batch: pa.Table, members: pa.Table, leave_out: list[str], check: bool
) -> pa.Table:
    """The batch without the images already here (``check``: an empty catalog at the start
    has none) or left out, with each image's board id (looked up in Arrow, in the batch's
    order)."""
    existing: list[str] = []
    if check:
        db.register(_READ_BATCH, batch)
        try:
            existing = [r[0] for r in db.execute(_EXISTING).fetchall()]
        finally:
            db.unregister(_READ_BATCH)
    drop = existing + leave_out
    if drop:
        keep = pc.invert(pc.is_in(batch["image_name"], value_set=pa.array(drop, pa.string())))
        batch = batch.filter(keep)
    return batch.append_column("board_id", _boards_of(batch["image_name"], members))


def _boards_of(names: pa.ChunkedArray, members: pa.Table) -> pa.Array:
    """Each name's board id (NULL: none), looked up the cheap way round: each membership's
    row in the batch (a hash table of the batch's names, not of every membership: ~3x
    faster at 200,000 memberships), then scattered to those rows. ``members`` has each
    name once (:func:`_board_members`); a name twice in ``names`` gets its board at its
    first row (the later one is dropped as a duplicate)."""
    where = pc.index_in(members["image_name"], value_set=names)
    found = where.is_valid()
    rows = where.filter(found).to_numpy()
    index = np.full(len(names), -1, dtype=np.int64)
    index[rows] = np.arange(len(rows))
    return pc.take(members["board_id"].filter(found), pa.array(index, mask=index < 0))


_NEW_NAMES = f"""
SELECT image_name, image_subfolder FROM {_READ_BATCH} b
WHERE NOT EXISTS (SELECT 1 FROM images i WHERE i.image_name = b.image_name)
"""


def _place(src: Path, dest: Path, mode: FilesMode) -> None:
    if dest.exists():
        return
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    if mode == "link":
        try:
            os.link(src, tmp)
        except OSError:  # another file system, or links not allowed: copy
            shutil.copyfile(src, tmp)
    else:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dest)


def _place_files(
    catalog: Any,
    src: InvokeAIRoot,
    new: list[tuple[str, str | None]],
    mode: FilesMode,
    report: InvokeAIImportReport,
) -> list[str]:
    """Put the files of new images in place; returns the names to leave out (no file)."""
    missing: list[str] = []
    files = catalog.files
    for name, sub in new:
        if "/" in name or "\\" in name or name.startswith("."):
            missing.append(name)
            report.skip("image", name, "unsafe image name: contains a path")
            continue
        png = src.image_path(name, sub or "")
        if not png.is_file():
            missing.append(name)
            report.skip("image", name, f"missing file: {png}")
            continue
        thumb_dest = files.thumbnail_path(name)
        thumb = src.thumbnail_path(name, sub or "")
        try:
            if thumb.is_file():
                _place(thumb, thumb_dest, mode)
            elif not thumb_dest.exists():
                from PIL import Image

                with Image.open(png) as im:
                    make_thumbnail(im).save(thumb_dest, "WEBP", quality=80)
            _place(png, files.path(name), mode)
        except OSError as e:
            missing.append(name)
            report.skip("image", name, f"unreadable file: {png}: {e}")
    return missing


def _board_members(src: InvokeAIRoot, conn: sqlite3.Connection, schema: Schema) -> pa.Table:
    """``board_images`` as one Arrow table (image_name, board_id), read once per import
    (30% of a million images in boards is ~20 MB) through the ADBC driver, as Arrow: no Python
    object per membership on the main thread, which would compete with the reader thread for
    the GIL (``conn`` for a live database, see :func:`import_images`); each batch looks its
    images up in it (:func:`_prepared`)."""
    empty = pa.table(
        {"image_name": pa.array([], pa.string()), "board_id": pa.array([], pa.string())}
    )
    if not schema.has("board_images"):
        return empty
    if src.live():
        rows = conn.execute(
            "SELECT CAST(image_name AS TEXT), CAST(board_id AS TEXT) FROM board_images"
        ).fetchall()
        return _first_of_each(
            pa.table(
                {
                    "image_name": pa.array([r[0] for r in rows], pa.string()),
                    "board_id": pa.array([r[1] for r in rows], pa.string()),
                }
            )
        )
    with _adbc(src) as conn, conn.cursor() as cur:
        # a typed first row (left out), as in _images_select: the driver types columns by it
        cur.execute(
            "SELECT '' AS image_name, '' AS board_id UNION ALL SELECT * FROM (SELECT "
            "CAST(image_name AS TEXT), CAST(board_id AS TEXT) FROM board_images)"
        )
        table = cur.fetch_arrow_table().slice(1)
    return _first_of_each(table.cast(empty.schema).combine_chunks())


def _first_of_each(members: pa.Table) -> pa.Table:
    """``members`` with each image name once, at its first row (``board_images`` has the
    name as its primary key; a database that broke it keeps the first, as a lookup would)."""
    names = members["image_name"]
    if pc.count_distinct(names).as_py() == len(names):
        return members
    first_row = pc.equal(pc.index_in(names, value_set=names), pa.array(range(len(names))))
    return members.filter(first_row)


SHAPE_MEMORY = "256MB"
"""The reader's private DuckDB (shaping one batch at a time) spills beyond this."""
IMPORT_MEMORY = "192MB"
"""DuckDB's memory limit while the rows go in (one thread: see :func:`_bulk_settings`)."""
INDEX_MEMORY = "512MB"
"""DuckDB's memory limit while the term index is built after the rows (its runs of words; see
:data:`invoke_nb.catalog.search.INDEX_CHUNK`): DuckDB spills beyond it instead of growing."""


@dataclass
class _Bulk:
    wrote: bool = True
    """Whether the import changed the catalog (no checkpoint after a run that added nothing:
    it would write only what others left in the WAL)."""


@contextlib.contextmanager
def _bulk_settings(catalog: Any) -> Iterator[_Bulk]:
    """Checkpoint less often during the import (DuckDB rewrites the image-name index at every
    checkpoint, so the default 16 MB WAL threshold would rewrite it every batch), bound
    DuckDB's memory (:data:`IMPORT_MEMORY`) and insert on one thread: the batch is already in
    rowid order, and one thread keeps that order with no sort, while a parallel insert that
    keeps it buffers the batch several times over (2.2 GiB peak RSS at 1M rows instead of 0.85)
    and is no faster, the other core reading the next batch meanwhile. Checkpoints at the
    end unless the import wrote nothing (:attr:`_Bulk.wrote`)."""
    names = ("checkpoint_threshold", "memory_limit", "threads")
    bulk = _Bulk()
    # settings belong to the open connection: hold it for the whole import
    with catalog.db.connection() as db:
        old = {k: db.execute(f"SELECT current_setting('{k}')").fetchone()[0] for k in names}
        db.execute("SET checkpoint_threshold = '512MB'")
        db.execute(f"SET memory_limit = '{IMPORT_MEMORY}'")
        db.execute("SET threads = 1")
        try:
            yield bulk
        finally:
            for k, v in old.items():
                db.execute(f"SET {k} = '{v}'")
            if bulk.wrote:
                db.execute("CHECKPOINT")


@contextlib.contextmanager
def _index_settings(catalog: Any) -> Iterator[None]:
    """Every thread and :data:`INDEX_MEMORY` for building the term index now (both restored)."""
    with catalog.db.connection() as db:
        old = {k: db.execute(f"SELECT current_setting('{k}')").fetchone()[0]
               for k in ("threads", "memory_limit")}  # fmt: skip
        db.execute("RESET threads")
        db.execute(f"SET memory_limit = '{INDEX_MEMORY}'")
        try:
            yield
        finally:
            for k, v in old.items():
                db.execute(f"SET {k} = '{v}'")


def _room_for(catalog: Any, batch: pa.Table) -> None:
    """Raise DuckDB's memory limit for a large batch (long metadata): inserting a row group
    on one thread holds about twice the batch's bytes (the JSON parsed, the columns written)
    besides DuckDB's own ~64 MiB, and running out would fail the import."""
    need = batch.nbytes + 64 * 2**20
    with catalog.db.connection() as db:
        current = db.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        if _bytes(current) < need:
            db.execute(f"SET memory_limit = '{need // 2**20 + 1}MiB'")


def _bytes(size: str) -> int:
    """A size as DuckDB shows it (``'488.2 MiB'``) in bytes."""
    number, unit = size.split()
    scale = {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
    scale |= {"KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
    return int(float(number) * scale[unit])


def import_images(
    catalog: Any,
    conn: sqlite3.Connection,
    schema: Schema,
    src: InvokeAIRoot,
    reader: ImageReader | None,
    report: InvokeAIImportReport,
    files: FilesMode,
    batch_size: int,
    progress: bool | Progress,
    index: IndexMode,
) -> None:
    """Insert the rows ``reader`` brings (started before the boards were imported, so its
    first batch is ready by now), ``batch_size`` rows per transaction, then count them for
    the gallery and index them (``index``, see :func:`_index`).

    A live database (``-wal``; ``reader`` None) is read one connection at a time, the
    reader started only now: its ADBC driver carries a SQLite of its own, and two SQLite
    libraries in one process do not see each other's locks on the WAL's shared memory (one
    could reset it under the other, which then dies of SIGBUS)."""
    total = conn.execute("SELECT count(*) FROM images").fetchone()[0]
    bar = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="img", desc="InvokeAI images")
    members = _board_members(src, conn, schema)
    with catalog.db.connection() as db:
        empty = not first(db.execute("SELECT count(*) FROM images"))[0]
    own = reader is None
    if reader is None:
        reader = ImageReader(src, schema, batch_size)
    # into an empty catalog every name is new; else the reader left out the names known
    # before it started (Known), and only a live library's batches are looked up
    check = not empty and reader.known is None
    try:
        with _bulk_settings(catalog) as bulk:
            # into an empty catalog, the indexes on images are built once after the rows (4x
            # faster than growing them); every name is then new, so no batch looks names up
            if empty:
                with catalog.db.transaction() as db:
                    name_index.drop(db)
            try:
                _insert_batches(catalog, iter(reader), members, src, report, files,
                                bar, progress, total, check)  # fmt: skip
            except BaseException:
                if empty:  # the rows committed so far keep their indexes
                    name_index.build_all(catalog.db.transaction)
                raise
            bulk.wrote = empty or report.added["images"] > 0
            dupes = _finish(catalog, rebuild_indexes=empty, checkpoint=bulk.wrote)
            for name in dupes:
                report.added["images"] -= 1
                report.skip("image", name, "duplicate image name: kept its first row")
    finally:
        if own:
            reader.close()
        if bar is not None:
            bar.close()
    _index(catalog, report, index)


def _finish(catalog: Any, rebuild_indexes: bool, checkpoint: bool) -> list[str]:
    """After the last batch, in one transaction on every core: the indexes dropped for the
    import built again (``rebuild_indexes``; returns the names found twice) and the new rows
    counted for the gallery (:mod:`invoke_nb.catalog.tallies`). Its commit checkpoints:
    what it built goes to the database file once, instead of to the WAL first (~0.35 s for
    the name index at 1M rows) and to the file again at the checkpoint after (``checkpoint``:
    the import wrote anything)."""

    def count(db: Any) -> None:
        tallies.catch_up(db)
        if checkpoint:
            db.execute("SET checkpoint_threshold = '0B'")  # restored by _bulk_settings

    with catalog.db.connection() as db:
        db.execute("RESET threads")
    if rebuild_indexes:
        return name_index.build_all(catalog.db.transaction, also=count)
    with catalog.db.transaction() as db:
        count(db)
    return []


def _insert_batches(
    catalog: Any,
    batches: Iterator[tuple[pa.Table | None, int]],
    members: pa.Table,
    src: InvokeAIRoot,
    report: InvokeAIImportReport,
    files: FilesMode,
    bar: Any,
    progress: bool | Progress,
    total: int,
    check: bool,
) -> None:
    """Insert the reader's batches, one transaction each. ``check``: look each batch's names
    up in the catalog (a live library, read without :class:`Known`); without it, a batch that
    meets a name someone inserted since the known rows were found is inserted again with
    the check."""
    done = 0
    for batch, known in batches:
        report.existing["images"] += known
        n = batch.num_rows if batch is not None else 0
        if batch is not None:
            _room_for(catalog, batch)
            leave_out: list[str] = []
            if files != "none":  # files first, for new images only; then their rows
                leave_out = _place_files(catalog, src, _new(catalog, batch, check), files, report)
            try:
                added = _insert(catalog, batch, members, leave_out, check)
            except duckdb.ConstraintException:
                if check:
                    raise
                added = _insert(catalog, batch, members, leave_out, check=True)
            del batch
            report.added["images"] += added
            report.existing["images"] += n - added - len(leave_out)
        done += known + n
        if bar is not None:
            bar.update(known + n)
        elif callable(progress):
            progress(done, total)


def _new(catalog: Any, batch: pa.Table, check: bool) -> list[tuple[str, str | None]]:
    """The names and subfolders of the batch's images not in the catalog (``check``; else
    all of them)."""
    if not check:
        return list(zip(batch["image_name"].to_pylist(),
                        batch["image_subfolder"].to_pylist(), strict=True))  # fmt: skip
    with catalog.db.connection() as db:
        db.register(_READ_BATCH, batch)
        try:
            return db.execute(_NEW_NAMES).fetchall()  # type: ignore[no-any-return]
        finally:
            db.unregister(_READ_BATCH)


def _insert(
    catalog: Any, batch: pa.Table, members: pa.Table, leave_out: list[str], check: bool
) -> int:
    """Insert one batch in its own transaction; returns how many rows went in."""
    with catalog.db.transaction() as db:
        batch = _prepared(db, batch, members, leave_out, check)
        db.register(_READ_BATCH, batch)
        try:
            row = db.execute(_INSERT_IMAGES).fetchall()[0]
        finally:  # after a failed insert the transaction refuses even this:
            with contextlib.suppress(Exception):  # the insert's error surfaces
                db.unregister(_READ_BATCH)
    return int(row[0]) if row else 0


def _index(catalog: Any, report: InvokeAIImportReport, index: IndexMode) -> None:
    """The search term index of the new rows: built now (``True``, timed in
    ``report.index_seconds``), by the catalog's background indexer (``"background"``), or
    when a catalog next opens (``False``). Searches meanwhile also scan the rows not yet
    indexed, so their results stay exact."""
    if index == "background":
        catalog.indexer.start()
    elif index is True:
        t = time.perf_counter()
        with _index_settings(catalog):
            while True:
                with catalog.db.transaction() as db:
                    if not term_index.index_some(db):
                        break
        report.index_seconds = time.perf_counter() - t
