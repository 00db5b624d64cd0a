"""The runner: executes a graph in topological order with iterate/collect expansion and
incremental execution through the content-keyed :class:`OutputCache`.

Expansion. Each node runs once per *binding*: a map from ``iterate`` node ids to item
indices. A node's bindings are the consistent joins of its sources' bindings (same
iterator, same index; independent iterators multiply). ``iterate`` adds its own index to
what flows out of ``item``. ``collect`` closes the innermost iterators among its items
(those no other iterator there depends on) and gathers one list per remaining binding, so
nested iterate/collect pairs work.

Keys. A node instance's key hashes its type, version, literal inputs and, per connected
input, the key of the source output and its field. Deterministic nodes with
``use_cache`` are served from the cache by key; non-deterministic nodes always run and
their downstream key is the hash of what they produced, so an unchanged random value still
reuses everything below it.
"""

from __future__ import annotations

import resource
import sys
import threading
import time
import traceback
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

from PIL import Image

from invoke_nb.graph.cache import CacheEntry, OutputCache, content_key
from invoke_nb.graph.errors import NodeError
from invoke_nb.graph.model import Edge, Graph, dump_value
from invoke_nb.graph.validate import topological_order
from invoke_nb.nodes.base import Output, check_model_fields
from invoke_nb.nodes.context import Cancelled, Context, Services
from invoke_nb.nodes.flow import CollectOutput, IterateOutput
from invoke_nb.nodes.types import ImageField, type_descriptor

__all__ = ["NodeStat", "RunResult", "Runner", "default_runner", "run"]

Bindings = tuple[tuple[str, int], ...]


@dataclass
class Instance:
    """One execution of a node (or one item leaving an ``iterate``)."""

    node_id: str
    bindings: Bindings
    output: Any
    key: str
    cached: bool


@dataclass
class NodeStat:
    """Timing and memory of one node execution (InvokeAI's invocation stats)."""

    node_id: str
    node_type: str
    seconds: float
    cached: bool
    peak_ram: int = 0
    peak_vram: int = 0


def _peak_ram() -> int:
    """The process's peak resident memory so far, in bytes."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _vram_reset() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def _peak_vram() -> int:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return int(torch.cuda.max_memory_allocated())
    return 0


@dataclass
class RunResult:
    """What a run produced: outputs per node, what ran, what came from the cache."""

    graph: Graph
    session_id: str
    instances: dict[str, list[Instance]]
    executed: set[str]
    cached: set[str]
    values: dict[str, Any]
    stats: list[NodeStat]
    seconds: float
    _outputs: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def outputs(self) -> dict[str, Any]:
        """Node id -> output; a list of outputs for nodes that ran under an ``iterate``."""
        if self._outputs is None:
            out: dict[str, Any] = {}
            for nid, insts in self.instances.items():
                if not insts:
                    continue
                iterated = len(insts) > 1 or any(insts[0].bindings)
                out[nid] = [i.output for i in insts] if iterated else insts[0].output
            self._outputs = out
        return self._outputs

    def value(self, ref: Any) -> Any:
        """The in-memory value behind a reference or a name (image, tensor, ...)."""
        name = ref
        for attr in ("image_name", "latents_name", "tensor_name", "conditioning_name", "mask_name"):
            if hasattr(ref, attr):
                name = getattr(ref, attr)
                break
        if name in self.values:
            return self.values[name]
        from invoke_nb.nodes.context import memory_image

        img = memory_image(name)
        if img is not None:
            return img
        raise KeyError(f"no value named {name!r} in this run")

    def image(self, node_id: str, field: str = "image") -> Image.Image:
        """The PIL image of a node's image output (the first one if it ran per item)."""
        out = self.outputs[node_id]
        if isinstance(out, list):
            out = out[0]
        ref = getattr(out, field)
        if not isinstance(ref, ImageField):
            raise TypeError(f"{node_id}.{field} is not an image output")
        return self.value(ref)

    def images(self) -> list[Image.Image]:
        """Every image produced by non-intermediate nodes, in execution order."""
        result = []
        for nid, insts in self.instances.items():
            if self.graph.nodes[nid].is_intermediate:
                continue
            for inst in insts:
                ref = getattr(inst.output, "image", None)
                if isinstance(ref, ImageField):
                    result.append(self.value(ref))
        return result

    def stats_by_type(self) -> dict[str, dict[str, float]]:
        """Per node type: count, executed, cached and seconds (like InvokeAI's stats)."""
        return aggregate_stats(self.stats)


