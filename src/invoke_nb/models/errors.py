"""Exceptions of the model manager: each names the problem and the model or file concerned.

They share :class:`ModelError` so a caller can catch all of them at once; most also derive
from the builtin a Python user would expect (ValueError for bad input, RuntimeError for
failed loads) so generic handlers keep working.
"""

from __future__ import annotations

__all__ = [
    "CorruptModelError",
    "DownloadCancelledError",
    "DownloadError",
    "MissingComponentError",
    "ModelError",
    "ModelInstallError",
    "ModelLoadError",
    "ModelNotFoundError",
    "UnsafeModelError",
    "WrongBaseError",
]


class ModelError(Exception):
    """Base of every model manager error."""


class CorruptModelError(ModelError, ValueError):
    """The model file is damaged (unreadable header, truncated data, bad JSON config)."""


class UnsafeModelError(ModelError, ValueError):
    """A pickle checkpoint was refused (not allowed, or the pickle scan found dangerous code)."""


class ModelInstallError(ModelError, ValueError):
    """The source cannot be installed (missing path, unsupported source, unknown model)."""


class DownloadError(ModelError, OSError):
    """A download failed (HTTP error, connection lost, size mismatch)."""


class DownloadCancelledError(ModelError):
    """The download was cancelled; the partial file is kept for a later resume."""


class ModelLoadError(ModelError, RuntimeError):
    """Loading a model (or one of its submodels) failed; the cache is left as it was."""


class MissingComponentError(ModelLoadError):
    """A diffusers folder lacks the submodel asked for (e.g. no ``vae/``)."""


class WrongBaseError(ModelError, ValueError):
    """The model's base (sd-1, sdxl, ...) does not fit where it is used."""


class ModelNotFoundError(ModelError, LookupError):
    """No installed model matches the identifier (key, hash, name + base)."""
