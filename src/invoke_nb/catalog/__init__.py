"""The catalog: one DuckDB file per studio root holding images, boards, models, workflows,
style presets, client state and the session queue, with image files and thumbnails beside it.

    from invoke_nb.catalog import Catalog
    cat = Catalog("~/invoke-nb")               # or $INVOKE_NB_ROOT, else ~/invoke-nb
    rec = cat.images.save(pil, metadata={...}, graph={...}, board_id=...)
    page = cat.images.list(board_id="none", starred_first=True, search="castle")
    more = cat.images.list(cursor=page.next_cursor)
    cat.sql("SELECT model_name, count(*) FROM images GROUP BY 1").df()

Layout of a root: ``catalog.duckdb`` (plus DuckDB's ``.wal``), ``images/<uuid>.png`` with
InvokeAI's ``invokeai_metadata``/``invokeai_graph``/``invokeai_workflow`` text chunks,
``thumbnails/<uuid>.webp``, and ``images/.pending/`` and ``thumbnails/.pending/`` (saves in
flight). Image names are bare ``<name>.png`` (:func:`~invoke_nb.catalog.files.check_image_name`
is the one gate; a row must exist before a file is opened).

Concurrency design (two kernels on one root)
--------------------------------------------
DuckDB lets only one process open a file at a time, read-only opens included. So no process
keeps the file open: each operation (or transaction) borrows the connection, and the process
lets go of the file as soon as it has been idle ``idle_release`` seconds (0.5 by default), or
at once when another process is waiting. A process that finds the file locked drops a marker
file ``catalog.duckdb.waiting/<pid>`` and retries with jittered backoff (2 ms doubling to
10 ms); the holder checks for markers at the end of each operation and in an idle-reaper
thread, closes, and stands back (up to 0.1 s, itself marked as waiting) before re-opening
so the waiter gets its turn.
Opening the file costs ~10 ms, so bursts of reads (scrolling a gallery) reuse one open
connection, while writes from two kernels interleave operation by operation. Every
transaction is short: bulk paths (import, insert_records, queue enqueue) write Arrow batches
in one statement. If the lock is still held after ``busy_timeout`` seconds (30 by default),
the waiter raises :class:`CatalogBusyError` naming the holder's PID and executable, never a
raw DuckDB error. Threads of one process share the connection through one re-entrant lock.

Atomic image saves: PNG and thumbnail are written and fsynced under ``images/.pending`` and
``thumbnails/.pending`` (so the renames never cross filesystems), the record is committed,
then the files are renamed into place; if a rename fails the record is deleted again. Opening a catalog finishes the
rename for committed records of dead writers and deletes pending files whose record never
committed (:attr:`Catalog.recovery`); :meth:`Catalog.check` also lists records without files
and files without records.

Users read the catalog with :meth:`Catalog.sql`: one parsed SELECT on a read-only connection
without file access, extensions or setting changes (``SANDBOX_CONFIG``); results are copied
into an in-memory DuckDB relation with the same limits, so the file is not held.

Queue items carry the Studio that queued them (``owner``); see :mod:`invoke_nb.catalog.queue`.
"""

from invoke_nb.catalog.catalog import Catalog, default_root
from invoke_nb.catalog.errors import (
    CatalogBusyError,
    CatalogError,
    CatalogReadOnlyError,
    CatalogVersionError,
    ImageFileError,
    InvalidImageNameError,
    NotFoundError,
)
from invoke_nb.catalog.files import RecoveryReport
from invoke_nb.catalog.images import UNCATEGORIZED, ImagePage
from invoke_nb.catalog.migrations import LATEST_VERSION
from invoke_nb.catalog.models import DuckDBModelRecordStore
from invoke_nb.catalog.query import ImageQuery
from invoke_nb.catalog.records import (
    BoardRecord,
    ImageRecord,
    ImportResult,
    QueueItem,
    StylePresetRecord,
    WorkflowRecord,
)
from invoke_nb.catalog.sink import CatalogImageSink

__all__ = [
    "LATEST_VERSION",
    "UNCATEGORIZED",
    "BoardRecord",
    "Catalog",
    "CatalogBusyError",
    "CatalogError",
    "CatalogImageSink",
    "CatalogReadOnlyError",
    "CatalogVersionError",
    "DuckDBModelRecordStore",
    "ImageFileError",
    "ImagePage",
    "ImageQuery",
    "ImageRecord",
    "ImportResult",
    "InvalidImageNameError",
    "NotFoundError",
    "QueueItem",
    "RecoveryReport",
    "StylePresetRecord",
    "WorkflowRecord",
    "default_root",
]
