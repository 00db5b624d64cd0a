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

One module per entity: :mod:`.root` (the root, its schema, the report), :mod:`.boards`,
:mod:`.workflows`, :mod:`.style_presets`, :mod:`.models`, :mod:`.images`."""

from __future__ import annotations

import os
import time
from typing import Any

from invoke_nb.interchange.invokeai.boards import import_boards
from invoke_nb.interchange.invokeai.images import (
    BATCH_ROWS,
    FilesMode,
    ImageReader,
    IndexMode,
    Progress,
    import_images,
    known_rows,
)
from invoke_nb.interchange.invokeai.models import import_models, unresolved_models
from invoke_nb.interchange.invokeai.root import (
    MAX_SKIPPED_DETAILS,
    InvokeAIImportReport,
    InvokeAILibraryError,
    InvokeAIRoot,
    Schema,
    Skipped,
)
from invoke_nb.interchange.invokeai.style_presets import import_style_presets
from invoke_nb.interchange.invokeai.workflows import import_workflows

__all__ = [
    "BATCH_ROWS",
    "MAX_SKIPPED_DETAILS",
    "InvokeAIImportReport",
    "InvokeAILibraryError",
    "InvokeAIRoot",
    "Skipped",
    "import_invokeai",
]


def import_invokeai(
    catalog: Any,
    root: str | os.PathLike[str],
    *,
    files: FilesMode = "link",
    models: bool = True,
    batch_size: int = BATCH_ROWS,
    progress: bool | Progress = True,
    index: IndexMode = "background",
) -> InvokeAIImportReport:
    """Import the InvokeAI library at ``root`` into ``catalog``; see the module docstring.

    ``progress``: True shows a tqdm bar, False nothing; a callable gets ``(done, total)``
    image counts after each batch (raising from it stops the import cleanly: every batch
    before it is committed, and a later run continues where this one stopped).

    ``index``: the search term index of the new rows. ``"background"`` (the default) returns
    as soon as the rows are in and lets the catalog's background indexer split their text
    (``catalog.indexer``; ``catalog.indexer.wait()`` blocks until it is done); ``True`` builds
    it before returning (its time is ``report.index_seconds``); ``False`` leaves it to the next
    catalog that opens the file. Searches meanwhile also scan the rows not yet indexed, so
    their results stay exact.
    """
    if files not in ("link", "copy", "none"):
        raise ValueError(f"files must be 'link', 'copy' or 'none', not {files!r}")
    if index not in (True, False, "background"):
        raise ValueError(f"index must be True, False or 'background', not {index!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    start = time.perf_counter()
    src = InvokeAIRoot.locate(root)
    report = InvokeAIImportReport(root=str(src.root))
    conn = src.connect()
    reader = None
    try:
        schema = Schema(conn)
        report.schema_version = schema.version
        if not schema.has("images"):
            raise InvokeAILibraryError(f"{src.db_path} has no images table")
        if not src.live():  # reads while the rest goes in (see import_images for a live one)
            reader = ImageReader(src, schema, batch_size, known_rows(catalog, src))
        import_boards(catalog, conn, schema, report)
        import_workflows(catalog, conn, schema, src, report)
        import_style_presets(catalog, conn, schema, src, report)
        if models:
            import_models(catalog, conn, schema, src, report)
        import_images(
            catalog, conn, schema, src, reader, report, files, batch_size, progress, index
        )
    finally:
        if reader is not None:
            reader.close()
        conn.close()
        report.seconds = time.perf_counter() - start
    report.unresolved_models = unresolved_models(catalog)
    return report
