"""Boards: named groups of images, listed with their image counts and covers."""

from __future__ import annotations

import uuid
from typing import Any

from invoke_nb.catalog import gallery_keys, tallies
from invoke_nb.catalog import search as term_index
from invoke_nb.catalog.connection import Database, first
from invoke_nb.catalog.errors import NotFoundError
from invoke_nb.catalog.images import ImageRepository
from invoke_nb.catalog.query import ASSET_CATEGORIES, IMAGE_CATEGORIES
from invoke_nb.catalog.records import BoardRecord, utcnow

__all__ = ["BoardRepository"]

_BOARD_COLS = "board_id, board_name, cover_image_name, archived, created_at, updated_at, deleted_at"

# One pass over images gives every board's counts and the rowid of its newest image (integers
# aggregate far faster than names); the explicit cover wins over the newest image. Counts are
# InvokeAI's: images (category general) and assets (control, mask, user, other) apart,
# intermediates in neither.
_LIST_SQL = """
SELECT b.board_id, b.board_name, coalesce(b.cover_image_name, i.image_name) AS cover_image_name,
       b.archived, b.created_at, b.updated_at, b.deleted_at, coalesce(c.n, 0) AS image_count,
       coalesce(c.a, 0) AS asset_count
FROM boards b
LEFT JOIN (
    SELECT board_id, count(*) FILTER (WHERE image_category = 'general') AS n,
        count(*) FILTER (WHERE image_category IN ('control', 'mask', 'user', 'other')) AS a,
        arg_max(rowid, created_at) AS newest
    FROM images
    WHERE board_id IS NOT NULL AND NOT is_intermediate AND deleted_at IS NULL
    GROUP BY board_id
) c USING (board_id)
LEFT JOIN images i ON i.rowid = c.newest
"""
_FIELDS = (*_BOARD_COLS.split(", "), "image_count", "asset_count")

# The same from the tallies (invoke_nb.catalog.tallies): counts per board, and the newest
# bucket holding any of its images, where its newest image (the default cover) lies.
_TALLY_SQL = """
SELECT board_id, coalesce(sum(n) FILTER (WHERE image_category = 'general'), 0),
    coalesce(sum(n) FILTER (WHERE image_category IN ('control', 'mask', 'user', 'other')), 0),
    max(lo)
FROM (
    SELECT board_id, image_category, lo, sum(n) AS n FROM gallery_tallies
    WHERE board_id IS NOT NULL AND NOT is_intermediate
    GROUP BY ALL HAVING sum(n) <> 0
) GROUP BY board_id
"""


def _covers(
    conn: Any, board_ids: tuple[str, ...], counts: dict[str, tuple[Any, ...]]
) -> dict[str, str]:
    """Default covers: each board's newest image, looked for only in the newest bucket
    holding any of its images (boards sharing that bucket share one scan of it)."""
    by_bucket: dict[int, list[str]] = {}
    for board_id in board_ids:
        by_bucket.setdefault(counts[board_id][2], []).append(board_id)
    parts: list[str] = []
    part_params: list[Any] = []
    for lo, ids in by_bucket.items():
        span, span_params = tallies.time_range(lo, None)
        parts.append(
            "SELECT board_id, arg_max(image_name, created_at) FROM images "
            f"WHERE {span} AND board_id IN ({', '.join('?' * len(ids))}) "
            "AND NOT is_intermediate AND deleted_at IS NULL GROUP BY board_id"
        )
        part_params += [*span_params, *ids]
    if not parts:
        return {}
    return dict(conn.execute(" UNION ALL ".join(parts), part_params).fetchall())


