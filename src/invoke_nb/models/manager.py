"""The model manager: install, identify, list, update, remove, find and load models.

It ties together the probe (what is this file?), the hash (have we seen it?), the record
store (the catalog, behind :class:`ModelRecordStore`) and the process-wide
:class:`ModelCache`. It implements the nodes' ``ModelProvider`` protocol, so ``ctx.models``
is a manager: ``with ctx.models.load(ident, "unet") as unet: ...``.

Lookup follows InvokeAI's metadata: an identifier ``{key, hash, name, base, type}`` finds a
model by key, then by content hash (the same ``blake3:`` value InvokeAI computes), then by
name and base; otherwise :class:`ModelNotFoundError` names the model that is needed.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from invoke_nb.models.cache import ModelCache, get_model_cache
from invoke_nb.models.errors import (
    MissingComponentError,
    ModelError,
    ModelInstallError,
    ModelLoadError,
    ModelNotFoundError,
    UnsafeModelError,
    WrongBaseError,
)
from invoke_nb.models.hashing import WEIGHT_SUFFIXES, model_hash
from invoke_nb.models.install import (
    Progress,
    download_folder_for,
    download_hf,
    download_url,
    parse_source,
    place,
    safe_name,
    scan_pickle,
    unique_destination,
)
from invoke_nb.models.probe import PICKLE_SUFFIXES, ProbeResult, probe, read_safetensors_header
from invoke_nb.models.records import ModelRecord, ModelRecordStore, UnknownModelError

__all__ = ["ModelManager", "ScanOutcome", "ScanReport"]

log = logging.getLogger("invoke_nb.models")

_OVERRIDABLE = {
    "base",
    "type",
    "format",
    "variant",
    "prediction_type",
    "description",
    "config_path",
    "default_settings",
    "trigger_phrases",
}
_MODEL_SUFFIXES = (*WEIGHT_SUFFIXES, ".sft", ".gguf")


@dataclass
class ScanOutcome:
    """What happened to one path during :meth:`ModelManager.scan_folder`."""

    path: str
    status: str  # installed, duplicate, unknown, error
    key: str | None = None
    type: str | None = None
    base: str | None = None
    message: str = ""


@dataclass
class ScanReport:
    """Per-path outcomes of a folder scan."""

    folder: str
    outcomes: list[ScanOutcome] = field(default_factory=list)

    def by_status(self, status: str) -> list[ScanOutcome]:
        return [o for o in self.outcomes if o.status == status]

    def __str__(self) -> str:
        lines = [f"scan of {self.folder}: {len(self.outcomes)} paths"]
        lines += [f"  {o.status:9} {o.path} {o.message}".rstrip() for o in self.outcomes]
        return "\n".join(lines)


def _field(identifier: Any, name: str) -> Any:
    if isinstance(identifier, dict):
        return identifier.get(name)
    return getattr(identifier, name, None)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


_RECENT_SECONDS = 2.0


class ModelAlreadyInstalledWarning(UserWarning):
    """The content asked for is installed under another name; that record is returned."""


def _already_installed(existing: ModelRecord, path: Path, name: str | None) -> ModelRecord:
    """Return the record that holds this content, warning when it is not under ``name``.

    The same content is one record (one hash), so a second name is not registered: the
    caller must learn which name to use, or the name it asked for stays unknown silently.
    """
    log.info("%s is already installed as %r", path.name, existing.name)
    if name is not None and name != existing.name:
        warnings.warn(
            f"{path.name} is already installed as {existing.name!r} (key {existing.key}); "
            f"returning that record, so {name!r} is not a model name: use "
            f"{existing.name!r}, or rename it with models.update({existing.key!r}, "
            f"name={name!r})",
            ModelAlreadyInstalledWarning,
            stacklevel=4,
        )
    return existing


class ModelManager:
    """Install and find models; load them through the shared cache."""

    def __init__(
        self,
        models_dir: str | os.PathLike[str],
        store: ModelRecordStore,
        cache: ModelCache | None = None,
    ) -> None:
        self.models_dir = Path(models_dir).expanduser().resolve()
        self.models_dir.mkdir(parents=True, exist_ok=True)
        self.store = store
        self.cache = cache if cache is not None else get_model_cache()
        self._install_lock = threading.Lock()
        # key -> (time, record): nodes resolve the same model several times per run; the
        # store is a shared file, so entries live briefly and changes here drop them
        self._recent: dict[str, tuple[float, ModelRecord]] = {}

    # -- install -------------------------------------------------------------------------

    def install(
        self,
        source: str | os.PathLike[str],
        name: str | None = None,
        *,
        allow_unsafe: bool = False,
        in_place: bool = False,
        config: dict[str, Any] | str | os.PathLike[str] | None = None,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> ModelRecord:
        """Install a model from a local file or folder, a URL, or a Hugging Face repo id.

        ``config`` is either a local diffusers folder (the config a single-file checkpoint is
        loaded with, offline) or a dict of record fields that override the probe (``base``,
        ``type``, ``variant``, ``prediction_type``, ``config_path``, ``description``...).
        Installing content already installed (same hash) returns the existing record.
        """
        src = parse_source(source)
        overrides = self._overrides(config)
        if src.kind == "path":
            path = Path(src.value)
            return self._install_path(
                path,
                name=name,
                allow_unsafe=allow_unsafe,
                in_place=in_place,
                overrides=overrides,
                source=src.value,
                source_type="path",
                downloaded=False,
                progress=progress,
            )[0]
        if (
            src.kind == "url"
            and not allow_unsafe
            and urlparse(src.value).path.endswith(PICKLE_SUFFIXES)
        ):
            raise UnsafeModelError(
                f"{src.value} is a pickle checkpoint, which can run code when loaded; "
                "pass allow_unsafe=True to download and scan it"
            )
        scratch = download_folder_for(self.models_dir, f"{src.kind}:{source}")
        if src.kind == "url":
            path = download_url(src.value, scratch, progress=progress, cancel=cancel)
        else:
            path = download_hf(
                src.value,
                scratch,
                variant=src.variant,
                subfolder=src.subfolder,
                progress=progress,
                cancel=cancel,
            )
        try:
            return self._install_path(
                path,
                name=name or (src.value.split("/")[-1] if src.kind == "hf_repo_id" else None),
                allow_unsafe=allow_unsafe,
                in_place=False,
                overrides=overrides,
                source=os.fspath(source),
                source_type=src.kind,
                downloaded=True,
                progress=progress,
            )[0]
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    @staticmethod
    def _overrides(config: dict[str, Any] | str | os.PathLike[str] | None) -> dict[str, Any]:
        if config is None:
            return {}
        if not isinstance(config, dict):
            folder = Path(config).expanduser()
            if not folder.is_dir():
                raise ModelInstallError(f"config {str(folder)!r} is not a local diffusers folder")
            return {"config_path": str(folder.resolve())}
        unknown = set(config) - _OVERRIDABLE
        if unknown:
            raise ModelInstallError(
                f"config has fields a model record cannot take: {sorted(unknown)}; "
                f"allowed: {sorted(_OVERRIDABLE)}"
            )
        out = dict(config)
        if out.get("config_path"):
            out["config_path"] = str(Path(out["config_path"]).expanduser().resolve())
        return out

    def _install_path(
        self,
        path: Path,
        *,
        name: str | None,
        allow_unsafe: bool,
        in_place: bool,
        overrides: dict[str, Any],
        source: str,
        source_type: str,
        downloaded: bool,
        progress: Progress | None = None,
    ) -> tuple[ModelRecord, bool]:
        """Install one local file or folder; ``(record, False)`` when already installed."""
        # one rule for pickles, whether the file is the model or inside its folder
        pickles = [path] if path.is_file() else _pickles_in(path)
        pickles = [p for p in pickles if p.suffix in PICKLE_SUFFIXES]
        if pickles and not allow_unsafe:
            where = "" if pickles[0] == path else f" in {path.name}/"
            raise UnsafeModelError(
                f"{pickles[0].name}{where} is a pickle checkpoint ({pickles[0].suffix}), which "
                "can run code when loaded; convert it to .safetensors or pass allow_unsafe=True"
            )
        for p in pickles:
            scan_pickle(p)
        digest = model_hash(
            path,
            progress=(lambda done, total: progress(f"hashing {path.name}", done, total))
            if progress
            else None,
        )
        existing = self.store.by_hash(digest)
        if existing is not None:
            return self._retry_checkpoint_config(_already_installed(existing, path, name)), False
        result = probe(path, allow_pickle=allow_unsafe)
        with self._install_lock:
            existing = self.store.by_hash(digest)
            if existing is not None:
                return _already_installed(existing, path, name), False
            if in_place:
                final, owned = path, False
            else:
                folder = self.models_dir / _category(result, overrides)
                final = unique_destination(folder, safe_name(path.stem) + path.suffix)
                if path.is_dir():
                    final = unique_destination(folder, safe_name(path.name))
                place(path, final, move=downloaded)
                owned = True
            fields = {
                "base": result.base,
                "type": result.type,
                "format": result.format,
                "variant": result.variant,
                "prediction_type": result.prediction_type,
                "unknown_reason": result.unknown_reason,
                "extra": dict(result.extra),
                **overrides,
            }
            if result.type == "main" and result.format == "checkpoint":
                self._checkpoint_config(final, fields)
            elif result.type == "controlnet" and result.format == "checkpoint":
                self._controlnet_config(final, fields)
            record = ModelRecord(
                key=uuid.uuid4().hex,
                hash=digest,
                path=str(final),
                name=name or path.stem,
                source=source,
                source_type=source_type,
                file_size=_size(final),
                owned=owned,
                **fields,
            )
            try:
                return self.store.add(record), True
            except Exception:
                if owned:
                    _delete(final)
                raise

    def _checkpoint_config(self, path: Path, fields: dict[str, Any]) -> None:
        """Give a single-file main model a config folder built from its tensors' shapes
        (cached under ``.configs``), unless one was given; when none can be built the
        record keeps the reason, which loading it reports."""
        if fields.get("config_path") or path.suffix != ".safetensors":
            return
        if fields.get("base") in ("flux", "flux2"):  # shapes read at load (load_flux, load_flux2)
            return
        from invoke_nb.models.checkpoint_config import ConfigUnavailable, build_config_folder

        refs = [
            r.path
            for r in self.store.list(base=fields["base"], type="main")
            if r.format == "diffusers"
        ]
        try:
            folder = build_config_folder(
                path,
                fields["base"],
                self.models_dir / ".configs",
                references=refs,
                prediction_type=fields.get("prediction_type"),
            )
        except (ConfigUnavailable, OSError) as exc:
            fields["extra"]["config_error"] = str(exc)
            log.warning("%s: no config folder: %s", path.name, exc)
            return
        fields["config_path"] = str(folder)

    def _controlnet_config(self, path: Path, fields: dict[str, Any]) -> None:
        """Give a single-file SD1/SD2/SDXL ControlNet a config folder built from its shapes,
        heads and norm groups borrowed from an installed model of its base whose shapes
        match (cached under ``.configs``), unless one was given."""
        if fields.get("config_path") or fields.get("base") not in ("sd-1", "sd-2", "sdxl"):
            return
        from invoke_nb.models.checkpoint_config import ConfigUnavailable
        from invoke_nb.models.controlnet_config import write_controlnet_config

        refs = [
            r.path
            for r in self.store.list(base=fields["base"])
            if r.format == "diffusers" and r.type in ("main", "controlnet")
        ]
        try:
            folder = write_controlnet_config(
                path, fields["base"], self.models_dir / ".configs", references=refs
            )
        except (ConfigUnavailable, OSError, ValueError) as exc:
            fields["extra"]["config_error"] = str(exc)
            log.warning("%s: no ControlNet config: %s", path.name, exc)
            return
        fields["config_path"] = str(folder)

    def _retry_checkpoint_config(self, record: ModelRecord) -> ModelRecord:
        """A checkpoint installed before any config could be built gets one when installed
        again (e.g. after a diffusers model of its base brought a tokenizer)."""
        if record.type != "main" or record.format != "checkpoint" or record.config_path:
            return record
        fields = {"base": record.base, "prediction_type": record.prediction_type, "extra": {}}
        self._checkpoint_config(Path(record.path), fields)
        if not fields.get("config_path"):
            return record
        self._recent.pop(record.key, None)
        extra = {k: v for k, v in record.extra.items() if k != "config_error"}
        return self.store.update(record.key, {"config_path": fields["config_path"], "extra": extra})

    def scan_folder(
        self, path: str | os.PathLike[str], *, in_place: bool = True, allow_unsafe: bool = False
    ) -> ScanReport:
        """Install every model found under ``path``; report per path what happened.

        Diffusers folders count as one model each; other folders are searched recursively.
        Models are registered in place by default (shared, read-only model folders).
        """
        root = Path(path).expanduser().resolve()
        if not root.is_dir():
            raise ModelInstallError(f"scan_folder: {str(root)!r} is not a folder")
        report = ScanReport(folder=str(root))
        for candidate in _model_candidates(root):
            outcome = ScanOutcome(path=str(candidate), status="installed")
            try:
                rec, created = self._install_path(
                    candidate,
                    name=None,
                    allow_unsafe=allow_unsafe,
                    in_place=in_place,
                    overrides={},
                    source=str(candidate),
                    source_type="path",
                    downloaded=False,
                )
                outcome.key, outcome.type, outcome.base = rec.key, rec.type, rec.base
                if not created:
                    outcome.status = "duplicate"
                    outcome.message = f"same content as {rec.name!r}"
                elif rec.type == "unknown":
                    outcome.status = "unknown"
                    outcome.message = rec.unknown_reason or ""
            except (ModelError, OSError) as e:
                outcome.status = "error"
                outcome.message = f"{type(e).__name__}: {e}"
            report.outcomes.append(outcome)
        return report

    # -- records -------------------------------------------------------------------------

    def list(
        self, *, base: str | None = None, type: str | None = None, name: str | None = None
    ) -> list[ModelRecord]:
        """Installed models, optionally filtered by base, type and name."""
        return self.store.list(base=base, type=type, name=name)

    def get(self, key_or_name: str) -> ModelRecord:
        """A record by key, else by unique name, else by hash."""
        try:
            return self.store.get(key_or_name)
        except UnknownModelError:
            pass
        named = self.store.list(name=key_or_name)
        if len(named) == 1:
            return named[0]
        if len(named) > 1:
            bases = ", ".join(f"{r.base}/{r.type}" for r in named)
            raise ModelNotFoundError(
                f"{len(named)} models are named {key_or_name!r} ({bases}); use the key"
            )
        by_hash = self.store.by_hash(key_or_name)
        if by_hash is not None:
            return by_hash
        raise ModelNotFoundError(f"no installed model with key or name {key_or_name!r}")

    def update(
        self,
        key: str,
        *,
        name: str | None = None,
        description: str | None = None,
        default_settings: dict[str, Any] | None = None,
        trigger_phrases: list[str] | None = None,
    ) -> ModelRecord:
        """Change a record's user-facing fields; ``None`` leaves a field as it is."""
        rec = self.get(key)
        changes = {
            k: v
            for k, v in {
                "name": name,
                "description": description,
                "default_settings": default_settings,
                "trigger_phrases": trigger_phrases,
            }.items()
            if v is not None
        }
        self._recent.pop(rec.key, None)
        return self.store.update(rec.key, changes) if changes else rec

    def remove(self, key: str) -> ModelRecord:
        """Forget a model; delete its files only when they live in our models folder."""
        rec = self.get(key)
        self._recent.pop(rec.key, None)
        self.cache.drop(rec.key)
        self.store.delete(rec.key)
        if rec.owned:
            path = Path(rec.path)
            if self.models_dir in path.parents:
                _delete(path)
        return rec

    def find(self, identifier: Any) -> ModelRecord:
        """Resolve an InvokeAI-style ``{key, hash, name, base, type}`` (dict, field, record or
        string): by key, then hash, then name and base; else :class:`ModelNotFoundError`."""
        if isinstance(identifier, str):
            return self.get(identifier)
        key, digest = _field(identifier, "key"), _field(identifier, "hash")
        name, base, mtype = (_field(identifier, f) for f in ("name", "base", "type"))
        if key:
            hit = self._recent.get(key)
            if hit is not None and time.monotonic() - hit[0] < _RECENT_SECONDS:
                return hit[1]
            try:
                rec = self.store.get(key)
            except UnknownModelError:
                pass
            else:
                self._recent[key] = (time.monotonic(), rec)
                return rec
        if digest:
            found = self.store.by_hash(digest)
            if found is not None:
                return found
        if name:
            matches = self.store.list(name=name, base=base or None)
            if mtype:
                matches = [r for r in matches if r.type == mtype] or matches
            if len(matches) >= 1:
                return matches[0]
        wanted = ", ".join(
            f"{k}={v!r}"
            for k, v in (
                ("name", name),
                ("base", base),
                ("type", mtype),
                ("hash", digest),
                ("key", key),
            )
            if v
        )
        raise ModelNotFoundError(
            f"model not installed: {wanted or identifier!r}. Install it with "
            "studio.models.install(path, url or repo id)"
        )

    @staticmethod
    def check_base(record: ModelRecord, *bases: str, where: str = "") -> None:
        """Raise :class:`WrongBaseError` unless ``record.base`` is one of ``bases``."""
        if record.base not in bases and record.base != "any":
            at = f" for {where}" if where else ""
            raise WrongBaseError(
                f"model {record.name!r} is {record.base}; {', '.join(bases)} needed{at}"
            )

    # -- ModelProvider -------------------------------------------------------------------

    def record(self, model: Any) -> ModelRecord:
        """The record behind an identifier (``ctx.models.record(...)``)."""
        return self.find(model)

    def load(self, model: Any, submodel: str | None = None) -> AbstractContextManager[Any]:
        """A context manager yielding the loaded (sub)model, locked in the cache while held."""
        rec = self.find(model)
        if submodel is None:
            submodel = _field(model, "submodel_type")
        submodel = getattr(submodel, "value", submodel)
        if rec.type == "unknown":
            raise ModelNotFoundError(
                f"model {rec.name!r} could not be identified ({rec.unknown_reason}); "
                "it cannot be loaded"
            )
        label = f"{rec.name}:{submodel}" if submodel else rec.name
        return self.cache.lock((rec.key, submodel), _loader(rec, submodel, self.cache), label=label)


