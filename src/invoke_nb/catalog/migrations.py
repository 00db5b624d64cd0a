"""Versioned schema migrations, applied in order when a catalog opens.

Each migration runs in its own transaction together with the row that records it in
``schema_version``, so a crash leaves the file at the previous version, never half-way.
New migrations are appended to :data:`MIGRATIONS`; released ones are never edited.

Design notes on the schema:
* no foreign keys: DuckDB checks them eagerly and cannot update a referenced row's key in the
  same transaction; the repositories keep references valid (board delete clears board_id, ...);
* images carry ``board_id`` directly (InvokeAI's board_images allows one board per image
  anyway), so "uncategorized" is ``board_id IS NULL`` and needs no anti-join;
* only primary keys are indexed: DuckDB's ART indexes serve point lookups, while gallery
  queries are top-N scans over columnar data that zone maps and compression keep fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb

from invoke_nb.catalog.connection import first
from invoke_nb.catalog.errors import CatalogVersionError
from invoke_nb.catalog.records import utcnow

__all__ = ["LATEST_VERSION", "MIGRATIONS", "Migration", "current_version", "migrate"]


@dataclass(frozen=True)
class Migration:
    """One step of the schema: ``apply`` runs inside the migration's transaction."""

    version: int
    description: str
    apply: Callable[[duckdb.DuckDBPyConnection], None]


def _sql(*statements: str) -> Callable[[duckdb.DuckDBPyConnection], None]:
    def run(conn: duckdb.DuckDBPyConnection) -> None:
        for stmt in statements:
            conn.execute(stmt)

    return run


_V1_IMAGES_BOARDS = _sql(
    """
    CREATE TABLE images (
        image_name VARCHAR PRIMARY KEY,
        image_origin VARCHAR NOT NULL DEFAULT 'internal',
        image_category VARCHAR NOT NULL DEFAULT 'general',
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        session_id VARCHAR,
        node_id VARCHAR,
        is_intermediate BOOLEAN NOT NULL DEFAULT FALSE,
        starred BOOLEAN NOT NULL DEFAULT FALSE,
        has_workflow BOOLEAN NOT NULL DEFAULT FALSE,
        board_id VARCHAR,
        created_at TIMESTAMP NOT NULL,
        updated_at TIMESTAMP NOT NULL,
        deleted_at TIMESTAMP,
        metadata JSON,
        model_name VARCHAR,
        model_key VARCHAR,
        model_base VARCHAR,
        positive_prompt VARCHAR,
        negative_prompt VARCHAR,
        seed BIGINT,
        steps INTEGER,
        cfg_scale DOUBLE,
        scheduler VARCHAR
    )
    """,
    """
    CREATE TABLE boards (
        board_id VARCHAR PRIMARY KEY,
        board_name VARCHAR NOT NULL,
        cover_image_name VARCHAR,
        archived BOOLEAN NOT NULL DEFAULT FALSE,
        created_at TIMESTAMP NOT NULL,
        updated_at TIMESTAMP NOT NULL,
        deleted_at TIMESTAMP
    )
    """,
)

_V2_LIBRARY = _sql(
    # graph hash and file facts arrived after the first image table: added, not recreated
    "ALTER TABLE images ADD COLUMN graph_hash VARCHAR",
    "ALTER TABLE images ADD COLUMN content_hash VARCHAR",
    "ALTER TABLE images ADD COLUMN source VARCHAR",
    """
    CREATE TABLE models (
        key VARCHAR PRIMARY KEY,
        hash VARCHAR NOT NULL,
        path VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        base VARCHAR NOT NULL,
        type VARCHAR NOT NULL,
        format VARCHAR NOT NULL,
        record JSON NOT NULL,
        created_at TIMESTAMP NOT NULL,
        updated_at TIMESTAMP NOT NULL
    )
    """,
    """
    CREATE TABLE workflows (
        workflow_id VARCHAR PRIMARY KEY,
        name VARCHAR NOT NULL,
        description VARCHAR NOT NULL DEFAULT '',
        category VARCHAR NOT NULL DEFAULT 'user',
        tags VARCHAR NOT NULL DEFAULT '',
        workflow JSON NOT NULL,
        thumbnail VARCHAR,
        opened_at TIMESTAMP,
        created_at TIMESTAMP NOT NULL,
        updated_at TIMESTAMP NOT NULL
    )
    """,
    """
    CREATE TABLE style_presets (
        id VARCHAR PRIMARY KEY,
        name VARCHAR NOT NULL,
        positive_prompt VARCHAR NOT NULL DEFAULT '',
        negative_prompt VARCHAR NOT NULL DEFAULT '',
        type VARCHAR NOT NULL DEFAULT 'user',
        image VARCHAR,
        created_at TIMESTAMP NOT NULL,
        updated_at TIMESTAMP NOT NULL
    )
    """,
    """
    CREATE TABLE client_state (
        key VARCHAR PRIMARY KEY,
        value JSON NOT NULL,
        updated_at TIMESTAMP NOT NULL
    )
    """,
)

