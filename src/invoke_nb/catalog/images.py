"""The images repository: records, files and the gallery queries over them.

Gallery queries are top-N scans: DuckDB reads only the columns a query names, skips row
groups by their min/max zone maps, and keeps a heap of the best N rows, so "newest 100" costs a
few milliseconds at a million rows with no index. Offset pages cost more the deeper they go,
so every page also returns a keyset ``next_cursor`` (the last row's sort key): passing it back
gives the next page at first-page cost.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import uuid
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow as pa
from PIL import Image, UnidentifiedImageError

from invoke_nb.catalog.connection import Database, first
from invoke_nb.catalog.errors import ImageFileError, NotFoundError
from invoke_nb.catalog.files import ImageFiles, RecoveryReport
from invoke_nb.catalog.pngmeta import (
    build_pnginfo,
    columns_from_metadata,
    dumps,
    extract,
    graph_hash,
    read_text_chunks,
)
from invoke_nb.catalog.records import ImageRecord, ImportResult, to_db_time, utcnow

__all__ = ["UNCATEGORIZED", "ImagePage", "ImageRepository"]

UNCATEGORIZED = "none"
"""Pass as ``board_id`` to list images on no board (InvokeAI's name for it)."""

COLUMNS: tuple[str, ...] = tuple(ImageRecord.model_fields)
_COLS = ", ".join(COLUMNS)
_ARROW_TYPES: dict[str, pa.DataType] = {
    "width": pa.int32(),
    "height": pa.int32(),
    "steps": pa.int32(),
    "seed": pa.int64(),
    "cfg_scale": pa.float64(),
    "is_intermediate": pa.bool_(),
    "starred": pa.bool_(),
    "has_workflow": pa.bool_(),
    "created_at": pa.timestamp("us"),
    "updated_at": pa.timestamp("us"),
    "deleted_at": pa.timestamp("us"),
}
ARROW_SCHEMA = pa.schema([(c, _ARROW_TYPES.get(c, pa.string())) for c in COLUMNS])

Order = Literal["newest", "oldest"]
_DEFAULTS: dict[str, Any] = {
    "image_origin": "internal",
    "image_category": "general",
    "is_intermediate": False,
    "starred": False,
    "has_workflow": False,
}


@dataclass
class ImagePage:
    """One page of a gallery query; ``next_cursor`` is None on the last page."""

    items: list[ImageRecord]
    next_cursor: str | None
    offset: int
    limit: int

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.items)

    @property
    def names(self) -> list[str]:
        """The image names on this page, in order."""
        return [r.image_name for r in self.items]


def _row_to_record(names: Sequence[str], row: Sequence[Any]) -> ImageRecord:
    data = dict(zip(names, row, strict=True))
    if isinstance(data.get("metadata"), str):
        data["metadata"] = json.loads(data["metadata"])
    return ImageRecord.model_validate(data)


