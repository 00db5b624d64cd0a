"""The Ray executor: graph runs fan out to :class:`~invoke_nb.executors.ray_worker.GraphWorker`
actors (one per GPU, or per CPU slot), while the catalog, the queue and the widgets stay in
the kernel.

What moves to a worker: the graph (as JSON), the records of the models it names, its image
inputs, and the classes of custom nodes defined in the notebook. What comes back: events
(node started/complete, progress with previews, model loads) while the graph runs, images
as PNG bytes with their metadata, and the node outputs. The kernel writes the images into
the catalog through ``services.image_sink`` when the job ends, so the single-writer rule
holds and a job retried after a worker died leaves exactly one copy of each image.

Routing prefers an idle worker that already holds the job's models (each worker keeps its
own model and output caches for its lifetime). Models reach a worker by path when it can
read the same files (shared storage), else the kernel ships them once through Ray's object
store, in chunks (``executors/shipping.py``: never whole in the kernel's memory), and the
worker checks their ``blake3`` hash before use.

Several queue items run at once: the executor's :attr:`RayExecutor.concurrency` (its number
of live workers) tells the queue processor how many items to keep in flight.

    studio.use_executor("ray", address="ray://head:10001", workers=4, num_gpus_per_worker=1)
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image
from pydantic import BaseModel

from invoke_nb.executors.ray_worker import GraphWorker, ModelShipError
from invoke_nb.executors.shipping import pack_chunks
from invoke_nb.graph.errors import NodeError
from invoke_nb.graph.model import Graph
from invoke_nb.graph.runner import Instance, RunResult
from invoke_nb.models.records import ModelRecord
from invoke_nb.nodes.base import get_node_class
from invoke_nb.nodes.context import Cancelled, Services, memory_image
from invoke_nb.nodes.types import ImageField, ModelIdentifierField

__all__ = ["ModelShipError", "RayExecutor", "WorkerLostError"]

log = logging.getLogger("invoke_nb.executors.ray")

_SHIP_MODES = ("auto", "always", "never")


class WorkerLostError(RuntimeError):
    """A job's worker died, and so did the worker of its retry; the job is failed."""


class _WorkerLost(Exception):  # an internal signal; never leaves the executor
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _ray() -> Any:
    try:
        import ray
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the Ray executor needs Ray: pip install 'invoke-nb[ray]' (or 'ray[default]>=2.30')"
        ) from e
    return ray


def start_local_ray(num_cpus: int, attempts: int = 3) -> Any:
    """``ray.init`` a local, loopback-only cluster without dashboard; returns the module.

    On a loaded machine the raylet may give up waiting for its metrics agent (a fixed ~15 s:
    "timed out during startup"): that start is tried again, up to ``attempts`` times."""
    ray = _ray()
    for attempt in range(attempts):
        try:
            ray.init(
                num_cpus=num_cpus,
                include_dashboard=False,
                log_to_driver=False,
                _node_ip_address="127.0.0.1",
            )
            return ray
        except Exception as e:
            ray.shutdown()
            if attempt == attempts - 1 or "timed out during startup" not in str(e):
                raise
    return ray


def _death_errors() -> tuple[type[BaseException], ...]:
    ex = _ray().exceptions
    return (
        ex.RayActorError,
        ex.WorkerCrashedError,
        ex.NodeDiedError,
        ex.ObjectLostError,
        ex.OwnerDiedError,
    )


@dataclass
class _Handle:
    """The kernel's view of one worker actor."""

    index: int
    actor: Any
    busy: bool = False
    alive: bool = True
    jobs: int = 0
    last_used: float = 0.0
    models: set[str] = field(default_factory=set)  # model keys loaded there (routing)
    ready_models: set[str] = field(default_factory=set)  # model keys whose files it can read


