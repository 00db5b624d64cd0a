"""The model cache: LRU under a RAM budget, pinning, stats, errors, devices, freeing memory."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

from invoke_nb.models.cache import ModelCache, get_model_cache, object_size
from invoke_nb.models.errors import ModelLoadError
from invoke_nb.models.memory import cgroup_memory_limit

MB = 1024 * 1024


def module_of(nbytes: int) -> torch.nn.Module:
    """A module holding ``nbytes`` of float32 parameters."""
    m = torch.nn.Module()
    m.w = torch.nn.Parameter(torch.zeros(nbytes // 4))
    return m


def loader(nbytes: int, calls: list[str] | None = None, name: str = ""):
    def load() -> torch.nn.Module:
        if calls is not None:
            calls.append(name)
        return module_of(nbytes)

    return load


def test_object_size_counts_parameters_buffers_once() -> None:
    lin = torch.nn.Linear(10, 10)
    assert object_size(lin) == (100 + 10) * 4
    shared = torch.nn.Sequential(lin, lin)
    assert object_size(shared) == (100 + 10) * 4
    assert object_size({"a": torch.zeros(8), "b": torch.zeros(2)}) == 40
    assert object_size("a tokenizer") == 0


def test_hit_after_miss_and_stats() -> None:
    cache = ModelCache(ram_bytes=10 * MB, device="cpu")
    calls: list[str] = []
    a = cache.get(("k", "unet"), loader(MB, calls, "a"))
    b = cache.get(("k", "unet"), loader(MB, calls, "a"))
    assert a is b and calls == ["a"]
    s = cache.stats()
    assert (s.hits, s.misses, s.loads, s.entries) == (1, 1, 1, 1)
    assert s.bytes_ram == MB and s.bytes_vram == 0 and s.load_seconds > 0
    assert s.as_dict()["ram_budget"] == 10 * MB


def test_lru_eviction_order_under_budget() -> None:
    cache = ModelCache(ram_bytes=3 * MB, device="cpu")
    for name in "abc":
        cache.get((name, None), loader(MB))
    cache.get(("a", None), loader(MB))  # a is now the most recent
    cache.get(("d", None), loader(MB))  # evicts b, the least recently used
    assert cache.keys() == [("c", None), ("a", None), ("d", None)]
    cache.get(("e", None), loader(2 * MB))  # needs two slots: c then a go
    assert cache.keys() == [("d", None), ("e", None)]
    assert cache.stats().evictions == 3
    assert cache.stats().bytes_ram <= 3 * MB


def test_locked_model_is_never_evicted() -> None:
    cache = ModelCache(ram_bytes=2 * MB, device="cpu")
    with cache.lock(("held", "unet"), loader(MB)) as held:
        for i in range(5):
            cache.get((f"other{i}", None), loader(MB))
            assert ("held", "unet") in cache
        assert cache.stats().locked == 1
        # a model bigger than the budget still loads while the held one stays
        cache.get(("big", None), loader(3 * MB))
        assert ("held", "unet") in cache
        assert cache.clear() >= 1
        assert cache.keys() == [("held", "unet")]
        assert isinstance(held, torch.nn.Module)
    assert cache.stats().locked == 0
    cache.get(("x", None), loader(2 * MB))
    assert ("held", "unet") not in cache


def test_load_error_is_specific_and_leaves_cache_consistent() -> None:
    cache = ModelCache(ram_bytes=10 * MB, device="cpu")
    cache.get(("ok", None), loader(MB))

    def broken() -> None:
        raise OSError("unexpected end of file")

    with (
        pytest.raises(ModelLoadError, match=r"bad:unet.*unexpected end of file"),
        cache.lock(("bad", "unet"), broken),
    ):
        pass
    assert cache.keys() == [("ok", None)]
    s = cache.stats()
    assert s.load_errors == 1 and s.locked == 0 and s.loads == 1
    # the key can be loaded later once the problem is fixed
    cache.get(("bad", "unet"), loader(MB))
    assert ("bad", "unet") in cache


def test_events_and_concurrent_single_load() -> None:
    events: list[tuple[str, dict]] = []
    cache = ModelCache(ram_bytes=10 * MB, device="cpu", on_event=lambda k, p: events.append((k, p)))
    calls: list[str] = []
    gate = threading.Event()

    def slow() -> torch.nn.Module:
        calls.append("x")
        gate.wait(5)
        return module_of(MB)

    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get(("m", "vae"), slow)))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert calls == ["x"] and len({id(r) for r in results}) == 1
    kinds = [k for k, _ in events]
    assert kinds == ["model_load_started", "model_load_complete"]
    assert events[1][1]["bytes"] == MB and events[1][1]["submodel"] == "vae"


def test_drop_forgets_all_submodels_of_a_model() -> None:
    cache = ModelCache(ram_bytes=10 * MB, device="cpu")
    for sub in ("unet", "vae", "text_encoder"):
        cache.get(("m1", sub), loader(MB))
    cache.get(("m2", "unet"), loader(MB))
    assert cache.drop("m1") == 3
    assert cache.keys() == [("m2", "unet")]


def test_vram_offloads_unlocked_models_when_room_is_needed() -> None:
    """The device budget enforced on a CPU cache (no GPU on the test machines)."""
    cache = ModelCache(ram_bytes=100 * MB, vram_bytes=3 * MB, device="cpu")
    with cache.lock(("a", None), loader(2 * MB)):
        assert cache.stats().bytes_vram == 2 * MB
    with cache.lock(("b", None), loader(2 * MB)):  # a (unlocked) goes back to RAM first
        s = cache.stats()
        assert s.bytes_vram == 2 * MB and s.bytes_ram == 4 * MB and s.offloads == 1
    with cache.lock(("b", None), loader(2 * MB)):  # already there: no move
        pass
    assert cache.stats().offloads == 1
    with cache.lock(("small", None), loader(MB)):  # fits beside b
        pass
    assert cache.stats().bytes_vram == 3 * MB


class Movable:
    """Something with tensors and ``.to`` that is neither a module nor a pipeline."""

    def __init__(self) -> None:
        self.weights = [torch.zeros(MB)]

    def to(self, device: str) -> Movable:
        return self


def test_model_bigger_than_vram_that_cannot_stream_is_a_clear_error() -> None:
    cache = ModelCache(ram_bytes=100 * MB, vram_bytes=MB, device="cuda", mover=lambda o, d: o)
    with (
        pytest.raises(ModelLoadError, match="larger than the VRAM budget"),
        cache.lock(("huge", None), lambda: Movable()),
    ):
        pass
    assert cache.stats().locked == 0
    # a plain state dict has no .to: it stays in RAM and is handed out as is
    with cache.lock(("lora", None), lambda: {"w": torch.zeros(MB)}) as sd:
        assert sd["w"].device.type == "cpu"
    assert cache.stats().bytes_vram == 0


def test_module_bigger_than_vram_is_loaded_partly_and_still_computes() -> None:
    """Layers beyond the room wait on meta and stream in for each call."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.Linear(256, 256))
    x = torch.randn(2, 256)
    expected = net(x)
    layer = 256 * 256 * 4 + 256 * 4
    cache = ModelCache(ram_bytes=100 * MB, vram_bytes=layer + 10, device="cpu")
    with cache.lock(("big", "unet"), lambda: net) as m:
        assert m[0].weight.device.type == "cpu"  # the first layer fits
        assert m[1].weight.device.type == "meta"  # the second streams
        torch.testing.assert_close(m(x), expected)
        assert m[1].weight.device.type == "meta"
    s = cache.stats()
    assert s.partial_loads == 1 and s.bytes_vram == layer
    with cache.lock(("other", None), loader(layer)):  # the partial model makes room
        assert m[1].weight.device.type == "cpu" and not m[1]._forward_pre_hooks
    assert cache.stats().offloads == 1


