"""A minimal in-process :class:`ModelProvider` for tests and scripts without a Studio.

It keeps records in a :class:`MemoryModelRecordStore`, loads parts with
:func:`~invoke_nb.models.loaders.load_submodel` through a private
:class:`~invoke_nb.models.cache.ModelCache` (so the device, precision and partial loading
are the Studio's), with no RAM limit unless one is given: every loaded part stays for the
life of the provider. Registration does
a small probe (UNet ``cross_attention_dim`` -> base) good enough for tiny test models.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from invoke_nb.models.cache import ModelCache
from invoke_nb.models.loaders import load_submodel
from invoke_nb.models.records import MemoryModelRecordStore, ModelRecord, UnknownModelError

__all__ = ["LocalModels"]

_BASE_BY_CROSS_ATTENTION = {768: "sd-1", 1024: "sd-2", 1280: "sdxl-refiner", 2048: "sdxl"}


class LocalModels:
    """Records + a load-once cache. Implements the ``ModelProvider`` protocol."""

    def __init__(
        self,
        *,
        device: str | None = None,
        precision: str | None = "auto",
        cache: ModelCache | None = None,
    ) -> None:
        self.store = MemoryModelRecordStore()
        self.cache = cache or ModelCache(ram_bytes=1 << 62, device=device, precision=precision)
        self._lock = threading.Lock()

    @property
    def loads(self) -> int:
        """How many times a part was read from disk (tests check caching)."""
        return self.cache.stats().loads

    # -- registration ---------------------------------------------------------------------
    def register(
        self,
        path: str | Path,
        *,
        name: str | None = None,
        base: str | None = None,
        type: str | None = None,
        config_path: str | Path | None = None,
    ) -> ModelRecord:
        """Add a model at ``path`` (diffusers folder or ``.safetensors``) and return its record."""
        p = Path(path).expanduser().resolve()
        if not p.exists():
            raise FileNotFoundError(f"model path does not exist: {p}")
        kind = type or _guess_type(p)
        fmt = (
            "diffusers" if p.is_dir() else ("checkpoint" if kind in ("main", "vae") else "lycoris")
        )
        probe_dir = p if p.is_dir() else (Path(config_path) if config_path else None)
        guessed_base = _guess_base(probe_dir, kind, p)
        extra: dict[str, Any] = {}
        found = _probe_control(p)
        if found is not None:  # control models: the real probe's type, base and extras
            kind, fmt, extra = type or found.type, found.format, dict(found.extra)
            guessed_base = found.base
        rec = ModelRecord(
            key=uuid.uuid4().hex,
            hash="local:" + hashlib.sha256(str(p).encode()).hexdigest()[:32],
            path=str(p),
            name=name or p.stem,
            base=base or guessed_base,
            type=kind,
            format=fmt,
            config_path=str(config_path) if config_path else None,
            source=str(p),
            owned=False,
            extra=extra,
        )
        return self.store.add(rec)

    # -- ModelProvider ----------------------------------------------------------------------
    def record(self, model: Any) -> ModelRecord:
        """The record for a ``ModelIdentifierField`` (by key, then hash, then name and base)."""
        key = getattr(model, "key", None) or (model if isinstance(model, str) else "")
        try:
            return self.store.get(key)
        except UnknownModelError:
            pass
        h = getattr(model, "hash", "")
        if h:
            rec = self.store.by_hash(h)
            if rec is not None:
                return rec
        name = getattr(model, "name", "")
        if name:
            base = getattr(model, "base", None)
            rows = [r for r in self.store.list(name=name) if base in (None, "any", r.base)]
            if rows:
                return rows[0]
        raise UnknownModelError(f"no installed model matches key={key!r} hash={h!r} name={name!r}")

    @contextmanager
    def load(self, model: Any, submodel: str | None = None) -> Iterator[Any]:
        """Yield the loaded part; it stays cached for the next call."""
        rec = self.record(model)
        sub = submodel if submodel is not None else getattr(model, "submodel_type", None)
        cache = self.cache
        label = f"{rec.name}:{sub}" if sub else rec.name
        with cache.lock(
            (rec.key, sub), lambda: load_submodel(rec, sub, dtype=cache.dtype), label=label
        ) as obj:
            yield obj


def _probe_control(path: Path) -> Any:
    """The probe's result for a ControlNet/T2I-Adapter/IP-Adapter/CLIP vision folder."""
    if not path.is_dir() or (path / "model_index.json").exists() or (path / "unet").is_dir():
        return None
    from invoke_nb.models.probe import probe

    found = probe(path)
    kinds = ("controlnet", "t2i_adapter", "ip_adapter", "clip_vision")
    return found if found.type in kinds else None


def _guess_type(path: Path) -> str:
    if path.is_dir():
        if (path / "model_index.json").exists() or (path / "unet").is_dir():
            return "main"
        cfg = path / "config.json"
        if cfg.exists() and "AutoencoderKL" in cfg.read_text(encoding="utf-8"):
            return "vae"
        return "main"
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        keys = list(f.keys())
    if any("lora" in k for k in keys):
        return "lora"
    if any(k.startswith("model.diffusion_model.") for k in keys):
        return "main"
    if any(k.startswith(("encoder.", "decoder.", "first_stage_model.")) for k in keys):
        return "vae"
    return "embedding"


def _guess_base(folder: Path | None, kind: str, path: Path) -> str:
    if kind == "lora" and path.is_file():
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        return meta.get("invoke_nb_base", "sd-1")
    if folder is None:
        return "any"
    unet_cfg = folder / "unet" / "config.json"
    if unet_cfg.exists():
        dim = json.loads(unet_cfg.read_text(encoding="utf-8")).get("cross_attention_dim")
        return _BASE_BY_CROSS_ATTENTION.get(dim, "unknown")
    return "any"


def __getattr__(name: str) -> Any:
    """``identifier`` moved to :mod:`invoke_nb.nodes.types` (models know no nodes); this keeps
    the old import working for code written against it."""
    if name == "identifier":
        from invoke_nb.nodes.types import identifier

        return identifier
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