class _Pool:
    """Workers, who is busy, and the choice of a worker for a job."""

    def __init__(self, spawn: Any, count: int, *, replace_dead: bool) -> None:
        self._spawn = spawn
        self._cond = threading.Condition()
        self._next_index = 0
        self.replace_dead = replace_dead
        self.handles: list[_Handle] = []
        for _ in range(count):
            self._add()

    def _add(self) -> _Handle:
        h = _Handle(index=self._next_index, actor=self._spawn(self._next_index))
        self._next_index += 1
        self.handles.append(h)
        return h

    def acquire(self, model_keys: set[str], cancel: threading.Event) -> _Handle:
        """The idle worker holding most of ``model_keys`` (then the least recently used);
        waits while every worker is busy; raises ``Cancelled`` if cancelled while waiting."""
        with self._cond:
            while True:
                if cancel.is_set():
                    raise Cancelled("cancelled while waiting for a Ray worker")
                idle = [h for h in self.handles if h.alive and not h.busy]
                if idle:
                    best = max(
                        idle, key=lambda h: (len(model_keys & h.models), -h.last_used, -h.index)
                    )
                    best.busy = True
                    return best
                if not any(h.alive for h in self.handles):
                    raise WorkerLostError("no Ray worker is alive")
                self._cond.wait(0.1)

    def release(self, h: _Handle) -> None:
        with self._cond:
            h.busy = False
            h.last_used = time.monotonic()
            self._cond.notify_all()

    def lost(self, h: _Handle) -> _Handle | None:
        """Forget a dead worker; start a replacement when configured to."""
        with self._cond:
            h.alive = False
            h.busy = False
            if h in self.handles:
                self.handles.remove(h)
            new = self._add() if self.replace_dead else None
            self._cond.notify_all()
            return new

    @property
    def live(self) -> int:
        with self._cond:
            return sum(1 for h in self.handles if h.alive)