def _encode_cursor(starred: bool | None, created_at: datetime, name: str) -> str:
    raw = json.dumps([starred, to_db_time(created_at).isoformat(), name])
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str) -> tuple[bool | None, datetime, str]:
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


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class ImageRepository:
    """Images: save/import files, query the gallery, bulk star/move/delete, export."""

    def __init__(self, db: Database, files: ImageFiles) -> None:
        self._db = db
        self.files = files

    # -- writing ----------------------------------------------------------------------------
    def save(
        self,
        image: Image.Image,
        *,
        metadata: dict[str, Any] | None = None,
        graph: dict[str, Any] | None = None,
        workflow: dict[str, Any] | None = None,
        board_id: str | None = None,
        is_intermediate: bool = False,
        session_id: str | None = None,
        node_id: str | None = None,
        origin: str = "internal",
        category: str = "general",
        starred: bool = False,
    ) -> ImageRecord:
        """Write a PNG with InvokeAI's metadata chunks, its thumbnail and its record, atomically."""
        if not isinstance(image, Image.Image):
            raise TypeError(f"images.save needs a PIL image, got {type(image).__name__}")
        for what, value in (("metadata", metadata), ("graph", graph), ("workflow", workflow)):
            if value is not None and not isinstance(value, dict):
                raise TypeError(f"images.save: {what} must be a dict, got {type(value).__name__}")
        now = utcnow()
        row = {
            "image_name": f"{uuid.uuid4()}.png",
            "image_origin": origin,
            "image_category": category,
            "width": image.width,
            "height": image.height,
            "session_id": session_id,
            "node_id": node_id,
            "is_intermediate": is_intermediate,
            "starred": starred,
            "has_workflow": workflow is not None,
            "board_id": board_id,
            "created_at": now,
            "updated_at": now,
            "metadata": dumps(metadata) if metadata is not None else None,
            "graph_hash": graph_hash(graph),
            "source": "invoke-nb",
            **columns_from_metadata(metadata),
        }
        self._stage_and_insert([(row, image, build_pnginfo(metadata, graph, workflow), None)])
        return self.get(row["image_name"])

    def _stage_and_insert(
        self, items: list[tuple[dict[str, Any], Image.Image | None, Any, bytes | None]]
    ) -> None:
        names = [row["image_name"] for row, *_ in items]
        boards = {row["board_id"] for row, *_ in items if row.get("board_id")}
        try:
            for row, image, pnginfo, raw in items:
                self.files.stage(row["image_name"], image, pnginfo, raw)
            with self._db.transaction() as conn:
                self._check_boards(conn, boards)
                self._insert_rows(conn, [row for row, *_ in items])
        except BaseException:
            self.files.discard(names)
            raise
        self.files.commit(names)

    @staticmethod
    def _check_boards(conn: Any, boards: set[str]) -> None:
        if not boards:
            return
        found = {
            r[0]
            for r in conn.execute(
                f"SELECT board_id FROM boards WHERE board_id IN ({placeholders(len(boards))})",
                list(boards),
            ).fetchall()
        }
        missing = sorted(boards - found)
        if missing:
            raise NotFoundError(f"no board with id {missing[0]!r}")

    @staticmethod
    def _insert_rows(conn: Any, rows: list[dict[str, Any]]) -> None:
        full = []
        for row in rows:
            if not row.get("image_name") or row.get("width") is None or row.get("height") is None:
                raise ValueError(f"image row needs image_name, width and height: {row!r:.200}")
            data = {**_DEFAULTS, **{k: v for k, v in row.items() if v is not None}}
            data.setdefault("created_at", utcnow())
            data.setdefault("updated_at", data["created_at"])
            full.append({c: data.get(c) for c in COLUMNS})
        table = pa.Table.from_pylist(full, schema=ARROW_SCHEMA)
        conn.register("_new_images", table)
        try:
            conn.execute(f"INSERT INTO images ({_COLS}) SELECT {_COLS} FROM _new_images")
        except duckdb.ConstraintException as exc:
            raise ValueError(f"image rows rejected, nothing inserted: {exc}") from None
        finally:
            with contextlib.suppress(duckdb.Error):
                conn.unregister("_new_images")

    def insert_records(self, records: Iterable[ImageRecord | dict[str, Any]]) -> int:
        """Bulk-insert records whose files already exist (imports, benchmarks): one transaction."""
        rows = []
        for rec in records:
            data = rec.model_dump() if isinstance(rec, ImageRecord) else dict(rec)
            if isinstance(data.get("metadata"), dict):
                data["metadata"] = dumps(data["metadata"])
            for key in ("created_at", "updated_at", "deleted_at"):
                if isinstance(data.get(key), datetime):
                    data[key] = to_db_time(data[key])
            rows.append(data)
        if rows:
            with self._db.transaction() as conn:
                self._insert_rows(conn, rows)
        return len(rows)

    def insert_arrow(self, table: pa.Table) -> int:
        """Bulk-insert an Arrow table with (a subset of) the image columns; fastest path."""
        cols = ", ".join(table.column_names)
        with self._db.transaction() as conn:
            conn.register("_new_images", table)
            try:
                conn.execute(f"INSERT INTO images ({cols}) SELECT {cols} FROM _new_images")
            finally:
                conn.unregister("_new_images")
        return table.num_rows

    # -- reading ----------------------------------------------------------------------------
    def get(self, image_name: str) -> ImageRecord:
        """The record of one image; :class:`NotFoundError` if there is none."""
        with self._db.connection() as conn:
            cur = conn.execute(f"SELECT {_COLS} FROM images WHERE image_name = ?", [image_name])
            row = first(cur)
        if row is None:
            raise NotFoundError(f"no image named {image_name!r} in the catalog")
        return _row_to_record(COLUMNS, row)

    def exists(self, image_names: Sequence[str]) -> set[str]:
        """Which of these names have records."""
        if not image_names:
            return set()
        with self._db.connection() as conn:
            return self._existing(conn, image_names)

    def path(self, image_name: str) -> Path:
        """The PNG file of a catalogued image."""
        self.get(image_name)
        return self.files.path(image_name)

    def get_pil(self, image_name: str, mode: str | None = None) -> Image.Image:
        """The image, loaded into memory (converted to ``mode`` if given)."""
        path = self.files.path(image_name)
        try:
            with Image.open(path) as im:
                im.load()
                out = im.convert(mode) if mode else im.copy()
        except FileNotFoundError:
            self.get(image_name)  # NotFoundError if there is no record either
            raise ImageFileError(f"image {image_name!r} has a record but no file {path}") from None
        return out

    def get_thumbnail(self, image_name: str) -> Image.Image:
        """The WebP thumbnail (at most 256 px a side)."""
        path = self.files.thumbnail_path(image_name)
        if not path.exists():
            raise NotFoundError(f"no thumbnail for image {image_name!r} ({path})")
        with Image.open(path) as im:
            im.load()
            return im.copy()

    def _chunks(self, image_name: str) -> dict[str, str]:
        path = self.files.path(image_name)
        if not path.exists():
            self.get(image_name)
            raise ImageFileError(f"image {image_name!r} has a record but no file {path}")
        with Image.open(path) as im:
            return read_text_chunks(im)

    def get_metadata(self, image_name: str) -> dict[str, Any] | None:
        """Generation metadata (InvokeAI's shape) as catalogued."""
        return self.get(image_name).metadata

    def get_graph(self, image_name: str) -> dict[str, Any] | None:
        """The executed graph stored in the PNG's ``invokeai_graph`` chunk."""
        return extract(self._chunks(image_name)).graph

    def get_workflow(self, image_name: str) -> dict[str, Any] | None:
        """The editor workflow stored in the PNG's ``invokeai_workflow`` chunk."""
        return extract(self._chunks(image_name)).workflow

    # -- gallery ----------------------------------------------------------------------------
    def _where(
        self,
        *,
        board_id: str | None,
        starred: bool | None,
        model: str | None,
        base: str | None,
        search: str | None,
        since: datetime | None,
        until: datetime | None,
        is_intermediate: bool | None,
        category: str | Sequence[str] | None,
    ) -> tuple[list[str], list[Any]]:
        where: list[str] = ["deleted_at IS NULL"]
        params: list[Any] = []
        if board_id == UNCATEGORIZED:
            where.append("board_id IS NULL")
        elif board_id is not None:
            where.append("board_id = ?")
            params.append(board_id)
        if starred is not None:
            where.append("starred = ?")
            params.append(starred)
        if model is not None:
            where.append("(model_name = ? OR model_key = ?)")
            params += [model, model]
        if base is not None:
            where.append("model_base = ?")
            params.append(base)
        if search:
            where.append("positive_prompt ILIKE ? ESCAPE '\\'")
            params.append(f"%{_escape_like(search)}%")
        if since is not None:
            where.append("created_at >= ?")
            params.append(to_db_time(since))
        if until is not None:
            where.append("created_at < ?")
            params.append(to_db_time(until))
        if is_intermediate is not None:
            where.append("is_intermediate = ?")
            params.append(is_intermediate)
        if category is not None:
            cats = [category] if isinstance(category, str) else list(category)
            where.append(f"image_category IN ({placeholders(len(cats))})")
            params += cats
        return where, params

    def list(
        self,
        *,
        board_id: str | None = None,
        starred: bool | None = None,
        starred_first: bool = False,
        model: str | None = None,
        base: str | None = None,
        search: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        is_intermediate: bool | None = False,
        category: str | Sequence[str] | None = None,
        order: Order = "newest",
        limit: int = 100,
        offset: int = 0,
        cursor: str | None = None,
    ) -> ImagePage:
        """A gallery page.

        ``board_id``: None for every board, ``"none"`` (:data:`UNCATEGORIZED`) for images on no
        board. ``model`` matches a model name or key, ``base`` a model base (``sd-1``, ``sdxl``).
        ``search`` is a case-insensitive substring of the positive prompt. ``since``/``until``
        bound ``created_at`` (half-open). Use ``cursor=page.next_cursor`` for the next page
        (cheap at any depth) or ``offset`` (cost grows with depth).
        """
        if order not in ("newest", "oldest"):
            raise ValueError(f"order must be 'newest' or 'oldest', not {order!r}")
        if limit < 1 or offset < 0:
            raise ValueError(f"limit must be >= 1 and offset >= 0 (got {limit}, {offset})")
        where, params = self._where(
            board_id=board_id,
            starred=starred,
            model=model,
            base=base,
            search=search,
            since=since,
            until=until,
            is_intermediate=is_intermediate,
            category=category,
        )
        desc = order == "newest"
        after = _decode_cursor(cursor) if cursor is not None else None
        with self._db.transaction() as conn:  # one snapshot for the keys and the rows
            if starred_first:
                keys = self._starred_first_keys(conn, where, params, desc, offset, limit + 1, after)
            else:
                keys = self._window_keys(conn, where, params, desc, offset, limit + 1, after)
            rows = self._rows_by_rowid(conn, [k[0] for k in keys[:limit]])
        items = [rows[k[0]] for k in keys[:limit]]
        next_cursor = None
        if len(keys) > limit and items:
            last = items[-1]
            next_cursor = _encode_cursor(
                last.starred if starred_first else None, last.created_at, last.image_name
            )
        return ImagePage(items=items, next_cursor=next_cursor, offset=offset, limit=limit)

    # Gallery pages are found in two steps. Step one sorts only the narrow sort key (rowid,
    # created_at, image_name) inside a time window next to the page: images are mostly added
    # in time order, so DuckDB skips every row group outside the window by its zone map. The
    # window starts at about 4x the rows needed (from the table's row count and time span)
    # and widens 8x until it holds enough rows or covers everything, so results are exact.
    # Step two fetches the full rows of the page by rowid.
    def _window_keys(
        self,
        conn: Any,
        where: list[str],
        params: list[Any],
        desc: bool,
        offset: int,
        count: int,
        after: tuple[bool | None, datetime, str] | None,
    ) -> list[tuple[Any, ...]]:
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
        sql = (
            "SELECT rowid, created_at, image_name, starred FROM images WHERE {where} "
            f"ORDER BY created_at {direction}, image_name {direction} "
            f"LIMIT {int(count)} OFFSET {int(offset)}"
        )
        lo, hi, total = first(
            conn.execute("SELECT min(created_at), max(created_at), count(*) FROM images")
        )
        if not total:
            return []
        span = hi - lo
        if edge is None:
            edge = hi if desc else lo
        need, factor = offset + count, 4
        while span.total_seconds() > 0 and need * factor < total:
            window = span * (need * factor / total)
            bound = edge - window if desc else edge + window
            bounded = [*where, f"created_at {'>=' if desc else '<='} ?"]
            keys = conn.execute(
                sql.format(where=" AND ".join(bounded)), [*params, bound]
            ).fetchall()
            if len(keys) == count or (bound <= lo if desc else bound >= hi):
                return keys
            factor *= 8
        return conn.execute(sql.format(where=" AND ".join(where)), params).fetchall()

    def _starred_first_keys(
        self,
        conn: Any,
        where: list[str],
        params: list[Any],
        desc: bool,
        offset: int,
        count: int,
        after: tuple[bool | None, datetime, str] | None,
    ) -> list[tuple[Any, ...]]:
        """Starred rows in time order, then the others: two windowed scans, not one sort."""
        keys: list[tuple[Any, ...]] = []
        skip = offset
        in_starred = after is None or bool(after[0])
        if in_starred:
            seg = [*where, "starred"]
            keys = self._window_keys(conn, seg, params, desc, skip, count, after)
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
            keys += self._window_keys(conn, seg, params, desc, skip, count - len(keys), rest_after)
        return keys

    @staticmethod
    def _rows_by_rowid(conn: Any, rowids: list[int]) -> dict[int, ImageRecord]:
        if not rowids:
            return {}
        rows = conn.execute(
            f"SELECT rowid, {_COLS} FROM images WHERE rowid IN ({placeholders(len(rowids))})",
            rowids,
        ).fetchall()
        return {r[0]: _row_to_record(COLUMNS, r[1:]) for r in rows}

    def count(
        self,
        *,
        board_id: str | None = None,
        starred: bool | None = None,
        model: str | None = None,
        base: str | None = None,
        search: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        is_intermediate: bool | None = False,
        category: str | Sequence[str] | None = None,
    ) -> int:
        """How many images match (same filters as :meth:`list`)."""
        where, params = self._where(
            board_id=board_id,
            starred=starred,
            model=model,
            base=base,
            search=search,
            since=since,
            until=until,
            is_intermediate=is_intermediate,
            category=category,
        )
        with self._db.connection() as conn:
            row = first(
                conn.execute(f"SELECT count(*) FROM images WHERE {' AND '.join(where)}", params)
            )
        return int(row[0]) if row else 0

    def count_by_model(self, *, is_intermediate: bool | None = False) -> dict[str | None, int]:
        """Image counts per model name (None: no model recorded), largest first."""
        where = (
            "" if is_intermediate is None else f"WHERE is_intermediate = {bool(is_intermediate)}"
        )
        with self._db.connection() as conn:
            rows = conn.execute(
                f"SELECT model_name, count(*) n FROM images {where} GROUP BY 1 ORDER BY n DESC"
            ).fetchall()
        return {name: int(n) for name, n in rows}

    # -- bulk changes -----------------------------------------------------------------------
    def _update(self, names: Sequence[str], assignment: str, params: list[Any]) -> int:
        names = list(dict.fromkeys(names))
        if not names:
            return 0
        with self._db.transaction() as conn:
            missing = set(names) - self._existing(conn, names)
            if missing:
                raise NotFoundError(f"no image named {sorted(missing)[0]!r} in the catalog")
            now = utcnow()
            for part in chunks(names):
                conn.execute(
                    f"UPDATE images SET {assignment}, updated_at = ? "
                    f"WHERE image_name IN ({placeholders(len(part))})",
                    [*params, now, *part],
                )
        return len(names)

    @staticmethod
    def _existing(conn: Any, names: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for part in chunks(list(names)):
            rows = conn.execute(
                f"SELECT image_name FROM images WHERE image_name IN ({placeholders(len(part))})",
                part,
            ).fetchall()
            found.update(r[0] for r in rows)
        return found

    def star(self, image_names: Sequence[str] | str, starred: bool = True) -> int:
        """Star (or unstar) images; returns how many. Unknown names change nothing."""
        names = [image_names] if isinstance(image_names, str) else image_names
        return self._update(names, "starred = ?", [starred])

    def unstar(self, image_names: Sequence[str] | str) -> int:
        """Unstar images."""
        return self.star(image_names, False)

    def move_to_board(self, image_names: Sequence[str] | str, board_id: str | None) -> int:
        """Put images on a board (None: take them off every board)."""
        names = [image_names] if isinstance(image_names, str) else image_names
        if board_id is not None:
            with self._db.connection() as conn:
                self._check_boards(conn, {board_id})
        return self._update(names, "board_id = ?", [board_id])

    def update(self, image_name: str, **changes: Any) -> ImageRecord:
        """Change editable fields: is_intermediate, image_category, session_id, node_id."""
        allowed = {"is_intermediate", "image_category", "session_id", "node_id", "starred"}
        bad = set(changes) - allowed
        if bad:
            raise ValueError(
                f"cannot change image field(s) {sorted(bad)}; allowed: {sorted(allowed)}"
            )
        if changes:
            sets = ", ".join(f"{k} = ?" for k in changes)
            self._update([image_name], sets, list(changes.values()))
        return self.get(image_name)

    def delete(self, image_names: Sequence[str] | str) -> int:
        """Delete records and their files; clears board covers that pointed at them."""
        names = list(dict.fromkeys([image_names] if isinstance(image_names, str) else image_names))
        if not names:
            return 0
        with self._db.transaction() as conn:
            found = self._existing(conn, names)
            missing = set(names) - found
            if missing:
                raise NotFoundError(f"no image named {sorted(missing)[0]!r} in the catalog")
            for part in chunks(names):
                marks = placeholders(len(part))
                conn.execute(f"DELETE FROM images WHERE image_name IN ({marks})", part)
                conn.execute(
                    f"UPDATE boards SET cover_image_name = NULL WHERE cover_image_name IN ({marks})",
                    part,
                )
        self.files.delete(names)
        return len(names)

    # -- export / import --------------------------------------------------------------------
    def export_zip(self, image_names: Sequence[str], dest: str | Path) -> Path:
        """Write the PNGs (metadata chunks included) into a zip file; returns its path."""
        dest = Path(dest)
        missing = set(image_names) - self.exists(list(image_names))
        if missing:
            raise NotFoundError(f"no image named {sorted(missing)[0]!r} in the catalog")
        tmp = dest.with_name(dest.name + ".partial")
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            for name in dict.fromkeys(image_names):
                zf.write(self.files.path(name), arcname=name)
        tmp.replace(dest)
        return dest

    def import_folder(
        self,
        folder: str | Path,
        *,
        board_id: str | None = None,
        recursive: bool = True,
        batch_size: int = 64,
    ) -> list[ImportResult]:
        """Import PNGs made by InvokeAI, ComfyUI or A1111 (or none); one result per file.

        Files are copied byte for byte (their own chunks stay). A file whose bytes are already
        catalogued is reported as a duplicate; an unreadable one as an error with the reason.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"import_folder: {folder} is not a folder")
        if board_id is not None:
            with self._db.connection() as conn:
                self._check_boards(conn, {board_id})
        paths = sorted(folder.rglob("*.png") if recursive else folder.glob("*.png"))
        paths = [p for p in paths if ".pending" not in p.parts]
        results: list[ImportResult] = []
        for start in range(0, len(paths), batch_size):
            results += self._import_batch(paths[start : start + batch_size], board_id)
        return results

    def _import_batch(self, paths: list[Path], board_id: str | None) -> list[ImportResult]:
        results: dict[Path, ImportResult] = {}
        staged: list[tuple[Path, dict[str, Any], bytes]] = []
        hashes: dict[str, Path] = {}
        for path in paths:
            try:
                raw = path.read_bytes()
                digest = hashlib.sha256(raw).hexdigest()
                if digest in hashes:
                    results[path] = ImportResult(
                        path=str(path), status="duplicate", reason=f"same bytes as {hashes[digest]}"
                    )
                    continue
                with Image.open(io.BytesIO(raw)) as im:
                    if im.format != "PNG":
                        raise ImageFileError(f"{path}: not a PNG ({im.format})")
                    im.load()
                    chunks = read_text_chunks(im)
                    size = im.size
            except ImageFileError as exc:
                results[path] = ImportResult(path=str(path), status="error", reason=str(exc))
                continue
            except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
                reason = f"cannot read {path}: {exc}"
                results[path] = ImportResult(path=str(path), status="error", reason=reason)
                continue
            hashes[digest] = path
            ex = extract(chunks)
            now = utcnow()
            row = {
                "image_name": f"{uuid.uuid4()}.png",
                "image_origin": "external",
                "image_category": "general",
                "width": size[0],
                "height": size[1],
                "has_workflow": ex.workflow is not None,
                "board_id": board_id,
                "created_at": now,
                "updated_at": now,
                "metadata": dumps(ex.metadata) if ex.metadata is not None else None,
                "graph_hash": graph_hash(ex.graph),
                "content_hash": digest,
                "source": ex.source,
                **columns_from_metadata(ex.metadata),
            }
            staged.append((path, row, raw))
        if staged:
            with self._db.connection() as conn:
                digests = [row["content_hash"] for _, row, _ in staged]
                dup_rows = conn.execute(
                    "SELECT content_hash, image_name FROM images "
                    f"WHERE content_hash IN ({placeholders(len(digests))})",
                    digests,
                ).fetchall()
            dups = dict(dup_rows)
            fresh = []
            for path, row, raw in staged:
                if row["content_hash"] in dups:
                    results[path] = ImportResult(
                        path=str(path),
                        status="duplicate",
                        image_name=dups[row["content_hash"]],
                        reason="already in the catalog",
                    )
                else:
                    fresh.append((path, row, raw))
            if fresh:
                self._stage_and_insert([(row, None, None, raw) for _, row, raw in fresh])
                for path, row, _ in fresh:
                    results[path] = ImportResult(
                        path=str(path),
                        status="imported",
                        image_name=row["image_name"],
                        source=row["source"],
                    )
        return [results[p] for p in paths]

    # -- consistency ------------------------------------------------------------------------
    def recover(self, *, full: bool = False) -> RecoveryReport:
        """Finish/undo interrupted saves; with ``full``, also list records without files and
        files without records (a scan of the images folder)."""
        report = self.files.recover(self.exists)
        if full:
            on_disk = self.files.listed_pngs()
            with self._db.connection() as conn:
                in_db = {r[0] for r in conn.execute("SELECT image_name FROM images").fetchall()}
            report.missing_files = sorted(in_db - on_disk)
            report.untracked_files = sorted(on_disk - in_db)
        return report
