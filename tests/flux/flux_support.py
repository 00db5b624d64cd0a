"""Helpers of the FLUX tests (kept out of conftest.py so test modules can import them)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from invoke_nb.models.local import LocalModels
from invoke_nb.models.probe import probe
from invoke_nb.models.records import ModelRecord


def register(models: LocalModels, path: Path, name: str) -> ModelRecord:
    """Add ``path`` as the probe identifies it (type, base, format, variant)."""
    found = probe(path)
    assert found.type != "unknown", found.unknown_reason
    rec = ModelRecord(
        key=uuid.uuid4().hex,
        hash="local:" + uuid.uuid4().hex,
        path=str(path),
        name=name,
        base=found.base,
        type=found.type,
        format=found.format,
        variant=found.variant,
        source=str(path),
        owned=False,
    )
    return models.store.add(rec)


def parts(flux: dict[str, Any]) -> dict[str, Any]:
    """The encoder/VAE keywords of the standard FLUX graphs."""
    return {"t5_encoder": flux["t5"], "clip_embed": flux["clip"], "vae": flux["vae"]}
