"""The persistent model cache: one per process, outliving cells, Studio objects and managers.

Why it exists: reloading a UNet for each run is the commonest complaint about InvokeAI and
ComfyUI in notebooks. Models stay in RAM under a budget, least recently used first out;
a node holds a model through :meth:`ModelCache.lock`, which pins it (never evicted while
held) and puts it on the execution device. On a GPU, unlocked models stay there until room
is needed, then go back to RAM (their CPU copy is kept, so that costs no copy); a model
bigger than the room left is loaded partly (:mod:`invoke_nb.models.placement`). The device
budget is the free device memory less a working-memory reserve. Entries are keyed by
``(model key, submodel)`` so a shared VAE or text encoder loads once.

``get_model_cache()`` returns the process-wide instance; ``ModelCache(...)`` builds a private
one (tests, benchmarks).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from invoke_nb.models.devices import (
    choose_device,
    device_memory,
    empty_cache,
    enable_tf32,
    normalize_precision,
    precision_name,
    resolve_dtype,
)
from invoke_nb.models.errors import ModelError, ModelLoadError
from invoke_nb.models.memory import ram_limit, release_memory

__all__ = ["CacheKey", "CacheStats", "ModelCache", "get_model_cache", "object_size"]

log = logging.getLogger("invoke_nb.models.cache")

CacheKey = tuple[str, str | None]
Listener = Callable[[str, dict[str, Any]], None]

_DEFAULT_RAM_FRACTION = 0.5
_WORKING_MEMORY = 3 * 1024**3  # activations and VAE decodes (InvokeAI's default reserve)


def object_size(obj: Any) -> int:
    """Bytes held by a model's tensors (modules, tensors, dicts/lists of them); 0 otherwise."""
    torch = sys.modules.get("torch")
    if torch is None:
        return 0
    seen: set[int] = set()
    total = 0

    def add(t: Any) -> None:
        nonlocal total
        try:
            ptr = t.untyped_storage().data_ptr()
        except Exception:
            ptr = id(t)
        if ptr in seen and ptr != 0:
            return
        seen.add(ptr)
        total += t.numel() * t.element_size()

    if isinstance(obj, torch.nn.Module):
        for t in obj.parameters():
            add(t)
        for t in obj.buffers():
            add(t)
    elif isinstance(obj, torch.Tensor):
        add(obj)
    elif isinstance(obj, dict):
        return sum(object_size(v) for v in obj.values())
    elif isinstance(obj, (list, tuple)):
        return sum(object_size(v) for v in obj)
    else:
        # pipelines and other containers expose their modules as attributes
        components = getattr(obj, "components", None)
        if isinstance(components, dict):
            return sum(object_size(v) for v in components.values())
        # any other object: the modules and tensors it holds directly (one level deep)
        for v in getattr(obj, "__dict__", {}).values():
            items = (
                v.values() if isinstance(v, dict) else v if isinstance(v, (list, tuple)) else [v]
            )
            for item in items:
                if isinstance(item, torch.nn.Module):
                    total += object_size(item)
                elif isinstance(item, torch.Tensor):
                    add(item)
    return total


def default_device() -> str:
    """``cuda`` when a GPU is usable, then ``mps``, else ``cpu``."""
    return choose_device()


def _device_room(device: str, held: int, working: int, fraction: float) -> int:
    """Bytes the cache may hold on ``device``: what is free now plus what it already holds
    there, less the working memory kept for activations and VAE decodes; a Ray worker with a
    fraction of a GPU gets that fraction of the card at most."""
    mem = device_memory(device)
    if mem is None:
        return 0
    free, total = mem
    room = free + held - working
    if fraction < 1.0:
        room = min(room, int(total * fraction) - working)
    return max(room, 0)


def _move(obj: Any, device: str) -> Any:
    """Move a module (or pipeline-like object) to ``device``; other objects stay put."""
    to = getattr(obj, "to", None)
    if to is None:
        return obj
    moved = to(device)
    return obj if moved is None else moved


