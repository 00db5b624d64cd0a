"""Bring a whole InvokeAI library (a 4.x-6.x root) into a catalog, without torch.

What is read, from an InvokeAI root (paths from its ``invokeai.yaml`` when set there):
``databases/invokeai.db`` (opened read-only through SQLite's ``mode=ro`` URI, ``immutable``
when InvokeAI is not running, so nothing in the root is ever written; see
:meth:`InvokeAIRoot.connect`), ``outputs/images/[<subfolder>/]<name>.png`` with thumbnails in
``outputs/images/thumbnails/``, ``style_presets/images/<id>.webp`` and
``workflow_thumbnails/<id>.webp``.

What is brought in: images (metadata, starred, intermediate flag, category, origin, created
and updated times, board membership), boards (names, covers, archived), the user workflows
of the workflow library, user style presets and model records. Ids and image names are
InvokeAI's own, which makes the import idempotent (a second run adds nothing) and resumable
(each batch commits on its own; a re-run skips what is already there). Built-in workflows and
style presets (category/type ``default``) are skipped: they ship with InvokeAI.

Which schema: the importer asks SQLite which tables and columns exist instead of trusting a
version number, so migrator versions 9 (4.x) to 33 (6.14) read the same way: ``starred``,
``has_workflow``, ``archived``, ``image_subfolder``, ``style_presets`` and the ``models``
table are each used when present. A 3.x library (``model_config`` table) still gives its
images, boards and workflows; its models are reported as skipped.

Speed (1,000,000 rows): a reader thread reads the image rows (by rowid) as Arrow record
batches of ``batch_size`` rows through the ADBC SQLite driver (C code fills the columns; no
Python object per row), one or two batches ahead of the writer; the writer inserts each batch
with one ``INSERT ... SELECT`` over the Arrow batch that also joins board membership (read
once) and extracts the gallery columns (model, prompts, seed, steps, cfg, scheduler) from the
metadata JSON inside DuckDB. The default batch is one DuckDB row group (:data:`BATCH_ROWS`),
which DuckDB writes to the file directly instead of through its WAL. The search term index
is built once after the last batch (``index=True``), not inside each batch's transaction.
Files are hard-linked into the studio (``files="link"``, falling back to a copy across file
systems), copied (``"copy"``) or left out (``"none"``: rows only). Models are registered in
place (``owned=False``): nothing is copied, and removing them here never deletes InvokeAI's
files.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import sqlite3
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from invoke_nb.catalog import search as term_index
from invoke_nb.catalog.files import make_thumbnail
from invoke_nb.catalog.records import to_db_time, utcnow

__all__ = [
    "InvokeAIImportReport",
    "InvokeAILibraryError",
    "InvokeAIRoot",
    "Skipped",
    "import_invokeai",
]

FilesMode = Literal["link", "copy", "none"]
Progress = Callable[[int, int], None]

MAX_SKIPPED_DETAILS = 10_000

# One DuckDB row group. A transaction that inserts a whole row group writes it straight to the
# database file ("optimistic writes"); smaller batches go through the WAL and are written a
# second time at the checkpoint, which costs ~25% of the import's CPU. Two row groups are
# faster still but lift peak RSS near 2 GiB at 1M rows.
BATCH_ROWS = 122_880


class InvokeAILibraryError(ValueError):
    """The folder is not an InvokeAI root, or its database cannot be read."""


@dataclass(frozen=True)
class Skipped:
    """One thing not imported, and why."""

    kind: str  # image, board, workflow, style_preset, model
    name: str
    reason: str


@dataclass
class InvokeAIImportReport:
    """What an import did: counts per kind, and what was skipped with the reason."""

    root: str
    schema_version: int | None = None
    added: Counter[str] = field(default_factory=Counter)
    existing: Counter[str] = field(default_factory=Counter)
    skipped: list[Skipped] = field(default_factory=list)
    skipped_counts: Counter[str] = field(default_factory=Counter)
    skipped_reasons: Counter[tuple[str, str]] = field(default_factory=Counter)
    unresolved_models: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    index_seconds: float = 0.0

    def skip(self, kind: str, name: str, reason: str) -> None:
        """Record a skipped item: counted by kind and by reason every time, its details kept
        for the first 10,000."""
        self.skipped_counts[kind] += 1
        self.skipped_reasons[kind, _reason_kind(reason)] += 1
        if len(self.skipped) < MAX_SKIPPED_DETAILS:
            self.skipped.append(Skipped(kind, name, reason))

    @property
    def no_image_files(self) -> bool:
        """Images were to be imported but not one had its file: nothing of them came in."""
        missing = self.skipped_reasons["image", "missing file"]
        return bool(missing) and not self.added["images"] and not self.existing["images"]

    @property
    def images_per_second(self) -> float:
        """Images read per second of the whole import (added and already present)."""
        n = self.added["images"] + self.existing["images"] + self.skipped_counts["image"]
        return n / self.seconds if self.seconds else 0.0

    def __str__(self) -> str:
        kinds = ("images", "boards", "workflows", "style_presets", "models")
        lines = [f"InvokeAI library {self.root} (schema {self.schema_version}):"]
        for k in kinds:
            lines.append(
                f"  {k:<14} added {self.added[k]:>8}   already here {self.existing[k]:>8}   "
                f"skipped {self.skipped_counts[k.rstrip('s')]:>6}"
            )
        for (kind, why), n in self.skipped_reasons.most_common(10):
            lines.append(f"  skipped {kind}: {why} ({n})")
        if self.unresolved_models:
            top = ", ".join(f"{k} ({v})" for k, v in list(self.unresolved_models.items())[:5])
            lines.append(f"  images whose model is not installed here: {top}")
        lines.append(f"  {self.seconds:.1f} s")
        return "\n".join(lines)


def _reason_kind(reason: str) -> str:
    return reason.split(":")[0]


# -- the root -------------------------------------------------------------------------------
@dataclass(frozen=True)
class InvokeAIRoot:
    """Where an InvokeAI root keeps its database and files."""

    root: Path
    db_path: Path
    images_dir: Path
    thumbnails_dir: Path
    models_dir: Path
    style_preset_images_dir: Path
    workflow_thumbnails_dir: Path

    @classmethod
    def locate(cls, root: str | os.PathLike[str]) -> InvokeAIRoot:
        """Read ``invokeai.yaml`` (if any) for db/outputs/models folders; check the database."""
        base = Path(root).expanduser().resolve()
        if not base.is_dir():
            raise InvokeAILibraryError(f"{base} is not a folder")
        conf = _read_config(base / "invokeai.yaml")

        def folder(key: str, default: str) -> Path:
            p = Path(str(conf.get(key) or default)).expanduser()
            return p if p.is_absolute() else base / p

        db = folder("db_dir", "databases") / "invokeai.db"
        if not db.is_file():
            raise InvokeAILibraryError(
                f"{base} is not an InvokeAI root: no database at {db} "
                "(expected databases/invokeai.db, or db_dir in invokeai.yaml)"
            )
        images = folder("outputs_dir", "outputs") / "images"
        return cls(
            root=base,
            db_path=db,
            images_dir=images,
            thumbnails_dir=images / "thumbnails",
            models_dir=folder("models_dir", "models"),
            style_preset_images_dir=folder("style_presets_dir", "style_presets") / "images",
            workflow_thumbnails_dir=folder("workflow_thumbnails_dir", "workflow_thumbnails"),
        )

    def connect(self) -> sqlite3.Connection:
        """The database, read-only: SQLite refuses every write on this connection.

        InvokeAI keeps its database in WAL mode. Opening such a file even read-only makes
        SQLite create ``-wal`` and ``-shm`` files beside it, so when there is no ``-wal``
        (InvokeAI is not running; everything is in the main file) the file is opened as
        ``immutable``, which creates nothing. When a ``-wal`` exists (InvokeAI running, or
        stopped uncleanly) the newest rows are in it: then it is read through SQLite's normal
        read-only protocol, using the files InvokeAI already made.
        """
        try:
            conn = sqlite3.connect(self.uri(), uri=True, check_same_thread=False)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as e:
            raise InvokeAILibraryError(f"cannot read InvokeAI database {self.db_path}: {e}") from e
        return conn

    def uri(self) -> str:
        """The database's read-only SQLite URI (see :meth:`connect`)."""
        wal = self.db_path.with_name(self.db_path.name + "-wal")
        mode = "mode=ro" if wal.exists() else "mode=ro&immutable=1"
        return f"file:{urllib.request.pathname2url(str(self.db_path))}?{mode}"

    def image_path(self, name: str, subfolder: str = "") -> Path:
        return self.images_dir / subfolder / name if subfolder else self.images_dir / name

    def thumbnail_path(self, name: str, subfolder: str = "") -> Path:
        thumb = Path(name).stem + ".webp"
        return self.thumbnails_dir / subfolder / thumb if subfolder else self.thumbnails_dir / thumb


