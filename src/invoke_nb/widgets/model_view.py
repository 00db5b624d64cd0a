"""The model view: installed models, installs with progress, removal, model cache statistics.

An install (from a path, URL or Hugging Face repo id) can take minutes, so it runs on a
thread of its own: the ``install`` request answers at once with a job id, and progress and
the outcome arrive as ``install_progress`` / ``install_done`` events, delivered on the
kernel's event loop (widget messages are sent from the main thread only).
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import Field

from invoke_nb.queue.events import call_on_main
from invoke_nb.widgets.messages import MessageWidget, Params, handler

if TYPE_CHECKING:
    from invoke_nb.models.records import ModelRecord
    from invoke_nb.widgets.api import StudioAPI

__all__ = ["InstallJob", "ModelView", "model_row"]


def model_row(rec: ModelRecord) -> dict[str, Any]:
    """What the browser shows of a model record."""
    return {
        "key": rec.key,
        "name": rec.name,
        "base": rec.base,
        "type": rec.type,
        "format": rec.format,
        "variant": getattr(rec, "variant", None),
        "path": rec.path,
        "source": rec.source,
        "file_size": rec.file_size,
        "description": rec.description,
    }


@dataclass
class InstallJob:
    """One install in flight (or finished): its thread, cancel flag, last progress, outcome."""

    job_id: int
    source: str
    name: str | None
    cancel: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    status: str = "running"  # running | done | error | canceled
    message: str = ""
    done_bytes: int = 0
    total_bytes: int | None = None
    record: dict[str, Any] | None = None
    error: dict[str, str] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "source": self.source,
            "status": self.status,
            "message": self.message,
            "done": self.done_bytes,
            "total": self.total_bytes,
            "record": self.record,
            "error": self.error,
        }


class InstallParams(Params):
    source: str = Field(min_length=1)
    name: str | None = None


class KeyParams(Params):
    key: str = Field(min_length=1)


class JobParams(Params):
    job_id: int


class ModelView(MessageWidget):
    """Installed models (type, base), install with progress, remove, cache stats
    (``studio.models_view()``)."""

    _bundle = "model_view"

    def __init__(self, studio: StudioAPI, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.studio = studio
        self.jobs: dict[int, InstallJob] = {}
        self._ids = itertools.count(1)
        self._subs = [
            studio.events.on("model_load_complete", self._on_cache, main_thread=True),
        ]

    def close(self) -> None:
        for off in self._subs:
            off()
        self._subs = []
        for job in self.jobs.values():
            job.cancel.set()
        super().close()

    def wait(self, job_id: int, timeout: float | None = None) -> InstallJob:
        """Block until an install job ends (for scripts and tests)."""
        job = self.jobs[job_id]
        if job.thread is not None:
            job.thread.join(timeout)
        return job

    def _on_cache(self, _kind: str, _payload: dict[str, Any]) -> None:
        self.send_event("cache_changed")

    # -- installs -------------------------------------------------------------------------
    def _run_install(self, job: InstallJob) -> None:
        def progress(message: str, done: int, total: int | None) -> None:
            job.message, job.done_bytes, job.total_bytes = message, done, total
            snapshot = job.as_dict()
            call_on_main(lambda: self.send_event("install_progress", snapshot))

        try:
            rec = self.studio.models.install(
                job.source, name=job.name, progress=progress, cancel=job.cancel
            )
            job.record, job.status, job.message = model_row(rec), "done", "installed"
        except BaseException as e:  # reported to the browser, never lost on the thread
            job.status = "canceled" if job.cancel.is_set() else "error"
            job.error = {"type": type(e).__name__, "message": str(e) or type(e).__name__}
            job.message = job.error["message"]
        snapshot = job.as_dict()
        call_on_main(lambda: self.send_event("install_done", snapshot))

    @handler("install", InstallParams)
    def _install(self, p: InstallParams, _b: list[bytes]) -> dict[str, Any]:
        job = InstallJob(next(self._ids), p.source.strip(), (p.name or "").strip() or None)
        job.message = "starting"
        self.jobs[job.job_id] = job
        job.thread = threading.Thread(
            target=self._run_install, args=(job,), name=f"invoke-nb-install-{job.job_id}",
            daemon=True,
        )  # fmt: skip
        job.thread.start()
        return job.as_dict()

    @handler("cancel_install", JobParams)
    def _cancel_install(self, p: JobParams, _b: list[bytes]) -> dict[str, Any]:
        job = self.jobs.get(p.job_id)
        if job is None:
            raise LookupError(f"no install job {p.job_id}")
        job.cancel.set()
        return job.as_dict()

    @handler("jobs")
    def _jobs(self, _p: Params, _b: list[bytes]) -> list[dict[str, Any]]:
        return [j.as_dict() for j in self.jobs.values()]

    # -- records and cache ----------------------------------------------------------------
    @handler("list")
    def _list(self, _p: Params, _b: list[bytes]) -> list[dict[str, Any]]:
        recs = self.studio.models.list()
        return [model_row(r) for r in sorted(recs, key=lambda r: (r.type, r.base, r.name))]

    @handler("remove", KeyParams)
    def _remove(self, p: KeyParams, _b: list[bytes]) -> dict[str, Any]:
        rec = self.studio.models.remove(p.key)
        return model_row(rec)

    @handler("cache")
    def _cache(self, _p: Params, _b: list[bytes]) -> dict[str, Any]:
        stats = self.studio.models.cache.stats().as_dict()
        stats["last_loads"] = [list(x) for x in stats.get("last_loads", [])]
        return stats