class RayExecutor:
    """Runs queue items on Ray actors; see the module docstring.

    ``address``: ``None`` joins the cluster this process already joined, or starts a local
    one; ``"auto"`` or ``"ray://host:10001"`` connects to a running cluster.
    ``workers``: how many actors (default: one per GPU, or one per ``num_cpus_per_worker``
    CPUs on a CPU-only cluster). ``num_gpus_per_worker``: GPUs reserved per actor (default 1
    when the cluster has GPUs, else 0). ``torch_threads``: torch threads per worker (default
    ``num_cpus_per_worker``). ``ship_models``: ``"auto"`` ships a model only to workers that
    cannot read its path, ``"always"`` ships it regardless (clusters without shared
    storage), ``"never"`` relies on shared paths. ``max_retries``: how many times a job
    whose worker died is run again on another worker.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int | None = None,
        num_gpus_per_worker: float | None = None,
        num_cpus_per_worker: float = 1,
        torch_threads: int | None = None,
        ship_models: str = "auto",
        model_dir: str | None = None,
        max_retries: int = 1,
        replace_dead_workers: bool = True,
        init_kwargs: dict[str, Any] | None = None,
        actor_options: dict[str, Any] | None = None,
    ) -> None:
        if ship_models not in _SHIP_MODES:
            raise ValueError(f"ship_models={ship_models!r}: expected one of {_SHIP_MODES}")
        if workers is not None and workers < 1:
            raise ValueError(f"workers={workers}: at least one worker is needed")
        if max_retries < 0:
            raise ValueError(f"max_retries={max_retries} must be >= 0")
        ray = _ray()
        self._owns_ray = False
        if not ray.is_initialized():
            ray.init(address=address, **(init_kwargs or {}))
            self._owns_ray = True
        resources = ray.cluster_resources()
        gpus = float(resources.get("GPU", 0))
        if num_gpus_per_worker is None:
            num_gpus_per_worker = 1 if gpus >= 1 else 0
        if workers is None:
            if num_gpus_per_worker:
                workers = max(1, int(gpus // num_gpus_per_worker))
            else:
                workers = max(
                    1, int(float(resources.get("CPU", 1)) // max(num_cpus_per_worker, 1e-9))
                )
        self.num_gpus_per_worker = num_gpus_per_worker
        self.num_cpus_per_worker = num_cpus_per_worker
        self.torch_threads = torch_threads or max(1, int(num_cpus_per_worker))
        self.ship_models = ship_models
        self.max_retries = max_retries
        self.retries: list[dict[str, Any]] = []  # one entry per job re-run after a worker died
        self._model_dir = model_dir
        self._actor_cls = ray.remote(GraphWorker).options(
            num_cpus=num_cpus_per_worker,
            num_gpus=num_gpus_per_worker,
            max_concurrency=4,  # run() plus cancel/stats/model shipping beside it
            max_restarts=0,
            max_task_retries=0,
            **(actor_options or {}),
        )
        self._shipments: dict[tuple[str, str], tuple[Any, str, bool]] = {}
        self._ship_lock = threading.Lock()
        self._names: OrderedDict[str, str] = OrderedDict()  # worker image name -> catalog name
        self._names_lock = threading.Lock()
        self._closed = False
        self._pool = _Pool(self._spawn, workers, replace_dead=replace_dead_workers)

    def _spawn(self, index: int) -> Any:
        return self._actor_cls.remote(
            index,
            torch_threads=self.torch_threads,
            model_dir=self._model_dir,
            gpu_fraction=float(self.num_gpus_per_worker or 1.0),
        )

    # -- introspection ----------------------------------------------------------------
    @property
    def concurrency(self) -> int:
        """How many jobs may run at once: the number of live workers."""
        return max(1, self._pool.live)

    def wait_ready(self, timeout: float = 120.0) -> list[dict[str, Any]]:
        """Block until every worker has started; their ``info()`` (pid, host, device)."""
        ray = _ray()
        handles = [h for h in self._pool.handles if h.alive]
        return ray.get([h.actor.info.remote() for h in handles], timeout=timeout)

    def worker_stats(self, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Per live worker: jobs run, model loads by part, loaded models, output cache."""
        ray = _ray()
        handles = [h for h in self._pool.handles if h.alive]
        return ray.get([h.actor.stats.remote() for h in handles], timeout=timeout)

    # -- the job ------------------------------------------------------------------------
    def _job(self, graph: Graph, session_id: str, services: Services) -> dict[str, Any]:
        """Everything a worker needs: graph JSON, model records, image inputs, custom nodes."""
        records: dict[str, ModelRecord] = {}
        images: dict[str, Image.Image] = {}
        classes: dict[str, type] = {}
        for spec in graph.nodes.values():
            cls = get_node_class(spec.type)
            if not cls.__module__.startswith("invoke_nb."):
                _pickle_by_value(cls.__module__)
                classes[spec.type] = cls
            for value in spec.values.values():
                for item in _walk(value):
                    if isinstance(item, ModelIdentifierField) and services.models is not None:
                        try:
                            rec = services.models.record(item)
                        except Exception:  # the node on the worker names the missing model
                            continue
                        records.setdefault(rec.key, rec)
                    elif isinstance(item, ImageField) and item.image_name not in images:
                        img = memory_image(item.image_name)
                        if img is None and services.image_sink is not None:
                            img = services.image_sink.get(item.image_name)
                        if img is not None:
                            images[item.image_name] = img
        return {
            "job_id": uuid.uuid4().hex,
            "session_id": session_id,
            "preview_every": services.preview_every,
            "graph": graph.to_dict(),
            "records": list(records.values()),
            "images": images,
            "classes": classes,
        }

    def _shipment(self, rec: ModelRecord, asset: str) -> tuple[list[Any], str, bool]:
        """The object-store copy of a model part (its chunks' references), packed and hashed
        once per kernel; the kernel reads it one chunk at a time."""
        from invoke_nb.models.hashing import model_hash

        key = (rec.key, asset)
        with self._ship_lock:
            if key not in self._shipments:
                path = Path(getattr(rec, asset))
                if not path.exists():
                    raise ModelShipError(
                        f"model {rec.name!r}: {asset} {str(path)!r} is missing in the kernel too"
                    )
                digest = model_hash(path)
                if asset == "path" and rec.hash.startswith("blake3:") and digest != rec.hash:
                    raise ModelShipError(
                        f"model {rec.name!r}: the files at {str(path)!r} hash to {digest}, "
                        f"not the installed {rec.hash}; reinstall the model"
                    )
                refs = pack_chunks(path, _ray().put)
                self._shipments[key] = (refs, digest, path.is_dir())
            return self._shipments[key]

    def _ensure_models(self, h: _Handle, records: list[ModelRecord]) -> None:
        """Make sure worker ``h`` can read every model of the job (ship what it lacks)."""
        ray = _ray()
        need = [r for r in records if r.key not in h.ready_models]
        if not need:
            return
        if self.ship_models == "never":
            missing: dict[str, list[str]] = {}
        elif self.ship_models == "always":
            missing = {r.key: [a for a in ("path", "config_path") if getattr(r, a)] for r in need}
        else:
            missing = ray.get(h.actor.missing_models.remote(need))
        by_key = {r.key: r for r in need}
        for key, assets in missing.items():
            rec = by_key[key]
            for asset in assets:
                refs, digest, is_dir = self._shipment(rec, asset)
                log.info("shipping %s (%s) to Ray worker %d", rec.name, asset, h.index)
                try:
                    ray.get(h.actor.install_model.remote(rec, asset, refs, is_dir, digest))
                except ray.exceptions.RayTaskError as e:
                    cause = e.cause if isinstance(e.cause, Exception) else RuntimeError(str(e))
                    raise cause from None
        h.ready_models.update(by_key)

    # -- running ------------------------------------------------------------------------
    def run(self, graph: Graph, *, session_id: str, services: Services) -> RunResult:
        """Run ``graph`` on a worker; retry once on another worker if that one dies."""
        if self._closed:
            raise RuntimeError("this RayExecutor is closed")
        graph.validate()
        job = self._job(graph, session_id, services)
        keys = {r.key for r in job["records"]}
        attempt = 0
        while True:
            h = self._pool.acquire(keys, services.cancel)
            try:
                return self._attempt(h, job, graph, services)
            except _WorkerLost as lost:
                if self._closed:
                    raise WorkerLostError(
                        f"session {session_id}: the executor was closed"
                    ) from None
                self._pool.lost(h)
                attempt += 1
                self.retries.append(
                    {"session_id": session_id, "worker": h.index, "reason": lost.reason}
                )
                if attempt > self.max_retries:
                    raise WorkerLostError(
                        f"session {session_id}: Ray worker {h.index} died while running it "
                        f"({lost.reason}), after {attempt - 1} retry(ies)"
                    ) from None
                log.warning(
                    "Ray worker %d died (%s); retrying %s on another worker",
                    h.index,
                    lost.reason,
                    session_id,
                )
            finally:
                if h.alive:
                    self._pool.release(h)

    def _attempt(
        self, h: _Handle, job: dict[str, Any], graph: Graph, services: Services
    ) -> RunResult:
        ray = _ray()
        deaths = _death_errors()
        pending: list[dict[str, Any]] = []
        try:
            self._ensure_models(h, job["records"])
            gen = h.actor.run.options(num_returns="streaming").remote(job)
            cancel_sent = False
            while True:
                if services.cancel.is_set() and not cancel_sent:
                    h.actor.cancel.remote(job["job_id"])
                    cancel_sent = True
                ready, _ = ray.wait([gen], timeout=0.05)
                if not ready:
                    continue
                try:
                    ref = next(gen)
                except StopIteration:
                    raise _WorkerLost("the worker ended the job without a result") from None
                msg = ray.get(ref)
                kind = msg["t"]
                if kind != "batch":
                    break
                for item in msg["items"]:
                    if item["t"] == "image":
                        pending.append(item)
                    elif services.emit is not None:
                        services.emit(item["kind"], {**item["payload"], "worker": h.index})
        except deaths as e:
            raise _WorkerLost(
                f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            ) from None
        # The attempt ended on the worker's own terms: its images go to the catalog now.
        h.jobs += 1
        values = self._commit(pending, graph, job["session_id"], services)
        if kind == "cancelled":
            raise Cancelled(msg["message"])
        if kind == "error":
            raise _remote_error(msg)
        h.models = set(msg["loaded_models"])
        return self._result(msg, graph, job["session_id"], values, services)

    def _commit(
        self, pending: list[dict[str, Any]], graph: Graph, session_id: str, services: Services
    ) -> dict[str, Any]:
        """Write the job's images through the kernel's sink; the PIL images by final name."""
        values: dict[str, Any] = {}
        graph_json = graph.to_dict() if pending else None
        for msg in pending:
            img = Image.open(io.BytesIO(msg["png"]))
            img.load()
            name = msg["name"]
            if services.image_sink is not None:
                name = services.image_sink.save(
                    img,
                    node_id=msg["node_id"],
                    node_type=msg["node_type"],
                    metadata=msg["metadata"],
                    board_id=msg["board_id"],
                    session_id=session_id,
                    graph=graph_json,
                )
                with self._names_lock:
                    self._names[msg["name"]] = name
                    while len(self._names) > 100_000:
                        self._names.popitem(last=False)
            values[name] = img
        return values

    def _result(
        self,
        msg: dict[str, Any],
        graph: Graph,
        session_id: str,
        values: dict[str, Any],
        services: Services,
    ) -> RunResult:
        with self._names_lock:
            names = dict(self._names)
        instances: dict[str, list[Instance]] = {}
        for nid, insts in msg["instances"].items():
            instances[nid] = [
                Instance(i.node_id, i.bindings, _rename(i.output, names), i.key, i.cached)
                for i in insts
            ]
        values.update(msg["images"])
        sink = services.image_sink
        for insts in instances.values():  # images of outputs cached on the worker
            for inst in insts:
                for item in _walk_output(inst.output):
                    if (
                        isinstance(item, ImageField)
                        and item.image_name not in values
                        and sink is not None
                    ):
                        img = sink.get(item.image_name)
                        if img is not None:
                            values[item.image_name] = img
        return RunResult(
            graph=graph,
            session_id=session_id,
            instances=instances,
            executed=set(msg["executed"]),
            cached=set(msg["cached"]),
            values=values,
            stats=list(msg["stats"]),
            seconds=msg["seconds"],
        )

    # -- lifecycle --------------------------------------------------------------------
    def close(self) -> None:
        """Stop the workers (and the Ray connection this executor opened)."""
        if self._closed:
            return
        self._closed = True
        self._pool.replace_dead = False
        ray = _ray()
        for h in list(self._pool.handles):
            h.alive = False
            with contextlib.suppress(Exception):  # already gone
                ray.kill(h.actor, no_restart=True)
        self._pool.handles.clear()
        self._shipments.clear()
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()

    def __repr__(self) -> str:
        return f"<RayExecutor workers={self._pool.live} gpus/worker={self.num_gpus_per_worker}>"