_YAML_LINE = re.compile(r"^([A-Za-z_]+):\s*(.*?)\s*$")


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        import yaml

        data = yaml.safe_load(text)
        return data if isinstance(data, dict) else {}
    except ImportError:  # top-level scalars are all we need
        out: dict[str, Any] = {}
        for line in text.splitlines():
            m = _YAML_LINE.match(line)
            if m and m.group(2):
                out[m.group(1)] = m.group(2).strip("'\"")
        return out
    except Exception as e:
        raise InvokeAILibraryError(f"cannot parse {path}: {e}") from e


# -- schema ---------------------------------------------------------------------------------
class _Schema:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.tables = {
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        self.columns = {
            t: {r[1] for r in conn.execute(f'PRAGMA table_info("{t}")')} for t in self.tables
        }
        self.version: int | None = None
        if "migrations" in self.tables:
            row = conn.execute("SELECT max(version) FROM migrations").fetchone()
            self.version = int(row[0]) if row and row[0] is not None else None

    def has(self, table: str, column: str | None = None) -> bool:
        if column is None:
            return table in self.tables
        return column in self.columns.get(table, set())

    def col(self, table: str, column: str, cast: str, default: str = "NULL") -> str:
        """``CAST(t.column AS cast)``, or the default when this schema lacks the column."""
        if self.has(table, column):
            return f"CAST({table}.{column} AS {cast})"
        return default


# -- import ---------------------------------------------------------------------------------
def import_invokeai(
    catalog: Any,
    root: str | os.PathLike[str],
    *,
    files: FilesMode = "link",
    models: bool = True,
    batch_size: int = BATCH_ROWS,
    progress: bool | Progress = True,
    index: bool = True,
) -> InvokeAIImportReport:
    """Import the InvokeAI library at ``root`` into ``catalog``; see the module docstring.

    ``progress``: True shows a tqdm bar, False nothing; a callable gets ``(done, total)``
    image counts after each batch (raising from it stops the import cleanly: every batch
    before it is committed, and a later run continues where this one stopped).

    ``index``: build the search term index of the new rows once, after the rows are in (one
    set-based statement; its time is ``report.index_seconds``). False leaves it to the next
    :func:`invoke_nb.catalog.search.catch_up`; searches meanwhile also scan the rows not yet
    indexed, so their results stay exact.
    """
    if files not in ("link", "copy", "none"):
        raise ValueError(f"files must be 'link', 'copy' or 'none', not {files!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    start = time.perf_counter()
    src = InvokeAIRoot.locate(root)
    report = InvokeAIImportReport(root=str(src.root))
    conn = src.connect()
    try:
        schema = _Schema(conn)
        report.schema_version = schema.version
        if not schema.has("images"):
            raise InvokeAILibraryError(f"{src.db_path} has no images table")
        _import_boards(catalog, conn, schema, report)
        _import_workflows(catalog, conn, schema, src, report)
        _import_style_presets(catalog, conn, schema, src, report)
        if models:
            _import_models(catalog, conn, schema, src, report)
        _import_images(catalog, conn, schema, src, report, files, batch_size, progress, index)
    finally:
        conn.close()
        report.seconds = time.perf_counter() - start
    report.unresolved_models = _unresolved_models(catalog)
    return report


def _time(value: Any) -> datetime | None:
    """An InvokeAI DATETIME text as naive UTC (None, or unreadable, gives None)."""
    if value is None:
        return None
    text = str(value).strip().replace("T", " ")
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
        with contextlib.suppress(ValueError):
            return datetime.strptime(text[:26], fmt)
    with contextlib.suppress(ValueError):
        return to_db_time(datetime.fromisoformat(str(value)))
    return None


def _existing(catalog: Any, table: str, key: str, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    with catalog.db.connection() as db:
        db.register("_ia_ids", pa.table({"id": pa.array(ids, pa.string())}))
        try:
            rows = db.execute(f"SELECT {key} FROM {table} WHERE {key} IN (SELECT id FROM _ia_ids)")
            return {r[0] for r in rows.fetchall()}
        finally:
            db.unregister("_ia_ids")


def _import_boards(
    catalog: Any, conn: sqlite3.Connection, schema: _Schema, report: InvokeAIImportReport
) -> None:
    if not schema.has("boards"):
        return
    archived = schema.col("boards", "archived", "INTEGER", "0")
    rows = conn.execute(
        "SELECT board_id, board_name, cover_image_name, created_at, updated_at, deleted_at, "
        f"{archived} FROM boards"
    ).fetchall()
    have = _existing(catalog, "boards", "board_id", [r[0] for r in rows])
    now = utcnow()
    new = []
    for bid, name, cover, created, updated, deleted, arch in rows:
        if bid in have:
            report.existing["boards"] += 1
            continue
        if not bid or not isinstance(name, str):
            report.skip("board", str(bid), "malformed row: no board id or name")
            continue
        c = _time(created) or now
        new.append([bid, name, cover, bool(arch), c, _time(updated) or c, _time(deleted)])
    if new:
        with catalog.db.transaction() as db:
            db.executemany(
                "INSERT INTO boards (board_id, board_name, cover_image_name, archived, "
                "created_at, updated_at, deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                new,
            )
    report.added["boards"] += len(new)


def _copy_aside(src: Path, dest_dir: Path) -> str | None:
    """Copy a small side file (a thumbnail) into the studio; its new path, or None."""
    if not src.is_file():
        return None
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / src.name
    if not dest.exists():
        shutil.copyfile(src, dest)
    return str(dest)


def _import_workflows(
    catalog: Any,
    conn: sqlite3.Connection,
    schema: _Schema,
    src: InvokeAIRoot,
    report: InvokeAIImportReport,
) -> None:
    if not schema.has("workflow_library"):
        return
    opened = schema.col("workflow_library", "opened_at", "TEXT")
    rows = conn.execute(
        f"SELECT workflow_id, workflow, created_at, updated_at, {opened} FROM workflow_library"
    ).fetchall()
    have = _existing(catalog, "workflows", "workflow_id", [r[0] for r in rows])
    now = utcnow()
    new = []
    for wid, text, created, updated, opened_at in rows:
        if wid in have:
            report.existing["workflows"] += 1
            continue
        try:
            wf = json.loads(text)
        except (TypeError, ValueError) as e:
            report.skip("workflow", wid, f"unreadable workflow JSON: {e}")
            continue
        if not isinstance(wf, dict):
            report.skip("workflow", wid, "unreadable workflow JSON: not an object")
            continue
        meta = wf.get("meta") if isinstance(wf.get("meta"), dict) else {}
        category = str(meta.get("category") or "user")
        if category == "default":
            report.skip("workflow", wid, "built into InvokeAI: default workflows are not copied")
            continue
        tags = wf.get("tags") or ""
        thumb = _copy_aside(
            src.workflow_thumbnails_dir / f"{wid}.webp", catalog.root / "workflow_thumbnails"
        )
        c = _time(created) or now
        new.append(
            [
                wid,
                str(wf.get("name") or "Untitled workflow"),
                str(wf.get("description") or ""),
                category,
                ", ".join(tags) if isinstance(tags, list) else str(tags),
                json.dumps({**wf, "id": wid}, separators=(",", ":")),
                thumb,
                _time(opened_at),
                c,
                _time(updated) or c,
            ]
        )
    if new:
        with catalog.db.transaction() as db:
            db.executemany(
                "INSERT INTO workflows (workflow_id, name, description, category, tags, "
                "workflow, thumbnail, opened_at, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                new,
            )
    report.added["workflows"] += len(new)


def _import_style_presets(
    catalog: Any,
    conn: sqlite3.Connection,
    schema: _Schema,
    src: InvokeAIRoot,
    report: InvokeAIImportReport,
) -> None:
    if not schema.has("style_presets"):
        return
    rows = conn.execute(
        "SELECT id, name, preset_data, type, created_at, updated_at FROM style_presets"
    ).fetchall()
    have = _existing(catalog, "style_presets", "id", [r[0] for r in rows])
    now = utcnow()
    new = []
    for pid, name, data, ptype, created, updated in rows:
        if pid in have:
            report.existing["style_presets"] += 1
            continue
        if ptype == "default":
            report.skip(
                "style_preset", str(name), "built into InvokeAI: default presets ship with it"
            )
            continue
        try:
            d = json.loads(data) if data else {}
        except ValueError as e:
            report.skip("style_preset", str(name), f"unreadable preset_data JSON: {e}")
            continue
        image = _copy_aside(
            src.style_preset_images_dir / f"{pid}.webp", catalog.root / "style_presets"
        )
        c = _time(created) or now
        new.append(
            [
                pid,
                str(name),
                str(d.get("positive_prompt") or ""),
                str(d.get("negative_prompt") or ""),
                str(ptype or "user"),
                image,
                c,
                _time(updated) or c,
            ]
        )
    if new:
        with catalog.db.transaction() as db:
            db.executemany(
                "INSERT INTO style_presets (id, name, positive_prompt, negative_prompt, type, "
                "image, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                new,
            )
    report.added["style_presets"] += len(new)


_RECORD_FIELDS = {
    "description",
    "source",
    "source_type",
    "source_api_response",
    "file_size",
    "variant",
    "prediction_type",
    "default_settings",
    "trigger_phrases",
}


def _import_models(
    catalog: Any,
    conn: sqlite3.Connection,
    schema: _Schema,
    src: InvokeAIRoot,
    report: InvokeAIImportReport,
) -> None:
    from invoke_nb.models.records import ModelRecord

    if not schema.has("models"):
        if schema.has("model_config"):
            n = conn.execute("SELECT count(*) FROM model_config").fetchone()[0]
            for _ in range(n):
                report.skip("model", "model_config", "InvokeAI 3.x model table: install again")
        return
    store = catalog.models
    for key, text, created, updated in conn.execute(
        "SELECT id, config, created_at, updated_at FROM models"
    ).fetchall():
        try:
            cfg = json.loads(text)
            name, path, digest = cfg["name"], cfg["path"], cfg.get("hash") or ""
            base, mtype, fmt = cfg["base"], cfg["type"], cfg["format"]
        except (TypeError, ValueError, KeyError) as e:
            report.skip("model", str(key), f"unreadable model config: {e}")
            continue
        with contextlib.suppress(Exception):
            store.get(key)
            report.existing["models"] += 1
            continue
        if "unknown" in (base, mtype):
            report.skip("model", name, "unknown model: InvokeAI could not identify it")
            continue
        same = store.by_hash(digest) if digest else None
        if same is not None:
            report.existing["models"] += 1
            report.skip("model", name, f"already installed: same hash as {same.name!r}")
            continue
        full = Path(path).expanduser()
        if not full.is_absolute():
            full = src.models_dir / full
        if not full.exists():
            report.skip("model", name, f"missing file: {full}")
            continue
        known = {k: cfg[k] for k in _RECORD_FIELDS if cfg.get(k) is not None}
        extra = {
            k: v
            for k, v in cfg.items()
            if k not in _RECORD_FIELDS
            and k not in ("key", "hash", "path", "name", "base", "type", "format")
        }
        try:
            rec = ModelRecord(
                key=key,
                hash=digest,
                path=str(full),
                name=name,
                base=base,
                type=mtype,
                format=fmt,
                owned=False,
                extra={"invokeai": extra},
                created_at=_aware(_time(created)),
                updated_at=_aware(_time(updated)),
                **known,
            )
        except Exception as e:
            report.skip("model", name, f"unreadable model config: {e}")
            continue
        store.add(rec)
        report.added["models"] += 1


def _aware(value: datetime | None) -> datetime:
    return value.replace(tzinfo=UTC) if value is not None else datetime.now(UTC)


# -- images ---------------------------------------------------------------------------------
# Image rows travel from SQLite to DuckDB as Arrow record batches: the ADBC SQLite driver
# steps SQLite and fills Arrow columns in C (no Python object per row, the GIL released), and
# DuckDB reads each batch in place. The driver infers a column's type from its first batch, so
# the query starts with one typed row (r = -1, sliced off): a text column that is NULL
# in every row of the first batch would otherwise be typed as an integer and fail later.
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


def _images_select(schema: _Schema) -> str:
    """Every image row in rowid order, after one typed row; columns a schema lacks are NULL
    (or their InvokeAI default).

    Board membership is not joined here: a join costs SQLite an index lookup per image
    (~4 us); :func:`_board_members` reads ``board_images`` once and DuckDB joins it per batch.
    """
    typed = ", ".join(f"CAST({v} AS {t}) AS {k}" for k, (t, v) in _COLUMNS.items())
    exprs = ", ".join(
        f"{schema.col('images', k, t, _DEFAULTS.get(k, 'NULL'))} AS {k}"
        for k, (t, _) in _COLUMNS.items()
    )
    return (
        f"SELECT -1 AS r, {typed} UNION ALL "
        f"SELECT * FROM (SELECT images.rowid AS r, {exprs} FROM images "
        "WHERE images.rowid > ? ORDER BY images.rowid)"
    )


def _batches(src: InvokeAIRoot, schema: _Schema, batch_size: int) -> Iterator[pa.Table]:
    """The image rows as Arrow tables of ``batch_size`` rows (the last one shorter), the typed
    first row left out. Tables are zero-copy slices of the driver's batches."""
    import adbc_driver_sqlite.dbapi as adbc

    with contextlib.closing(adbc.connect(src.uri())) as conn, conn.cursor() as cur:
        cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(batch_size)})
        cur.execute(_images_select(schema), (-(2**63),))
        pending: pa.Table | None = None
        for k, batch in enumerate(cur.fetch_record_batch()):
            part = pa.Table.from_batches([batch.slice(1) if k == 0 else batch])
            pending = part if pending is None else pa.concat_tables([pending, part])
            while pending.num_rows >= batch_size:
                yield pending.slice(0, batch_size)
                pending = pending.slice(batch_size)
        if pending is not None and pending.num_rows:
            yield pending


class _Reader:
    """Reads batches in a thread, one or two ahead of the DuckDB writer (the driver
    and DuckDB's insert both release the GIL, so reading and writing overlap)."""