_V3_QUEUE = _sql(
    "CREATE SEQUENCE session_queue_item_id START 1",
    """
    CREATE TABLE session_queue (
        item_id BIGINT PRIMARY KEY DEFAULT nextval('session_queue_item_id'),
        batch_id VARCHAR NOT NULL,
        queue_id VARCHAR NOT NULL DEFAULT 'default',
        session_id VARCHAR NOT NULL,
        status VARCHAR NOT NULL DEFAULT 'pending',
        priority INTEGER NOT NULL DEFAULT 0,
        graph JSON NOT NULL,
        field_values JSON,
        destination VARCHAR,
        origin VARCHAR,
        error_type VARCHAR,
        error_message VARCHAR,
        error_traceback VARCHAR,
        worker_pid INTEGER,
        retried_from_item_id BIGINT,
        created_at TIMESTAMP NOT NULL,
        updated_at TIMESTAMP NOT NULL,
        started_at TIMESTAMP,
        completed_at TIMESTAMP
    )
    """,
)


_V4_SEARCH = _sql(
    # a stable integer per image: postings hold it instead of the 40-character name
    "CREATE SEQUENCE image_id_seq START 1",
    "ALTER TABLE images ADD COLUMN image_id BIGINT DEFAULT nextval('image_id_seq')",
    # the first layout of the term index (text postings), replaced by migration 6
    "CREATE TABLE image_terms (term VARCHAR NOT NULL, image_id BIGINT NOT NULL)",
    "CREATE TABLE search_terms (term VARCHAR NOT NULL)",
    "CREATE TABLE search_state (indexed_upto BIGINT NOT NULL)",
    "INSERT INTO search_state VALUES (-1)",
)


def _v6_search_ids(conn: duckdb.DuckDBPyConnection) -> None:
    """The term index with integer postings and negative terms (see catalog/search.py),
    built from the images table."""
    from invoke_nb.catalog import search

    _sql(
        "DROP TABLE image_terms",
        "DROP TABLE search_terms",
        "CREATE SEQUENCE search_term_seq START 1",
        "CREATE TABLE search_terms (term VARCHAR NOT NULL, term_id INTEGER NOT NULL, "
        "negative BOOLEAN NOT NULL DEFAULT FALSE)",
        "CREATE TABLE image_terms (term_id INTEGER NOT NULL, image_id BIGINT NOT NULL)",
    )(conn)
    search.rebuild(conn)


# Which Studio queued an item (``host:pid:start:uuid``; NULL: shared queue), so a kernel
# claims only its own items and shared ones. Numbered 5 (4 is the gallery's term index);
# written to apply after 3 or 4 alike.
_V5_QUEUE_OWNER = _sql("ALTER TABLE session_queue ADD COLUMN IF NOT EXISTS owner VARCHAR")


def _v7_tallies(conn: duckdb.DuckDBPyConnection) -> None:
    from invoke_nb.catalog import tallies

    _sql(
        # see invoke_nb.catalog.tallies: per time bucket, images per filter combination
        "CREATE TABLE IF NOT EXISTS gallery_buckets (lo BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS gallery_tallies (lo BIGINT NOT NULL, board_id VARCHAR, "
        "image_category VARCHAR, is_intermediate BOOLEAN, starred BOOLEAN, n BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS gallery_tally_state ("
        "counted_upto BIGINT NOT NULL, compacted_rows BIGINT NOT NULL)",
        "DELETE FROM gallery_tally_state",
        "INSERT INTO gallery_tally_state VALUES (-1, 0)",
    )(conn)
    # the rebuild marks the tallies changed, in migration 9's column: added first here, so
    # every path to the latest version ends with the same table
    _v9_tally_version(conn)
    tallies.rebuild(conn)


NAME_INDEX = "images_image_name"
"""The unique index on ``images.image_name`` (from migration 8 on; a primary key before)."""


