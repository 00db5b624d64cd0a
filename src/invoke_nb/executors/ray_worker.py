"""The worker side of the Ray executor: one :class:`GraphWorker` actor per GPU (or CPU slot).

A worker is a long-lived process. It keeps its own output cache (a :class:`Runner`) and its
own model cache, so consecutive jobs on the same worker neither reload models nor recompute
unchanged nodes. It never touches the catalog: non-intermediate images leave the worker as
PNG bytes with their metadata, and the kernel writes them (the single-writer rule). While a
graph runs, its events (node started/complete, progress with previews, model loads) stream
back to the kernel as the items of a Ray streaming generator.

This module imports no Ray: the kernel wraps :class:`GraphWorker` with ``ray.remote`` when it
starts workers, so the class is also usable (and testable) in-process.
"""

from __future__ import annotations

import io
import os
import queue
import shutil
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from PIL import Image
from pydantic import BaseModel

from invoke_nb.executors.shipping import unpack_chunks
from invoke_nb.graph.cache import OutputCache
from invoke_nb.graph.errors import NodeError
from invoke_nb.graph.model import Graph
from invoke_nb.graph.runner import Runner
from invoke_nb.models.records import ModelRecord
from invoke_nb.nodes.base import get_node_class, node, output
from invoke_nb.nodes.base import get_output_class as _get_output_class
from invoke_nb.nodes.context import Cancelled, Services
from invoke_nb.nodes.types import ImageField

__all__ = ["GraphWorker", "ModelShipError", "WorkerModels", "image_refs"]

_MODEL_ASSETS = ("path", "config_path")


class ModelShipError(RuntimeError):
    """A model shipped to a worker did not arrive intact (hash mismatch) or could not unpack."""


def image_refs(obj: Any) -> set[str]:
    """Every image name referenced by an output (fields, lists and dicts, nested)."""
    found: set[str] = set()

    def walk(v: Any) -> None:
        if isinstance(v, ImageField):
            found.add(v.image_name)
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, BaseModel):
            for name in type(v).model_fields:
                walk(getattr(v, name, None))

    walk(obj)
    return found


def register_classes(classes: dict[str, type]) -> None:
    """Register node classes the kernel defined outside ``invoke_nb`` (notebook cells).

    Classes defined in ``__main__`` arrive pickled by value, so their ``@node`` decorator did
    not run in this process; registering the same class object twice is a no-op.
    """
    for type_id, cls in classes.items():
        try:
            if get_node_class(type_id) is cls:
                continue
        except KeyError:
            pass
        out_cls = cls.output_class
        try:
            known_out = _get_output_class(out_cls.output_type)
        except KeyError:
            known_out = None
        if known_out is not out_cls:
            output(out_cls.output_type)(out_cls)
        node(
            type_id,
            title=cls.title,
            category=cls.category,
            tags=cls.tags,
            version=cls.version,
            deterministic=cls.deterministic,
        )(cls)