    def __init__(self, src: InvokeAIRoot, schema: _Schema, batch_size: int) -> None:
        self._queue: queue.Queue[pa.Table | BaseException | None] = queue.Queue(1)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run,
            args=(src, schema, batch_size),
            name="invokeai-reader",
            daemon=True,
        )
        self._thread.start()

    def _run(self, src: InvokeAIRoot, schema: _Schema, size: int) -> None:
        try:
            for item in _batches(src, schema, size):
                if not self._put(item):
                    return
            self._put(None)
        except BaseException as e:  # handed to the writer, which raises it
            self._put(e)

    def _put(self, item: pa.Table | BaseException | None) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[pa.Table]:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


# Gallery columns from InvokeAI's metadata, parsed once per row by one multi-path extraction
# (4.x+ model {key, hash, name, base, type}; 3.x model {model_name, base_model}; older
# metadata may name the model as a plain string). Same meaning as
# pngmeta.columns_from_metadata.
_PATHS = [
    "$.model.name",
    "$.model.model_name",
    "$.model",
    "$.model.key",
    "$.model.base",
    "$.model.base_model",
    "$.positive_prompt",
    "$.negative_prompt",
    "$.seed",
    "$.steps",
    "$.cfg_scale",
    "$.scheduler",
]
_P = {p: i + 1 for i, p in enumerate(_PATHS)}  # DuckDB lists are 1-based