def _v8_bulk_friendly_images(conn: duckdb.DuckDBPyConnection) -> None:
    """The images table again, for bulk imports: ``image_name`` unique through an index (a
    primary key cannot be dropped; an index can, so a bulk import into an empty catalog
    builds it once at the end, 4x faster than growing it row by row), and the long texts
    (``metadata``, the prompts, the names) uncompressed: DuckDB's default string compression
    costs ~3.5 s per million InvokeAI rows to write them (on a 6-7 s import) for ~350 MB
    saved on disk, and zstd, though smaller still, decompresses a whole vector of neighbours
    to read one row (100 rows far apart: 37 ms instead of 3). A ``JSON`` column would also
    parse every value again on insert, which the import has done already. Rows keep their
    order and ids."""
    ddl = first(conn.execute("SELECT sql FROM duckdb_tables() WHERE table_name = 'images'"))[0]
    plain = "USING COMPRESSION uncompressed"
    new = ddl.replace("image_name VARCHAR PRIMARY KEY", f"image_name VARCHAR NOT NULL {plain}")
    new = new.replace("metadata JSON", f"metadata VARCHAR {plain}")
    for prompt in ("positive_prompt", "negative_prompt"):
        new = new.replace(f"{prompt} VARCHAR,", f"{prompt} VARCHAR {plain},")
    new = new.replace("CREATE TABLE images(", "CREATE TABLE images_v8(", 1)
    if new == ddl or "images_v8" not in new or "USING COMPRESSION uncompressed" not in new:
        raise RuntimeError(f"migration 8: unexpected images table: {ddl}")
    conn.execute(new)
    # the copy streams in order (no sort); bounded so a million rows do not sit in memory
    limit = first(conn.execute("SELECT current_setting('memory_limit')"))[0]
    conn.execute("SET memory_limit = '512MB'")
    try:
        conn.execute("INSERT INTO images_v8 SELECT * FROM images")
    finally:
        conn.execute(f"SET memory_limit = '{limit}'")
    conn.execute("DROP TABLE images")
    conn.execute("ALTER TABLE images_v8 RENAME TO images")
    conn.execute(f"CREATE UNIQUE INDEX {NAME_INDEX} ON images (image_name)")


def _v9_tally_version(conn: duckdb.DuckDBPyConnection) -> None:
    """A version of the gallery tallies, new whenever they change (see catalog/tallies.py):
    readers reuse what they derived from the tallies while it stays the same. Numbered 9
    (8 is the images table's); it touches only the tallies' state, so it applies after 7
    or 8 alike."""
    _sql(
        "ALTER TABLE gallery_tally_state ADD COLUMN IF NOT EXISTS version UUID",
        "UPDATE gallery_tally_state SET version = gen_random_uuid()",
    )(conn)


ID_INDEX = "images_image_id"
"""The index on ``images.image_id`` (from migration 10 on)."""


def _v10_gallery_keys(conn: duckdb.DuckDBPyConnection) -> None:
    """What the gallery's in-memory keys (catalog/gallery_keys.py) need: a log of the ids of
    changed images, so every process's copy follows the others' writes, and an index on the
    image id, by which a page's rows are read (~40 us a row, wherever it lies)."""
    _sql(
        "CREATE SEQUENCE IF NOT EXISTS gallery_change_seq START 1",
        "CREATE TABLE IF NOT EXISTS gallery_changes (seq BIGINT NOT NULL, image_id BIGINT)",
        f"CREATE INDEX IF NOT EXISTS {ID_INDEX} ON images (image_id)",
    )(conn)


MIGRATIONS: list[Migration] = [
    Migration(1, "images and boards", _V1_IMAGES_BOARDS),
    Migration(2, "image hashes; models, workflows, style presets, client state", _V2_LIBRARY),
    Migration(3, "session queue", _V3_QUEUE),
    Migration(4, "image ids and the search term index", _V4_SEARCH),
    Migration(5, "session queue item owners", _V5_QUEUE_OWNER),
    Migration(6, "search term index: integer postings, negative terms", _v6_search_ids),
    Migration(7, "gallery tallies (counts per time bucket)", _v7_tallies),
    Migration(8, "image names by unique index; metadata as plain text", _v8_bulk_friendly_images),
    Migration(9, "gallery tallies: a version that changes with them", _v9_tally_version),
    Migration(10, "gallery keys: a change log and an image id index", _v10_gallery_keys),
]
LATEST_VERSION = MIGRATIONS[-1].version


def current_version(conn: duckdb.DuckDBPyConnection) -> int:
    """The schema version recorded in the file (0 for a new, empty file)."""
    exists = first(
        conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
        )
    )
    if not exists or not exists[0]:
        return 0
    row = first(conn.execute("SELECT max(version) FROM schema_version"))
    return int(row[0]) if row and row[0] is not None else 0


def migrate(
    conn: duckdb.DuckDBPyConnection, *, target: int | None = None, path: str = "catalog"
) -> list[int]:
    """Apply every migration above the file's version up to ``target``; return those applied.

    Raises :class:`CatalogVersionError` if the file is newer than this code knows.
    """
    target = LATEST_VERSION if target is None else target
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, description VARCHAR, applied_at TIMESTAMP)"
    )
    have = current_version(conn)
    if have > LATEST_VERSION:
        raise CatalogVersionError(
            f"{path} has schema version {have}, newer than this invoke-nb knows "
            f"({LATEST_VERSION}); upgrade invoke-nb to open it"
        )
    applied = []
    for mig in MIGRATIONS:
        if have < mig.version <= target:
            conn.execute("BEGIN TRANSACTION")
            try:
                mig.apply(conn)
                conn.execute(
                    "INSERT INTO schema_version VALUES (?, ?, ?)",
                    [mig.version, mig.description, utcnow()],
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            applied.append(mig.version)
    return applied