class WorkerModels:
    """The worker's ``ModelProvider``: records sent by the kernel, loaded through its own cache.

    A record whose files exist at the same path on the worker (shared storage) is used as it
    is; otherwise the kernel ships the files once and the record is pointed at the local copy.
    """

    def __init__(
        self, model_dir: str | os.PathLike[str] | None = None, *, gpu_fraction: float = 1.0
    ) -> None:
        from invoke_nb.models.cache import ModelCache

        base = (
            Path(model_dir)
            if model_dir
            else Path(tempfile.gettempdir()) / "invoke-nb-worker-models"
        )
        self.model_dir = base
        # a worker holding a fraction of a GPU budgets that fraction of the card
        self.cache = ModelCache(device_fraction=min(max(gpu_fraction, 0.0), 1.0) or 1.0)
        self.records: dict[str, ModelRecord] = {}
        self.loads: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.cache.add_listener(self._count)

    def _count(self, kind: str, payload: dict[str, Any]) -> None:
        if kind in ("model_load_complete", "load_complete"):
            self.loads[str(payload.get("label") or payload.get("key"))] += 1

    # -- records ----------------------------------------------------------------------
    def add(self, record: ModelRecord) -> None:
        """Know ``record``; a record already pointed at a shipped copy keeps that path."""
        with self._lock:
            if record.key not in self.records:
                self.records[record.key] = record

    def missing(self, record: ModelRecord) -> list[str]:
        """Which of the record's paths (``path``, ``config_path``) this worker cannot read."""
        with self._lock:
            local = self.records.get(record.key)
        rec = local if local is not None else record
        return [a for a in _MODEL_ASSETS if getattr(rec, a) and not Path(getattr(rec, a)).exists()]

    def install(
        self,
        record: ModelRecord,
        asset: str,
        chunks: Sequence[Any],
        *,
        is_dir: bool,
        expected: str,
        get: Callable[[Any], bytes] = bytes,
    ) -> str:
        """Unpack a shipped model part, check its hash, point the record at it; the local path.

        ``chunks`` are the pieces :func:`~invoke_nb.executors.shipping.pack_chunks` made
        (object references on a Ray worker, with ``get=ray.get``; plain bytes in-process),
        written to disk one at a time.

        ``expected`` is the ``blake3:`` hash the kernel computed of its own copy. A copy that
        hashes differently is deleted and :class:`ModelShipError` names the model.
        """
        from invoke_nb.models.hashing import model_hash

        src = Path(getattr(record, asset))
        final = self.model_dir / expected.replace(":", "-")[:40]
        target = final / src.name
        marker = final / ".verified"
        verified = target.exists() and marker.exists() and marker.read_text() == expected
        if not verified:
            self.model_dir.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(prefix=".ship-", dir=self.model_dir))
            try:
                got_path = unpack_chunks(chunks, get, src.name, is_dir, scratch)
                got = model_hash(got_path)
                if got != expected:
                    raise ModelShipError(
                        f"model {record.name!r} ({asset}) arrived with hash {got}, expected {expected}; "
                        "the copy was discarded"
                    )
                (scratch / ".verified").write_text(expected)
                won = marker.exists() and marker.read_text() == expected  # a sibling worker
                if not won:
                    shutil.rmtree(final, ignore_errors=True)
                    os.replace(scratch, final)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        with self._lock:
            current = self.records.get(record.key, record)
            self.records[record.key] = current.model_copy(update={asset: str(target)})
        return str(target)

    def _find(self, ident: Any) -> ModelRecord:
        key = ident if isinstance(ident, str) else getattr(ident, "key", "")
        with self._lock:
            if key in self.records:
                return self.records[key]
            digest = getattr(ident, "hash", "")
            name, base = getattr(ident, "name", ""), getattr(ident, "base", None)
            for rec in self.records.values():
                if digest and rec.hash == digest:
                    return rec
            for rec in self.records.values():
                if name and rec.name == name and base in (None, "any", rec.base):
                    return rec
        from invoke_nb.models.records import UnknownModelError

        raise UnknownModelError(
            f"the worker was not given model key={key!r} name={getattr(ident, 'name', '')!r}"
        )

    # -- ModelProvider ----------------------------------------------------------------
    def record(self, model: Any) -> ModelRecord:
        """The record behind an identifier (with the worker-local path)."""
        return self._find(model)

    def load(self, model: Any, submodel: str | None = None) -> AbstractContextManager[Any]:
        """A context manager yielding the loaded part, cached for the life of the worker."""
        from invoke_nb.models.loaders import load_submodel

        rec = self._find(model)
        sub = submodel if submodel is not None else getattr(model, "submodel_type", None)
        sub = getattr(sub, "value", sub)
        label = f"{rec.key}:{sub}" if sub else rec.key
        return self.cache.lock((rec.key, sub), lambda: load_submodel(rec, sub), label=label)

    def loaded_keys(self) -> list[str]:
        """Model keys with at least one part in this worker's cache."""
        return sorted({k for k, _ in self.cache.keys()})  # noqa: SIM118 - not a dict