def _v(path: str) -> str:
    return f"v[{_P[path]}]"


_READ_BATCH = "_ia_batch"

_INSERT_IMAGES = f"""
INSERT INTO images (image_name, image_origin, image_category, width, height, session_id,
    node_id, is_intermediate, starred, has_workflow, board_id, created_at, updated_at,
    deleted_at, metadata, model_name, model_key, model_base, positive_prompt, negative_prompt,
    seed, steps, cfg_scale, scheduler, source)
SELECT image_name, coalesce(image_origin, 'internal'), coalesce(image_category, 'general'),
    width, height, session_id, node_id, coalesce(is_intermediate, 0) <> 0,
    coalesce(starred, 0) <> 0, coalesce(has_workflow, 0) <> 0, board_id,
    coalesce(TRY_CAST(created_at AS TIMESTAMP), $now),
    coalesce(TRY_CAST(updated_at AS TIMESTAMP), TRY_CAST(created_at AS TIMESTAMP), $now),
    TRY_CAST(deleted_at AS TIMESTAMP), m,
    coalesce({_v("$.model.name")}, {_v("$.model.model_name")},
        CASE WHEN NOT starts_with({_v("$.model")}, '{{') THEN {_v("$.model")} END),
    {_v("$.model.key")}, coalesce({_v("$.model.base")}, {_v("$.model.base_model")}),
    {_v("$.positive_prompt")}, {_v("$.negative_prompt")},
    TRY_CAST({_v("$.seed")} AS BIGINT), TRY_CAST({_v("$.steps")} AS INTEGER),
    TRY_CAST({_v("$.cfg_scale")} AS DOUBLE), {_v("$.scheduler")}, 'invokeai'
FROM (
    SELECT *, json_extract_string(m, {_PATHS!r}) AS v
    FROM (
        SELECT b.*, ib.board_id,
            CASE WHEN starts_with(ltrim(metadata), '{{') THEN TRY_CAST(metadata AS JSON) END AS m
        FROM {_READ_BATCH} b LEFT JOIN _ia_boards ib ON ib.image_name = b.image_name
        WHERE NOT EXISTS (SELECT 1 FROM images i WHERE i.image_name = b.image_name)
        AND b.image_name NOT IN (SELECT image_name FROM _ia_leave_out)
    )
)
ORDER BY r
"""

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


