"""Exceptions raised by the catalog, each naming the object or process at fault."""

from __future__ import annotations

__all__ = [
    "CatalogBusyError",
    "CatalogError",
    "CatalogReadOnlyError",
    "CatalogVersionError",
    "ImageFileError",
    "InvalidImageNameError",
    "NotFoundError",
]


class CatalogError(Exception):
    """Base class of every catalog error."""


class CatalogBusyError(CatalogError):
    """Another process held the catalog file for longer than the busy timeout.

    ``pid`` is the process DuckDB names as the lock holder (``None`` if it did not say).
    """

    def __init__(self, path: str, pid: int | None, holder: str | None, waited: float) -> None:
        self.path, self.pid, self.holder, self.waited = path, pid, holder, waited
        who = f"process {pid} ({holder})" if pid is not None else "another process"
        super().__init__(
            f"catalog {path} is busy: {who} has held it for more than {waited:.1f} s; "
            "close that kernel's Studio or raise busy_timeout"
        )


class CatalogVersionError(CatalogError):
    """The catalog file was written by a newer invoke-nb (schema version unknown here)."""


class CatalogReadOnlyError(CatalogError):
    """`Catalog.sql` was given a statement that would change the catalog."""


class NotFoundError(CatalogError, KeyError):
    """No row with the given id (image name, board id, workflow id, ...)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not found"


class ImageFileError(CatalogError):
    """An image file could not be read, written or parsed; the message names the file."""


class InvalidImageNameError(CatalogError, ValueError):
    """An image name that is not a bare ``<name>.png`` inside the images folder (a path,
    ``..``, an absolute name, another extension): refused before any file is touched."""
