"""Model manager: probe, install, records, loaders and the persistent model cache.

Importing this package stays light (no torch): names are resolved on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ModelManager": "invoke_nb.models.manager",
    "ScanReport": "invoke_nb.models.manager",
    "ModelCache": "invoke_nb.models.cache",
    "CacheStats": "invoke_nb.models.cache",
    "get_model_cache": "invoke_nb.models.cache",
    "probe": "invoke_nb.models.probe",
    "ProbeResult": "invoke_nb.models.probe",
    "model_hash": "invoke_nb.models.hashing",
    "ModelRecord": "invoke_nb.models.records",
    "ModelRecordStore": "invoke_nb.models.records",
    "MemoryModelRecordStore": "invoke_nb.models.records",
    "ModelError": "invoke_nb.models.errors",
    "CorruptModelError": "invoke_nb.models.errors",
    "UnsafeModelError": "invoke_nb.models.errors",
    "ModelInstallError": "invoke_nb.models.errors",
    "ModelLoadError": "invoke_nb.models.errors",
    "MissingComponentError": "invoke_nb.models.errors",
    "WrongBaseError": "invoke_nb.models.errors",
    "ModelNotFoundError": "invoke_nb.models.errors",
    "DownloadError": "invoke_nb.models.errors",
    "DownloadCancelledError": "invoke_nb.models.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'invoke_nb.models' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