def _board_members(conn: sqlite3.Connection, schema: _Schema) -> pa.Table:
    """``board_images`` as one Arrow table (image_name, board_id), read once per import
    (30% of a million images in boards is ~20 MB), joined to each batch inside DuckDB."""
    names: list[str] = []
    boards: list[str] = []
    if schema.has("board_images"):
        cur = conn.execute(
            "SELECT CAST(image_name AS TEXT), CAST(board_id AS TEXT) FROM board_images"
        )
        while rows := cur.fetchmany(100_000):
            for name, board in rows:
                names.append(name)
                boards.append(board)
    return pa.table(
        {"image_name": pa.array(names, pa.string()), "board_id": pa.array(boards, pa.string())}
    )


IMPORT_MEMORY = "512MB"
"""DuckDB's memory limit during an import: the term index build sorts ~60 words per image and
would otherwise hold them all in RAM (5.7 GiB at 1M images); with the limit it spills."""


@contextlib.contextmanager
def _bulk_settings(catalog: Any) -> Iterator[None]:
    """Checkpoint less often during the import (DuckDB rewrites the image-name index at every
    checkpoint, so the default 16 MB WAL threshold would rewrite it every batch), and bound
    DuckDB's memory (:data:`IMPORT_MEMORY`)."""
    names = ("checkpoint_threshold", "memory_limit")
    # settings belong to the open connection: hold it for the whole import
    with catalog.db.connection() as db:
        old = {k: db.execute(f"SELECT current_setting('{k}')").fetchone()[0] for k in names}
        db.execute("SET checkpoint_threshold = '512MB'")
        db.execute(f"SET memory_limit = '{IMPORT_MEMORY}'")
        try:
            yield
        finally:
            for k, v in old.items():
                db.execute(f"SET {k} = '{v}'")
            db.execute("CHECKPOINT")