def test_device_budget_comes_from_free_memory_less_working_memory(monkeypatch) -> None:
    from invoke_nb.models import cache as cache_mod

    monkeypatch.setattr(cache_mod, "device_memory", lambda device: (10 * MB, 16 * MB))
    cache = ModelCache(ram_bytes=100 * MB, device="cuda", working_memory=3 * MB)
    assert cache.vram_budget == 7 * MB
    half = ModelCache(ram_bytes=100 * MB, device="cuda", working_memory=MB, device_fraction=0.5)
    assert half.vram_budget == 7 * MB  # half the card (8 MB) less the reserve


def test_singleton_is_shared() -> None:
    assert get_model_cache() is get_model_cache()


def test_cgroup_limits_are_respected(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    (root / "user" / "kernel").mkdir(parents=True)
    (root / "memory.max").write_text("max\n")
    (root / "user" / "memory.max").write_text(f"{4 * 1024**3}\n")
    (root / "user" / "kernel" / "memory.max").write_text("max\n")
    proc = tmp_path / "cgroup"
    proc.write_text("0::/user/kernel\n")
    assert cgroup_memory_limit(root, proc) == 4 * 1024**3
    (root / "memory").mkdir()
    (root / "memory" / "memory.limit_in_bytes").write_text(f"{2 * 1024**3}\n")
    assert cgroup_memory_limit(root, proc) == 2 * 1024**3
    proc.write_text("0::/\n")
    (root / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # v1 "none"
    assert cgroup_memory_limit(root, proc) is None


def test_clear_gives_memory_back() -> None:
    """clear() drops every entry and keeps no reference: the modules are freed (their
    weakrefs die), so the memory is the allocator's again. Process RSS is left to
    benchmarks/model_cache.py: it depends on the allocator and on what else runs."""
    import gc
    import weakref

    cache = ModelCache(ram_bytes=2000 * MB, device="cpu")
    refs = []
    for i in range(4):
        m = cache.get((f"m{i}", None), lambda: module_of(64 * MB))
        m.w.data.fill_(1.0)
        refs.append((weakref.ref(m), weakref.ref(m.w)))
    del m
    assert len(cache.keys()) == 4
    assert cache.stats().bytes_ram >= 4 * 64 * MB  # every module's weights are accounted
    gc.collect()
    assert all(r() is not None for pair in refs for r in pair)  # the cache holds them
    assert cache.clear() == 4
    gc.collect()
    assert [r() for pair in refs for r in pair] == [None] * 8  # nothing kept them alive
    assert cache.keys() == [] and cache.stats().bytes_ram == 0