class _WorkerSink:
    """Holds images the kernel sent (graph inputs) and hands produced ones back as PNG bytes."""

    def __init__(self, inputs: dict[str, Image.Image], out: queue.Queue[tuple[str, Any]]) -> None:
        self.inputs = inputs
        self.out = out
        self.saved: dict[str, Image.Image] = {}

    def save(self, image: Image.Image, **kw: Any) -> str:
        name = f"ray-{uuid.uuid4().hex}.png"
        buf = io.BytesIO()
        image.save(buf, format="PNG", compress_level=1)
        self.saved[name] = image
        meta = {k: kw.get(k) for k in ("node_id", "node_type", "metadata", "board_id")}
        self.out.put(("image", {"name": name, "png": buf.getvalue(), **meta}))
        return name

    def get(self, name: str) -> Image.Image | None:
        return self.inputs.get(name) or self.saved.get(name)


_DONE = object()


class GraphWorker:
    """Runs graphs for the kernel; one instance per Ray actor (one GPU or CPU slot)."""

    def __init__(
        self,
        index: int,
        *,
        torch_threads: int | None = None,
        model_dir: str | None = None,
        cache_bytes: int = 2 * 1024**3,
        flush_seconds: float = 0.05,
        gpu_fraction: float = 1.0,
    ) -> None:
        self.index = index
        if torch_threads:
            os.environ["OMP_NUM_THREADS"] = str(torch_threads)
            try:
                import torch

                torch.set_num_threads(torch_threads)
            except ImportError:
                pass
        self.runner = Runner(cache=OutputCache(max_bytes=cache_bytes))
        self.models = WorkerModels(model_dir, gpu_fraction=gpu_fraction)
        self.models.cache.add_listener(self._model_event)
        self._jobs: dict[str, threading.Event] = {}
        self._early_cancels: set[str] = set()
        self._events: queue.Queue[tuple[str, Any]] | None = None
        self._lock = threading.Lock()
        self.jobs_done = 0
        self.started = time.time()
        self.flush_seconds = flush_seconds

    # -- control (callable while a job runs: the actor is threaded) ---------------------
    def info(self) -> dict[str, Any]:
        """Where this worker runs: pid, host, device, torch threads."""
        import socket

        try:
            import torch

            threads = torch.get_num_threads()
        except ImportError:
            threads = None
        return {
            "index": self.index,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "device": self.models.cache.device,
            "torch_threads": threads,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        }

    def stats(self) -> dict[str, Any]:
        """Jobs done, model loads by part, loaded model keys and output-cache counters."""
        return {
            "index": self.index,
            "pid": os.getpid(),
            "jobs": self.jobs_done,
            "model_loads": dict(self.models.loads),
            "loaded_models": self.models.loaded_keys(),
            "output_cache": self.runner.cache.stats(),
        }

    def cancel(self, job_id: str) -> bool:
        """Ask a running job to stop between steps (or refuse it if it has not started)."""
        with self._lock:
            ev = self._jobs.get(job_id)
            if ev is None:
                self._early_cancels.add(job_id)
                return False
        ev.set()
        return True

    def missing_models(self, records: list[ModelRecord]) -> dict[str, list[str]]:
        """Model key -> the paths of it this worker cannot read (empty dict: all present)."""
        out = {}
        for rec in records:
            self.models.add(rec)
            miss = self.models.missing(rec)
            if miss:
                out[rec.key] = miss
        return out

    def install_model(
        self, record: ModelRecord, asset: str, chunks: list[Any], is_dir: bool, expected: str
    ) -> str:
        """Receive a model part shipped through the object store in chunks (a list of object
        references, fetched one at a time); see :meth:`WorkerModels.install`."""
        import ray

        self.models.add(record)
        return self.models.install(
            record, asset, chunks, is_dir=is_dir, expected=expected, get=ray.get
        )

    # -- running ----------------------------------------------------------------------
    def _model_event(self, kind: str, payload: dict[str, Any]) -> None:
        q = self._events
        if q is not None and kind.endswith(("load_started", "load_complete")):
            name = kind if kind.startswith("model_") else "model_" + kind
            q.put(("event", (name, {k: v for k, v in payload.items() if _plain(v)})))

    def run(self, job: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Run one job, yielding ``batch`` messages (``event`` / ``image`` items), then
        ``done``, ``error`` or ``cancelled``.

        ``job``: ``job_id``, ``session_id``, ``graph`` (dict), ``records`` (model records),
        ``images`` (name -> PIL, the graph's image inputs), ``classes`` (custom node classes).
        """
        job_id = job["job_id"]
        cancel = threading.Event()
        with self._lock:
            self._jobs[job_id] = cancel
            if job_id in self._early_cancels:
                self._early_cancels.discard(job_id)
                cancel.set()
        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._events = events
        box: dict[str, Any] = {}
        try:
            register_classes(job.get("classes") or {})
            for rec in job.get("records") or []:
                self.models.add(rec)
            graph = Graph.from_dict(job["graph"])
            sink = _WorkerSink(job.get("images") or {}, events)
            services = Services(
                image_sink=sink,
                models=self.models,
                emit=lambda kind, payload: events.put(("event", (kind, payload))),
                cancel=cancel,
                preview_every=int(job.get("preview_every") or 0),
            )

            def work() -> None:
                try:
                    box["result"] = self.runner.run(
                        graph, session_id=job["session_id"], services=services
                    )
                except BaseException as e:  # reported to the kernel below
                    box["error"] = e
                    box["tb"] = traceback.format_exc()
                finally:
                    events.put(("end", _DONE))

            thread = threading.Thread(target=work, name=f"invoke-nb-job-{job_id[:8]}", daemon=True)
            thread.start()
            yield from _batches(events, self.flush_seconds)
            thread.join()
        except Exception as e:  # job set-up failed (graph, classes)
            box["error"] = e
            box["tb"] = traceback.format_exc()
        finally:
            self._events = None
            with self._lock:
                self._jobs.pop(job_id, None)
        self.jobs_done += 1
        if "error" in box:
            yield _error_message(box["error"], box.get("tb", ""))
            return
        result = box["result"]
        wanted: set[str] = set()
        for insts in result.instances.values():
            for inst in insts:
                wanted |= image_refs(inst.output)
        shipped = {n for n in wanted if n in sink.saved}
        images = {
            n: result.values[n]
            for n in wanted - shipped
            if isinstance(result.values.get(n), Image.Image)
        }
        yield {
            "t": "done",
            "instances": result.instances,
            "executed": sorted(result.executed),
            "cached": sorted(result.cached),
            "stats": result.stats,
            "seconds": result.seconds,
            "images": images,
            "worker": self.index,
            "loaded_models": self.models.loaded_keys(),
        }


def _batches(events: queue.Queue[tuple[str, Any]], window: float) -> Iterator[dict[str, Any]]:
    """Messages gathered over ``window`` seconds from the first one, as ``batch`` items.

    Each streamed item costs a round of Ray bookkeeping; a job emits tens of events (node
    started/complete, one progress per step), so sending them in small batches keeps the
    per-job overhead low while widgets still update ~20 times a second.
    """
    items: list[dict[str, Any]] = []
    deadline = 0.0
    while True:
        try:
            kind, data = events.get(
                timeout=max(0.0, deadline - time.monotonic()) if items else None
            )
        except queue.Empty:
            yield {"t": "batch", "items": items}
            items = []
            continue
        if kind == "end":
            break
        if kind == "image":
            items.append({"t": "image", **data})
        else:
            ev_kind, payload = data
            items.append({"t": "event", "kind": ev_kind, "payload": payload})
        if len(items) == 1:
            deadline = time.monotonic() + window
    if items:
        yield {"t": "batch", "items": items}


def _plain(v: Any) -> bool:
    return isinstance(v, (str, int, float, bool, type(None)))


def _error_message(err: BaseException, tb: str) -> dict[str, Any]:
    """A failure as a message the kernel can always unpickle (the original when possible)."""
    import pickle

    if isinstance(err, Cancelled):
        return {"t": "cancelled", "message": str(err)}
    original = err.original if isinstance(err, NodeError) else err
    try:
        pickle.loads(pickle.dumps(original))
        portable: BaseException | None = original
    except Exception:
        portable = None
    return {
        "t": "error",
        "node_id": getattr(err, "node_id", None),
        "node_type": getattr(err, "node_type", None),
        "error_type": type(original).__name__,
        "message": str(original),
        "traceback": getattr(err, "traceback", "") or tb,
        "original": portable,
    }