def _import_images(
    catalog: Any,
    conn: sqlite3.Connection,
    schema: _Schema,
    src: InvokeAIRoot,
    report: InvokeAIImportReport,
    files: FilesMode,
    batch_size: int,
    progress: bool | Progress,
    index: bool,
) -> None:
    total = conn.execute("SELECT count(*) FROM images").fetchone()[0]
    bar = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="img", desc="InvokeAI images")
    done = 0
    members = _board_members(conn, schema)
    reader = _Reader(src, schema, batch_size)
    try:
        with _bulk_settings(catalog):
            for batch in reader:
                n = batch.num_rows
                leave_out: list[str] = []
                if files != "none":  # files first, for new images only; then their rows
                    with catalog.db.connection() as db:
                        db.register("_ia_batch", batch)
                        try:
                            new = db.execute(_NEW_NAMES).fetchall()
                        finally:
                            db.unregister("_ia_batch")
                    leave_out = _place_files(catalog, src, new, files, report)
                with catalog.db.transaction() as db:
                    db.register(
                        "_ia_leave_out", pa.table({"image_name": pa.array(leave_out, pa.string())})
                    )
                    db.register("_ia_boards", members)
                    db.register("_ia_batch", batch)
                    try:
                        row = db.execute(_INSERT_IMAGES, {"now": utcnow()}).fetchall()[0]
                    finally:
                        db.unregister("_ia_leave_out")
                        db.unregister("_ia_boards")
                        db.unregister("_ia_batch")
                del batch
                added = int(row[0]) if row else 0
                report.added["images"] += added
                report.existing["images"] += n - added - len(leave_out)
                done += n
                if bar is not None:
                    bar.update(n)
                elif callable(progress):
                    progress(done, total)
            if index:  # once, set-based, after every batch is in
                t = time.perf_counter()
                with catalog.db.transaction() as db:
                    term_index.catch_up(db)
                report.index_seconds = time.perf_counter() - t
    finally:
        reader.close()
        if bar is not None:
            bar.close()


def _unresolved_models(catalog: Any) -> dict[str, int]:
    """Imported images whose model is installed neither by key nor by name and base."""
    with catalog.db.connection() as db:
        rows = db.execute(
            "SELECT coalesce(i.model_name, '?') || ' (' || coalesce(i.model_base, '?') || ')', "
            "count(*) AS n FROM images i WHERE i.source = 'invokeai' "
            "AND (i.model_name IS NOT NULL OR i.model_key IS NOT NULL) "
            "AND NOT EXISTS (SELECT 1 FROM models m WHERE m.key = i.model_key "
            "OR (m.name = i.model_name AND (i.model_base IS NULL OR m.base = i.model_base))) "
            "GROUP BY 1 ORDER BY n DESC LIMIT 50"
        ).fetchall()
    return {name: int(n) for name, n in rows}