_BY_VALUE: set[str] = set()


def _pickle_by_value(module_name: str) -> None:
    """Ship a custom node's module by value, so workers need not have the file.

    Classes from ``__main__`` (notebook cells) go by value anyway; a ``my_nodes.py`` beside
    the notebook would otherwise have to exist on every worker. Installed packages
    (site-packages) still go by reference: workers must install them like any dependency.
    """
    if module_name in _BY_VALUE or module_name == "__main__":
        return
    mod = sys.modules.get(module_name)
    file = str(getattr(mod, "__file__", "") or "")
    if mod is None or "site-packages" in file or "dist-packages" in file:
        return
    _ray().cloudpickle.register_pickle_by_value(mod)
    _BY_VALUE.add(module_name)


def _walk(value: Any) -> list[Any]:
    """A literal value and everything nested in it (lists, dicts)."""
    out = [value]
    if isinstance(value, (list, tuple)):
        for v in value:
            out.extend(_walk(v))
    elif isinstance(value, dict):
        for v in value.values():
            out.extend(_walk(v))
    return out


def _walk_output(obj: Any) -> list[Any]:
    """An output model's field values, nested values included."""
    out: list[Any] = []
    if isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            out.extend(_walk(getattr(obj, name, None)))
    return out


def _rename(obj: Any, names: dict[str, str]) -> Any:
    """``obj`` with worker image names replaced by their catalog names (a copy if changed)."""
    if isinstance(obj, ImageField):
        new = names.get(obj.image_name)
        return obj if new is None else obj.model_copy(update={"image_name": new})
    if isinstance(obj, (list, tuple)):
        items = [_rename(v, names) for v in obj]
        return obj if all(a is b for a, b in zip(items, obj, strict=True)) else type(obj)(items)
    if isinstance(obj, dict):
        new = {k: _rename(v, names) for k, v in obj.items()}
        return obj if all(new[k] is obj[k] for k in obj) else new
    if isinstance(obj, BaseModel):
        changes = {}
        for fname in type(obj).model_fields:
            v = getattr(obj, fname, None)
            nv = _rename(v, names)
            if nv is not v:
                changes[fname] = nv
        return obj.model_copy(update=changes) if changes else obj
    return obj


_REMOTE_TYPES: dict[str, type[Exception]] = {}


def _remote_error(msg: dict[str, Any]) -> BaseException:
    """The worker's failure as the kernel's exception (a ``NodeError`` naming the node)."""
    original = msg.get("original")
    if not isinstance(original, BaseException):
        name = msg["error_type"]
        cls = _REMOTE_TYPES.get(name)
        if cls is None:
            cls = type(
                name, (RuntimeError,), {"__module__": __name__, "__doc__": "raised on a Ray worker"}
            )
            _REMOTE_TYPES[name] = cls
        original = cls(msg["message"])
    if msg.get("node_id"):
        return NodeError(msg["node_id"], msg["node_type"], original, msg.get("traceback", ""))
    return original
