"""The :class:`Catalog`: one DuckDB file, the image folders beside it, and its repositories."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import duckdb

from invoke_nb.catalog import name_index, search
from invoke_nb.catalog.boards import BoardRepository
from invoke_nb.catalog.connection import Database
from invoke_nb.catalog.errors import CatalogReadOnlyError
from invoke_nb.catalog.files import ImageFiles, RecoveryReport
from invoke_nb.catalog.images import ImageRepository
from invoke_nb.catalog.indexer import BackgroundIndexer
from invoke_nb.catalog.library import (
    ClientStateRepository,
    StylePresetRepository,
    WorkflowRepository,
)
from invoke_nb.catalog.migrations import migrate
from invoke_nb.catalog.models import DuckDBModelRecordStore
from invoke_nb.catalog.queue import QueueRepository

__all__ = ["Catalog", "default_root"]

# Users' SQL (a notebook cell, a shared notebook, a widget message) reads the catalog and
# nothing else: no files, no extensions, no settings it could loosen again.
SANDBOX_CONFIG: dict[str, Any] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "lock_configuration": True,
}
_EXPLAIN = re.compile(r"^\s*EXPLAIN\s+(?P<rest>.*)$", re.IGNORECASE | re.DOTALL)


def _query_kind(query: str) -> str:
    """The statement type of one statement: EXPLAIN counts as what it explains, and
    EXPLAIN ANALYZE (which runs the statement) as itself a non-query."""
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise duckdb.ParserException(f"catalog.sql: {exc}") from None
    if len(statements) != 1:
        raise ValueError(f"catalog.sql runs exactly one statement, got {len(statements)}")
    kind = statements[0].type.name
    if kind == "EXPLAIN":
        match = _EXPLAIN.match(statements[0].query)
        rest = match["rest"] if match else ""
        if re.match(r"ANALY[SZ]E\b", rest.lstrip(), re.IGNORECASE):
            return "EXPLAIN ANALYZE"
        return "EXPLAIN " + _query_kind(rest)
    return kind


def default_root() -> Path:
    """``$INVOKE_NB_ROOT`` if set, else ``~/invoke-nb``."""
    return Path(os.environ.get("INVOKE_NB_ROOT") or "~/invoke-nb").expanduser()


class Catalog:
    """A studio root's catalog: ``catalog.duckdb``, ``images/`` and ``thumbnails/``.

    Opening applies pending migrations and finishes or undoes saves interrupted by a crash
    (see :attr:`recovery`). Repositories: :attr:`images`, :attr:`boards`, :attr:`models`,
    :attr:`workflows`, :attr:`style_presets`, :attr:`client_state`, :attr:`queue`.
    """

    def __init__(
        self,
        root: Path | str | None = None,
        *,
        busy_timeout: float = 30.0,
        idle_release: float = 0.5,
    ) -> None:
        self.root = Path(root).expanduser() if root is not None else default_root()
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / "catalog.duckdb"
        self.db = Database(self.path, busy_timeout=busy_timeout, idle_release=idle_release)
        with self.db.connection() as conn:
            self.applied_migrations = migrate(conn, path=str(self.path))
            name_index.ensure(conn)  # an import killed before it rebuilt it
            lagging = search.lag(conn) > 0
        self.files = ImageFiles(self.root / "images", self.root / "thumbnails")
        self.images = ImageRepository(self.db, self.files)
        self.boards = BoardRepository(self.db, self.images)
        self.models = DuckDBModelRecordStore(self.db)
        self.workflows = WorkflowRepository(self.db)
        self.style_presets = StylePresetRepository(self.db)
        self.client_state = ClientStateRepository(self.db)
        self.queue = QueueRepository(self.db)
        self.recovery: RecoveryReport = self.images.recover()
        self._scratch: duckdb.DuckDBPyConnection | None = None
        self.indexer = BackgroundIndexer(self.db)
        """Indexes rows a bulk insert left for later (:mod:`invoke_nb.catalog.indexer`)."""
        self.images.on_index_lag = self.indexer.start
        if lagging:  # an import that left its rows to index (or a kernel that stopped)
            self.indexer.start()

    def sql(self, query: str, params: list[object] | None = None) -> duckdb.DuckDBPyRelation:
        """Run a read-only query; the result is a DuckDB relation (``.df()``, ``.pl()``,
        ``.fetchall()``, further ``.filter()``/``.aggregate()``...).

        The rows are copied out of the catalog into an in-memory DuckDB (the file is shared
        with other kernels, so it is not held open for the relation's lifetime): add a
        ``LIMIT`` when exploring big tables. Only SELECT statements (and EXPLAIN of one)
        run; anything else raises :class:`CatalogReadOnlyError`. The query runs on its own
        read-only connection with file access, extensions and setting changes disabled
        (``SANDBOX_CONFIG``), so ``read_csv``, ``glob``, ``COPY``, ``ATTACH`` ... raise
        ``duckdb.PermissionException``; the returned relation lives in a scratch
        in-memory database with the same limits. Tables: images, boards, models,
        workflows, style_presets, client_state, session_queue, schema_version.
        """
        kind = _query_kind(query)
        if kind not in ("SELECT", "EXPLAIN SELECT"):
            raise CatalogReadOnlyError(
                f"catalog.sql is read-only and runs plain queries (SELECT, or EXPLAIN of one); a {kind} "
                "statement is refused: use the repositories (catalog.images, .boards, ...) "
                "to make changes"
            )
        with self.db.sandboxed(SANDBOX_CONFIG) as conn:
            table = conn.sql(query, params=params or None).to_arrow_table()
        if self._scratch is None:
            self._scratch = duckdb.connect(config=SANDBOX_CONFIG)
        return self._scratch.from_arrow(table)

    def check(self) -> RecoveryReport:
        """Full consistency check: interrupted saves, records without files, files without
        records (scans the images folder)."""
        return self.images.recover(full=True)

    def release(self) -> None:
        """Let go of the catalog file now (another kernel may be waiting for it)."""
        self.db.release()

    def close(self) -> None:
        """Release the file; the Catalog reopens it if used again (the background indexer,
        if running, stops after its run under way and resumes when a catalog opens)."""
        self.indexer.stop()
        self.db.close()
        if self._scratch is not None:
            self._scratch.close()
            self._scratch = None

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Catalog(root={str(self.root)!r})"