class BoardRepository:
    """Create, list (with counts and covers), rename, archive and delete boards."""

    def __init__(self, db: Database, images: ImageRepository) -> None:
        self._db = db
        self._images = images

    def create(self, board_name: str) -> BoardRecord:
        """A new, empty board."""
        if not isinstance(board_name, str) or not board_name.strip():
            raise ValueError(f"board name must be a non-empty string, got {board_name!r}")
        board_id = str(uuid.uuid4())
        now = utcnow()
        with self._db.transaction() as conn:
            conn.execute(
                f"INSERT INTO boards ({_BOARD_COLS}) VALUES (?, ?, NULL, FALSE, ?, ?, NULL)",
                [board_id, board_name, now, now],
            )
        return self.get(board_id)

    def get(self, board_id: str) -> BoardRecord:
        """One board with its count and cover."""
        with self._db.connection():
            outer = self._db.in_transaction
            with self._db.transaction() as conn:
                rows = self._rows(conn, ["b.board_id = ?"], [board_id], outer)
        if not rows:
            raise NotFoundError(f"no board with id {board_id!r}")
        return BoardRecord.model_validate(dict(zip(_FIELDS, rows[0], strict=True)))

    def list(self, *, include_archived: bool = False, name: str | None = None) -> list[BoardRecord]:
        """Boards, oldest first (InvokeAI's order), with image counts and covers."""
        where, params = [], []
        if not include_archived:
            where.append("NOT b.archived")
        if name is not None:
            where.append("b.board_name = ?")
            params.append(name)
        with self._db.connection():
            outer = self._db.in_transaction
            with self._db.transaction() as conn:  # one snapshot for boards, counts and covers
                rows = self._rows(conn, where, params, outer)
        return [BoardRecord.model_validate(dict(zip(_FIELDS, r, strict=True))) for r in rows]

    def _rows(
        self, conn: Any, where: list[str], params: list[Any], outer: bool = True
    ) -> list[tuple[Any, ...]]:
        """Board rows with counts and covers (``_FIELDS``), oldest board first. Counts and
        default covers change only with the tallies (every insert, delete, move and change of
        a counted field changes them), so they are kept while the tallies' version stays."""
        cond = f" WHERE {' AND '.join(where)}" if where else ""
        order = " ORDER BY b.created_at, b.board_id"
        keys = self._images.gallery_keys
        if keys.usable(outer):  # counts and covers from the gallery's in-memory keys
            keys.refresh(conn)
            summary = keys.board_summary(IMAGE_CATEGORIES, ASSET_CATEGORIES)
            boards = conn.execute(f"SELECT {_BOARD_COLS} FROM boards b{cond}{order}", params)
            boards = boards.fetchall()
            wanted = [summary[b[0]][2] for b in boards if b[2] is None and b[0] in summary]
            names = keys.cover_names  # an image id is never reused: its name never changes
            missing = [i for i in wanted if i is not None and i not in names]
            if missing:
                if len(names) > 4096:
                    names.clear()
                names.update(
                    conn.execute(
                        "SELECT image_id, image_name FROM images WHERE image_id IN "
                        f"({', '.join(map(str, missing))})"
                    ).fetchall()
                )
            out = []
            for b in boards:
                n_images, n_assets, newest = summary.get(b[0], (0, 0, None))
                cover = b[2] if b[2] is not None else names.get(newest)
                out.append((b[0], b[1], cover, *b[3:], n_images, n_assets))
            return out
        cache = self._images.tally_cache
        if not cache.state(conn).ready:  # an import under way: count by scanning
            return conn.execute(_LIST_SQL + cond + order, params).fetchall()
        boards = conn.execute(f"SELECT {_BOARD_COLS} FROM boards b{cond}{order}", params)
        boards = boards.fetchall()
        counts = cache.get(
            "board counts", lambda: {r[0]: r[1:] for r in conn.execute(_TALLY_SQL).fetchall()}
        )
        wanted = tuple(b[0] for b in boards if b[2] is None and b[0] in counts)
        covers = cache.get(("board covers", wanted), lambda: _covers(conn, wanted, counts))
        out = []
        for b in boards:
            n_images, n_assets, _ = counts.get(b[0], (0, 0, None))
            cover = b[2] if b[2] is not None else covers.get(b[0])
            out.append((b[0], b[1], cover, *b[3:], int(n_images), int(n_assets)))
        return out

    def uncategorized_count(self) -> int:
        """Images on no board (InvokeAI's "Uncategorized")."""
        return self._images.count(board_id="none")

    def update(self, board_id: str, **changes: Any) -> BoardRecord:
        """Change ``board_name``, ``archived`` or ``cover_image_name``."""
        allowed = {"board_name", "archived", "cover_image_name"}
        bad = set(changes) - allowed
        if bad:
            raise ValueError(
                f"cannot change board field(s) {sorted(bad)}; allowed: {sorted(allowed)}"
            )
        if "board_name" in changes and not str(changes["board_name"]).strip():
            raise ValueError("board name must be a non-empty string")
        with self._db.transaction() as conn:
            if not first(conn.execute("SELECT 1 FROM boards WHERE board_id = ?", [board_id])):
                raise NotFoundError(f"no board with id {board_id!r}")
            cover = changes.get("cover_image_name")
            if cover is not None and not first(
                conn.execute("SELECT 1 FROM images WHERE image_name = ?", [cover])
            ):
                raise NotFoundError(
                    f"no image named {cover!r} to use as cover of board {board_id!r}"
                )
            if changes:
                sets = ", ".join(f"{k} = ?" for k in changes)
                conn.execute(
                    f"UPDATE boards SET {sets}, updated_at = ? WHERE board_id = ?",
                    [*changes.values(), utcnow(), board_id],
                )
        return self.get(board_id)

    def rename(self, board_id: str, board_name: str) -> BoardRecord:
        """Give a board a new name."""
        return self.update(board_id, board_name=board_name)

    def image_names(self, board_id: str) -> list[str]:
        """Names of every image on the board (intermediates included), newest first."""
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT image_name FROM images WHERE board_id = ? ORDER BY created_at DESC",
                [board_id],
            ).fetchall()
        return [r[0] for r in rows]

    def delete(self, board_id: str, *, delete_images: bool = False) -> int:
        """Delete a board. Its images become uncategorized, or are deleted with their files if
        ``delete_images``; returns how many images were affected. One transaction."""
        with self._db.transaction() as conn:
            if not first(conn.execute("SELECT 1 FROM boards WHERE board_id = ?", [board_id])):
                raise NotFoundError(f"no board with id {board_id!r}")
            names = [
                r[0]
                for r in conn.execute(
                    "SELECT image_name FROM images WHERE board_id = ?", [board_id]
                ).fetchall()
            ]
            gallery_keys.log_rows(conn, "board_id = ?", [board_id])  # before they change
            if delete_images:
                conn.execute(
                    "UPDATE boards SET cover_image_name = NULL WHERE cover_image_name IN "
                    "(SELECT image_name FROM images WHERE board_id = ?)",
                    [board_id],
                )
                term_index.forget(
                    conn, "SELECT image_name FROM images WHERE board_id = ?", [board_id]
                )
                conn.execute("DELETE FROM images WHERE board_id = ?", [board_id])
                # the counted ones among them are exactly the board's tallies
                conn.execute("DELETE FROM gallery_tallies WHERE board_id = ?", [board_id])
            else:
                conn.execute(
                    "UPDATE gallery_tallies SET board_id = NULL WHERE board_id = ?", [board_id]
                )
                conn.execute(
                    "UPDATE images SET board_id = NULL, updated_at = ? WHERE board_id = ?",
                    [utcnow(), board_id],
                )
            tallies.touch(conn)  # the board's tallies changed above
            conn.execute("DELETE FROM boards WHERE board_id = ?", [board_id])
        if delete_images:
            self._images.files.delete(names)
        return len(names)
