"""Where an InvokeAI root keeps its database and files, which schema it has, and the report
of an import (shared by the per-entity modules of :mod:`invoke_nb.interchange.invokeai`)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from invoke_nb.catalog.records import to_db_time

__all__ = [
    "MAX_SKIPPED_DETAILS",
    "InvokeAIImportReport",
    "InvokeAILibraryError",
    "InvokeAIRoot",
    "Schema",
    "Skipped",
    "aware",
    "copy_aside",
    "existing_ids",
    "parse_time",
]


MAX_SKIPPED_DETAILS = 10_000


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

    def live(self) -> bool:
        """Whether the database has a ``-wal`` file (InvokeAI running, or stopped uncleanly):
        it is then read through SQLite's locks and shared memory (see :meth:`connect`)."""
        return self.db_path.with_name(self.db_path.name + "-wal").exists()

    def uri(self) -> str:
        """The database's read-only SQLite URI (see :meth:`connect`)."""
        mode = "mode=ro" if self.live() else "mode=ro&immutable=1"
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
class Schema:
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


def parse_time(value: Any) -> datetime | None:
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


def existing_ids(catalog: Any, table: str, key: str, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    with catalog.db.connection() as db:
        db.register("_ia_ids", pa.table({"id": pa.array(ids, pa.string())}))
        try:
            rows = db.execute(f"SELECT {key} FROM {table} WHERE {key} IN (SELECT id FROM _ia_ids)")
            return {r[0] for r in rows.fetchall()}
        finally:
            db.unregister("_ia_ids")


def copy_aside(src: Path, dest_dir: Path) -> str | None:
    """Copy a small side file (a thumbnail) into the studio; its new path, or None."""
    if not src.is_file():
        return None
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / src.name
    if not dest.exists():
        shutil.copyfile(src, dest)
    return str(dest)


def aware(value: datetime | None) -> datetime:
    return value.replace(tzinfo=UTC) if value is not None else datetime.now(UTC)