def aggregate_stats(stats: list[NodeStat]) -> dict[str, dict[str, float]]:
    """Per node type: count, cached, seconds, peak RAM and VRAM (bytes)."""
    agg: dict[str, dict[str, float]] = defaultdict(
        lambda: {"count": 0, "cached": 0, "seconds": 0.0, "peak_ram": 0, "peak_vram": 0}
    )
    for s in stats:
        a = agg[s.node_type]
        a["count"] += 1
        a["cached"] += int(s.cached)
        a["seconds"] += s.seconds
        a["peak_ram"] = max(a["peak_ram"], s.peak_ram)
        a["peak_vram"] = max(a["peak_vram"], s.peak_vram)
    return dict(agg)


def _merge(a: Bindings, b: Bindings) -> Bindings | None:
    if not a:
        return b
    if not b:
        return a
    merged = dict(a)
    for k, v in b:
        if merged.setdefault(k, v) != v:
            return None
    return tuple(sorted(merged.items()))


@lru_cache(maxsize=8192)
def _takes_str(cls: type, name: str) -> bool:
    desc = type_descriptor(cls.model_fields[name].annotation)
    return desc["kind"] == "str" or (
        desc["kind"] == "union" and any(o["kind"] == "str" for o in desc["options"])
    )


def _coerce(cls: type, name: str, value: Any) -> Any:
    """Numbers feeding a text input become text (InvokeAI's int/float -> str rule)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and _takes_str(cls, name):
        return str(value)
    return value


class Runner:
    """Runs graphs with shared services and a shared output cache."""

    def __init__(self, services: Services | None = None, cache: OutputCache | None = None) -> None:
        self.services = services or Services()
        self.cache = cache if cache is not None else OutputCache()
        self._lock = threading.Lock()

    def run(
        self,
        graph: Graph,
        *,
        session_id: str | None = None,
        use_cache: bool = True,
        services: Services | None = None,
    ) -> RunResult:
        """Validate and execute ``graph``. Raises :class:`NodeError` naming a failing node,
        :class:`Cancelled` when cancelled, :class:`GraphError` when the graph is invalid."""
        graph.validate()
        services = services or self.services
        state = _Run(self, graph, session_id or uuid.uuid4().hex, use_cache, services)
        return state.execute()


class _Run:
    def __init__(
        self, runner: Runner, graph: Graph, session_id: str, use_cache: bool, services: Services
    ):
        self.runner = runner
        self.cache = runner.cache
        self.graph = graph
        self.session_id = session_id
        self.use_cache = use_cache
        self.services = services
        self.values: dict[str, Any] = {}
        self.instances: dict[str, list[Instance]] = {}
        self.iter_outer: dict[str, set[str]] = {}
        self.executed: set[str] = set()
        self.stats: list[NodeStat] = []
        self.graph_json: Callable[[], dict[str, Any]] = cache(graph.to_dict)
        self.incoming: dict[str, list[Edge]] = defaultdict(list)
        for e in graph.edges:
            self.incoming[e.destination.node_id].append(e)

    def lookup(self, name: str) -> Any:
        v = self.values.get(name)
        return v if v is not None else self.cache.value(name)

    def emit(self, kind: str, payload: dict[str, Any]) -> None:
        if self.services.emit is not None:
            self.services.emit(kind, payload)

    def execute(self) -> RunResult:
        t0 = time.perf_counter()
        for nid in topological_order(self.graph):
            if self.services.cancel.is_set():
                raise Cancelled(f"run {self.session_id} cancelled before node {nid!r}")
            spec = self.graph.nodes[nid]
            if spec.type == "collect":
                self.instances[nid] = self._collect(nid)
            else:
                self.instances[nid] = self._run_node(nid)
        cached = {n for n, insts in self.instances.items() if insts and n not in self.executed}
        return RunResult(
            graph=self.graph,
            session_id=self.session_id,
            instances=self.instances,
            executed=set(self.executed),
            cached=cached,
            values=self.values,
            stats=self.stats,
            seconds=time.perf_counter() - t0,
        )

    # -- expansion ----------------------------------------------------------------------
    def _combos(self, nid: str) -> list[tuple[Bindings, dict[str, Instance]]]:
        combos: list[tuple[Bindings, dict[str, Instance]]] = [((), {})]
        sources: list[str] = []
        for e in self.incoming[nid]:
            if e.source.node_id not in sources:
                sources.append(e.source.node_id)
        for src in sources:
            nxt = []
            for b, chosen in combos:
                for inst in self.instances[src]:
                    m = _merge(b, inst.bindings)
                    if m is not None:
                        nxt.append((m, {**chosen, src: inst}))
            combos = nxt
        return combos

    def _literal_key_part(self, nid: str) -> list[Any]:
        spec = self.graph.nodes[nid]
        cls = spec.cls
        return [
            spec.type,
            cls.version,
            {k: dump_value(cls, k, v) for k, v in spec.values.items()},
        ]

    def _run_node(self, nid: str) -> list[Instance]:
        spec = self.graph.nodes[nid]
        cls = spec.cls
        literal = self._literal_key_part(nid)
        edges = self.incoming[nid]
        result: list[Instance] = []
        for bindings, chosen in self._combos(nid):
            inputs = {
                e.destination.field: _coerce(
                    cls,
                    e.destination.field,
                    getattr(chosen[e.source.node_id].output, e.source.field),
                )
                for e in edges
            }
            key = content_key(
                [
                    literal,
                    sorted(
                        (e.destination.field, chosen[e.source.node_id].key, e.source.field)
                        for e in edges
                    ),
                ]
            )
            if spec.type == "iterate":
                result.extend(self._iterate(nid, bindings, key, inputs))
                continue
            cacheable = self.use_cache and spec.use_cache and cls.deterministic
            entry = self.cache.get(key) if cacheable else None
            if entry is not None:
                self.values.update(entry.values)
                self.stats.append(NodeStat(nid, spec.type, 0.0, True))
                self.emit(
                    "node_complete",
                    {
                        "node_id": nid,
                        "node_type": spec.type,
                        "session_id": self.session_id,
                        "cached": True,
                    },
                )
                result.append(Instance(nid, bindings, entry.output, key, True))
                continue
            output, ctx = self._invoke(nid, key, {**spec.values, **inputs}, bindings)
            self.executed.add(nid)
            if cacheable:
                self.cache.put(
                    key, CacheEntry(output, dict(ctx.produced), ctx.produced_size() + 512)
                )
            out_key = (
                key if cls.deterministic else content_key([key, output.model_dump(mode="json")])
            )
            result.append(Instance(nid, bindings, output, out_key, False))
        return result

    def _invoke(
        self, nid: str, key: str, values: dict[str, Any], bindings: Bindings
    ) -> tuple[Output, Context]:
        spec = self.graph.nodes[nid]
        cls = spec.cls
        try:
            node = cls.model_validate(
                {
                    **values,
                    "id": nid,
                    "is_intermediate": spec.is_intermediate,
                    "use_cache": spec.use_cache,
                }
            )
        except Exception as e:
            raise NodeError(nid, spec.type, e, traceback.format_exc()) from e
        ctx = Context(
            node=node,
            key=key,
            session_id=self.session_id,
            services=self.services,
            lookup=self.lookup,
            graph_json=self.graph_json,
        )
        self.emit(
            "node_started",
            {
                "node_id": nid,
                "node_type": spec.type,
                "session_id": self.session_id,
                "bindings": dict(bindings),
            },
        )
        _vram_reset()
        t0 = time.perf_counter()
        try:
            check_model_fields(node, self.services.models)
            output = node.invoke(ctx)
        except Cancelled:
            raise
        except Exception as e:
            tb = traceback.format_exc()
            err = NodeError(nid, spec.type, e, tb)
            self.emit(
                "node_error",
                {
                    "node_id": nid,
                    "node_type": spec.type,
                    "session_id": self.session_id,
                    "error_type": type(e).__name__,
                    "error": str(e),
                    "traceback": tb,
                },
            )
            raise err from e
        seconds = time.perf_counter() - t0
        if not isinstance(output, Output):
            err = TypeError(f"invoke() returned {type(output).__name__}, not an Output")
            raise NodeError(nid, spec.type, err) from err
        self.values.update(ctx.produced)
        self.stats.append(NodeStat(nid, spec.type, seconds, False, _peak_ram(), _peak_vram()))
        self.emit(
            "node_complete",
            {
                "node_id": nid,
                "node_type": spec.type,
                "session_id": self.session_id,
                "cached": False,
                "seconds": seconds,
            },
        )
        return output, ctx

    def _iterate(
        self, nid: str, bindings: Bindings, key: str, inputs: dict[str, Any]
    ) -> list[Instance]:
        spec = self.graph.nodes[nid]
        collection = inputs.get("collection", spec.values.get("collection", []))
        if not isinstance(collection, (list, tuple)):
            err = TypeError(f"iterate needs a list, got {type(collection).__name__}")
            raise NodeError(nid, spec.type, err) from err
        seen = self.cache.get(key) is not None
        if not seen:
            self.cache.put(key, CacheEntry(None, {}, 64))
            self.executed.add(nid)
        self.iter_outer.setdefault(nid, set()).update(k for k, _ in bindings)
        total = len(collection)
        return [
            Instance(
                nid,
                _merge(bindings, ((nid, i),)) or (),
                IterateOutput(item=item, index=i, total=total),
                content_key([key, i]),
                seen,
            )
            for i, item in enumerate(collection)
        ]

    def _collect(self, nid: str) -> list[Instance]:
        item_edges = [e for e in self.incoming[nid] if e.destination.field == "item"]
        iters: set[str] = set()
        for e in item_edges:
            for inst in self.instances[e.source.node_id]:
                iters.update(k for k, _ in inst.bindings)
        outer_of_others = (
            set().union(*(self.iter_outer.get(j, set()) for j in iters)) if iters else set()
        )
        closed = {i for i in iters if i not in outer_of_others}
        groups: dict[Bindings, list[tuple[Any, str]]] = {}
        for e in item_edges:
            for inst in self.instances[e.source.node_id]:
                outer = tuple((k, v) for k, v in inst.bindings if k not in closed)
                groups.setdefault(outer, []).append(
                    (getattr(inst.output, e.source.field), f"{inst.key}:{e.source.field}")
                )
        if not groups:
            groups[()] = []
        result = []
        spec = self.graph.nodes[nid]
        for outer, items in groups.items():
            key = content_key([spec.type, [k for _, k in items]])
            seen = self.cache.get(key) is not None
            if not seen:
                self.cache.put(key, CacheEntry(None, {}, 64))
                self.executed.add(nid)
            result.append(
                Instance(nid, outer, CollectOutput(collection=[v for v, _ in items]), key, seen)
            )
        return result


_default: Runner | None = None
_default_lock = threading.Lock()


def default_runner() -> Runner:
    """The kernel's default runner (in-memory, with its own output cache)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Runner()
        return _default


def run(graph: Graph, **kwargs: Any) -> RunResult:
    """Run ``graph`` on the default runner; see :meth:`Runner.run`."""
    return default_runner().run(graph, **kwargs)