@dataclass
class CacheStats:
    """A snapshot of the cache's counters (``studio.models.cache.stats()``)."""

    hits: int = 0
    misses: int = 0
    loads: int = 0
    load_seconds: float = 0.0
    load_errors: int = 0
    evictions: int = 0
    offloads: int = 0
    partial_loads: int = 0
    entries: int = 0
    locked: int = 0
    bytes_ram: int = 0
    bytes_vram: int = 0
    ram_budget: int = 0
    vram_budget: int = 0
    reserved_ram: int = 0  # part of bytes_ram held by :meth:`ModelCache.reserve` (LoRA originals)
    reserved_vram: int = 0  # part of bytes_vram held by :meth:`ModelCache.reserve`
    last_loads: list[tuple[str, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Entry:
    key: CacheKey
    obj: Any
    size: int
    label: str
    locks: int = 0
    placement: Any = None  # models.placement.Placement once the entry went to the device
    vram: int = 0  # bytes of this entry held on the execution device

    @property
    def partial(self) -> bool:
        return self.placement is not None and self.placement.partial


class ModelCache:
    """LRU cache of loaded models with RAM/VRAM budgets and pinning while in use."""

    def __init__(
        self,
        ram_bytes: int | None = None,
        vram_bytes: int | None = None,
        *,
        device: str | None = None,
        on_event: Listener | None = None,
        mover: Callable[[Any, str], Any] = _move,
        precision: str | None = "auto",
        working_memory: int = _WORKING_MEMORY,
        device_fraction: float = 1.0,
        channels_last: bool = False,
        compile: bool | dict[str, Any] = False,
    ) -> None:
        """``vram_bytes``: the device budget (default: free device memory less
        ``working_memory``, live); set on a CPU cache it is enforced too, so partial loading
        runs on the CPU. ``device_fraction``: the share of the card this process owns (Ray
        workers with fractional GPUs). ``mover`` moves objects that are not torch modules.
        ``channels_last`` and ``compile`` (True or ``torch.compile`` options) are opt-in
        speed-ups applied to UNets as they load (compile wants whole, not partial, loads)."""
        self._device = choose_device(device) if device is not None else None
        self._precision = normalize_precision(precision)
        self._dtype: Any = None
        self.ram_budget = (
            int(ram_bytes) if ram_bytes is not None else int(ram_limit() * _DEFAULT_RAM_FRACTION)
        )
        self._vram_budget = vram_bytes
        self.working_memory = int(working_memory)
        self.channels_last = channels_last
        self.compile = compile
        self.device_fraction = float(device_fraction)
        self._entries: OrderedDict[CacheKey, _Entry] = OrderedDict()
        self._lock = threading.RLock()
        self._loading: dict[CacheKey, threading.Lock] = {}
        self._listeners: list[Listener] = [on_event] if on_event else []
        self._mover = mover
        self._stats = CacheStats()
        self._reserved = {"ram": 0, "vram": 0}  # bytes held by open reserve() blocks

    # -- configuration ------------------------------------------------------------------

    @property
    def device(self) -> str:
        """The execution device models are moved to while locked."""
        if self._device is None:
            self._device = default_device()
        return self._device

    @property
    def precision(self) -> str:
        """The precision setting (``auto``, ``float16``, ``bfloat16``, ``float32``)."""
        return self._precision

    @precision.setter
    def precision(self, value: str | None) -> None:
        """Change the precision; cached models in another dtype are dropped (unless locked)."""
        name = normalize_precision(value)
        if name == self._precision:
            return
        with self._lock:
            old = self.dtype
            self._precision, self._dtype = name, None
            if self.dtype != old:
                for k in [k for k, e in self._entries.items() if not e.locks]:
                    del self._entries[k]

    @property
    def dtype(self) -> Any:
        """The torch dtype UNets, text encoders and VAEs are loaded in on this device."""
        if self._dtype is None:
            enable_tf32()
            self._dtype = resolve_dtype(self.device, self._precision)
        return self._dtype

    @property
    def precision_name(self) -> str:
        """The resolved dtype's name (``float16``...), as recorded in image metadata."""
        return precision_name(self.dtype)

    @property
    def execution_device(self) -> str:
        """Where nodes must put their inputs: the cache's device, never a parameter's."""
        return self.device

    @property
    def vram_budget(self) -> int:
        """Bytes of models the execution device may hold (set, or from free memory now)."""
        if self._vram_budget is not None:
            return self._vram_budget
        return _device_room(
            self.device, self._vram_held(), self.working_memory, self.device_fraction
        )

    @vram_budget.setter
    def vram_budget(self, value: int | None) -> None:
        self._vram_budget = None if value is None else int(value)

    def _budgeted(self) -> bool:
        """Whether models are placed on a device under a budget (a GPU, or a CPU cache given
        a budget to exercise the same code)."""
        return self.device != "cpu" or self._vram_budget is not None

    def add_listener(self, fn: Listener) -> None:
        """Call ``fn(kind, payload)`` on ``model_load_started`` / ``model_load_complete``, and
        on the memory decisions: ``model_offloaded`` (device -> RAM to make room),
        ``model_partially_loaded`` (part on the device, the rest streaming) and
        ``model_evicted`` (out of RAM). Listeners run with the cache's lock held."""
        self._listeners.append(fn)

    def remove_listener(self, fn: Listener) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    def _emit(self, kind: str, **payload: Any) -> None:
        for fn in list(self._listeners):
            try:
                fn(kind, payload)
            except Exception:  # a broken listener must not break loading
                log.exception("model cache listener failed on %s", kind)

    # -- queries -------------------------------------------------------------------------

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def keys(self) -> list[CacheKey]:
        """Cached keys, least recently used first."""
        with self._lock:
            return list(self._entries)

    def _bytes_on(self, vram: bool) -> int:
        # every entry keeps its weights in RAM; VRAM holds the placed part of some
        if vram:
            return self._vram_held()
        return sum(e.size for e in self._entries.values()) + self._reserved["ram"]

    def _vram_held(self) -> int:
        return sum(e.vram for e in self._entries.values()) + self._reserved["vram"]

    def stats(self) -> CacheStats:
        """Hits, misses, loads and their seconds, bytes in RAM/VRAM, evictions."""
        with self._lock:
            s = CacheStats(**{**asdict(self._stats), "last_loads": list(self._stats.last_loads)})
            s.entries = len(self._entries)
            s.locked = sum(1 for e in self._entries.values() if e.locks)
            s.bytes_ram = self._bytes_on(vram=False)
            s.bytes_vram = self._bytes_on(vram=True)
            s.ram_budget = self.ram_budget
            s.vram_budget = self.vram_budget if self._budgeted() else 0
            s.reserved_ram = self._reserved["ram"]
            s.reserved_vram = self._reserved["vram"]
            return s

    # -- loading -------------------------------------------------------------------------

    def get(self, key: CacheKey, loader: Callable[[], Any], *, label: str = "") -> Any:
        """The cached object for ``key``, loading it with ``loader()`` on a miss (not locked)."""
        return self._get_entry(key, loader, label, pin=False).obj

    def _hit(self, key: CacheKey, pin: bool) -> _Entry | None:
        """The entry if cached (marked most recent, pinned if asked); call with the lock held."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            self._stats.hits += 1
            if pin:
                entry.locks += 1
        return entry

    def _get_entry(
        self, key: CacheKey, loader: Callable[[], Any], label: str, *, pin: bool
    ) -> _Entry:
        # Pinning happens under the same lock as the lookup or insertion, so nothing can
        # evict the entry between "found/loaded" and "locked".
        with self._lock:
            entry = self._hit(key, pin)
            if entry is not None:
                return entry
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:  # one load per key; other threads wait and then hit
            with self._lock:
                entry = self._hit(key, pin)
                if entry is not None:
                    return entry
                self._stats.misses += 1
            try:
                return self._load(key, loader, label or _label(key), pin)
            finally:
                with self._lock:
                    self._loading.pop(key, None)

    def _load(self, key: CacheKey, loader: Callable[[], Any], label: str, pin: bool) -> _Entry:
        self._emit("model_load_started", key=key[0], submodel=key[1], label=label)
        t0 = time.perf_counter()
        try:
            obj = loader()
        except ModelError:
            with self._lock:
                self._stats.load_errors += 1
            raise
        except Exception as e:
            with self._lock:
                self._stats.load_errors += 1
            raise ModelLoadError(f"loading {label} failed: {type(e).__name__}: {e}") from e
        if key[1] == "unet":
            obj = self._speed_ups(obj)
        seconds = time.perf_counter() - t0
        size = object_size(obj)
        entry = _Entry(key=key, obj=obj, size=size, label=label, locks=1 if pin else 0)
        with self._lock:
            self._make_room_in_ram(size)
            self._entries[key] = entry
            self._stats.loads += 1
            self._stats.load_seconds += seconds
            self._stats.last_loads = [*self._stats.last_loads[-19:], (label, seconds)]
        self._emit(
            "model_load_complete",
            key=key[0],
            submodel=key[1],
            label=label,
            seconds=seconds,
            bytes=size,
        )
        return entry

    def _speed_ups(self, unet: Any) -> Any:
        """channels_last memory layout and ``torch.compile``, when asked (off by default)."""
        torch = sys.modules.get("torch")
        if torch is None or not isinstance(unet, torch.nn.Module):
            return unet
        if self.channels_last:
            unet.to(memory_format=torch.channels_last)
        if self.compile:
            options = self.compile if isinstance(self.compile, dict) else {}
            unet.compile(**options)  # in place: the UNet keeps its class and config
        return unet

    def _make_room_in_ram(self, needed: int) -> None:
        """Evict unlocked entries, least recently used first, until ``needed`` bytes fit."""
        for key in list(self._entries):
            if self._bytes_on(vram=False) + needed <= self.ram_budget:
                return
            entry = self._entries[key]
            if entry.locks:
                continue
            self._offload(entry)
            del self._entries[key]
            self._stats.evictions += 1
            log.info("evicted %s (%d bytes) from the model cache", entry.label, entry.size)
            self._emit("model_evicted", **_about(entry), bytes=entry.size)
        if self._bytes_on(vram=False) + needed > self.ram_budget:
            log.warning(
                "model cache over its RAM budget (%d bytes): the rest is locked or too big",
                self.ram_budget,
            )

    # -- locking and devices -------------------------------------------------------------

    @contextmanager
    def lock(self, key: CacheKey, loader: Callable[[], Any], *, label: str = "") -> Iterator[Any]:
        """Load if needed, pin the entry and yield it on the execution device."""
        entry = self._get_entry(key, loader, label, pin=True)
        with self._lock:
            try:
                self._to_execution_device(entry)
            except Exception:
                entry.locks -= 1
                raise
        try:
            yield entry.obj
        finally:
            with self._lock:
                entry.locks -= 1

    def _to_execution_device(self, entry: _Entry) -> None:
        if entry.vram or entry.partial or entry.size == 0 or not self._budgeted():
            return
        import torch

        device = self.device
        if not isinstance(entry.obj, torch.nn.Module):
            if not hasattr(entry.obj, "to") or device == "cpu":
                return  # state dicts, tokenizers: users move what they need
            if entry.size > self.vram_budget:
                raise ModelLoadError(
                    f"{entry.label} ({entry.size} bytes) is larger than the VRAM budget "
                    f"({self.vram_budget} bytes) and cannot be loaded partly"
                )
            self._make_room_in_vram(entry.size)
            entry.obj = self._mover(entry.obj, device)
            entry.vram = entry.size
            return
        self._make_room_in_vram(entry.size)
        room = max(self.vram_budget - self._vram_held(), 0)
        if entry.placement is None:
            from invoke_nb.models.placement import Placement

            entry.placement = Placement(entry.obj, pin=device.startswith("cuda"))
        entry.vram = entry.placement.load(device, room)
        if entry.placement.partial:
            self._stats.partial_loads += 1
            self._emit(
                "model_partially_loaded", **_about(entry), device_bytes=entry.vram, bytes=entry.size
            )
            log.info(
                "%s loaded partly: %d of %d bytes on %s, the rest streams from RAM",
                entry.label,
                entry.vram,
                entry.size,
                device,
            )

    def _make_room_in_vram(self, needed: int) -> None:
        """Offload unlocked entries, least recently used first, until ``needed`` fits."""
        freed = False
        for key in list(self._entries):
            if self._vram_held() + needed <= self.vram_budget:
                break
            entry = self._entries[key]
            if entry.locks or not (entry.vram or entry.partial):
                continue
            held = entry.vram
            self._offload(entry)
            self._stats.offloads += 1
            freed = True
            log.info("offloaded %s (%d device bytes) to make room", entry.label, held)
            self._emit("model_offloaded", **_about(entry), device_bytes=held, needed=needed)
        if freed:
            empty_cache(self.device)

    def _offload(self, entry: _Entry) -> None:
        """Back to RAM: the module points at its CPU tensors again (no copy)."""
        if entry.placement is not None:
            entry.placement.offload()
        elif entry.vram:
            entry.obj = self._mover(entry.obj, "cpu")
        entry.vram = 0

    @contextmanager
    def reserve(self, ram: int = 0, vram: int = 0, *, label: str = "") -> Iterator[None]:
        """Count ``ram``/``vram`` extra bytes against the budgets inside the block.

        Why: memory a node holds beside a cached model (a LoRA patch's saved originals in RAM,
        its deltas on the device) is otherwise invisible to the budgets, so the cache would
        keep other models that no longer fit. Unlocked entries are evicted (RAM) or
        offloaded (VRAM) first, least recently used first; on exit, error or not, the
        figures return to what they were."""
        ram, vram = max(int(ram), 0), max(int(vram), 0)
        with self._lock:
            if ram:
                self._make_room_in_ram(ram)
            if vram and self._budgeted():
                self._make_room_in_vram(vram)
            else:
                vram = 0  # an unbudgeted CPU cache has no device budget to count against
            self._reserved["ram"] += ram
            self._reserved["vram"] += vram
        if ram or vram:
            log.debug("reserved %d RAM / %d VRAM bytes for %s", ram, vram, label or "a node")
        try:
            yield
        finally:
            with self._lock:
                self._reserved["ram"] -= ram
                self._reserved["vram"] -= vram

    # -- freeing -------------------------------------------------------------------------

    def drop(self, model_key: str) -> int:
        """Forget every unlocked submodel of ``model_key`` (after remove/update); returns count."""
        with self._lock:
            keys = [k for k, e in self._entries.items() if k[0] == model_key and not e.locks]
            for k in keys:
                self._offload(self._entries.pop(k))
        return len(keys)

    def clear(self) -> int:
        """Drop every unlocked entry and give the memory back to the OS; returns how many."""
        with self._lock:
            keys = [k for k, e in self._entries.items() if not e.locks]
            for k in keys:
                self._offload(self._entries.pop(k))
        release_memory()
        empty_cache(self.device)
        return len(keys)


def _about(entry: _Entry) -> dict[str, Any]:
    return {"key": entry.key[0], "submodel": entry.key[1], "label": entry.label}


def _label(key: CacheKey) -> str:
    return f"{key[0]}:{key[1]}" if key[1] else key[0]


_SINGLETON: ModelCache | None = None
_SINGLETON_LOCK = threading.Lock()


def get_model_cache() -> ModelCache:
    """The process-wide cache (created on first use with budgets from the machine)."""
    global _SINGLETON
    with _SINGLETON_LOCK:
        if _SINGLETON is None:
            _SINGLETON = ModelCache()
        return _SINGLETON