def _loader(rec: ModelRecord, submodel: str | None, cache: ModelCache) -> Callable[[], Any]:
    def load() -> Any:
        from invoke_nb.models.loaders import load_submodel

        path = Path(rec.path)
        if not path.exists():
            raise ModelLoadError(f"model {rec.name!r}: its files are gone ({rec.path})")
        if (
            rec.type == "main"
            and path.is_dir()
            and submodel is not None
            and not (path / submodel).is_dir()
        ):
            raise MissingComponentError(
                f"model {rec.name!r} has no {submodel!r} folder in {rec.path}"
            )
        if path.is_file() and path.suffix == ".safetensors":
            read_safetensors_header(path)  # a file damaged since install: CorruptModelError
        return load_submodel(rec, submodel, dtype=cache.dtype)

    return load


def _pickles_in(folder: Path) -> list[Path]:
    """Pickle weight files anywhere in a model folder, in a stable order."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in PICKLE_SUFFIXES)


def _category(result: ProbeResult, overrides: dict[str, Any]) -> str:
    base = overrides.get("base", result.base)
    mtype = overrides.get("type", result.type)
    return f"{base}/{mtype}"


def _delete(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


def _is_model_folder(p: Path) -> bool:
    return any(
        (p / n).is_file()
        for n in (
            "model_index.json",
            "config.json",
            "pytorch_lora_weights.safetensors",
            "learned_embeds.safetensors",
        )
    )


def _model_candidates(root: Path) -> list[Path]:
    found: list[Path] = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            found.extend([entry] if _is_model_folder(entry) else _model_candidates(entry))
        elif entry.suffix in _MODEL_SUFFIXES:
            found.append(entry)
    return found
