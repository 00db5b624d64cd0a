"""A LoRA patch's memory counts against the model cache's budgets while it is applied."""

from __future__ import annotations

import pytest
import torch

import invoke_nb as inb
from invoke_nb.graph.standard import txt2img
from invoke_nb.models.cache import ModelCache
from invoke_nb.nodes.diffusion.lora import patched

WIDTH = 128
ORIGINALS = WIDTH * WIDTH * 4  # the saved float32 weight of the one patched layer
RANK = 4
NET = ORIGINALS  # _net() holds exactly that one weight


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(WIDTH, WIDTH, bias=False))


def _lora() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {
        "unet.0.lora_A.weight": torch.randn(RANK, WIDTH, generator=g),
        "unet.0.lora_B.weight": torch.randn(WIDTH, RANK, generator=g),
    }


def _blob(nbytes: int) -> torch.nn.Module:
    m = torch.nn.Module()
    m.w = torch.nn.Parameter(torch.zeros(nbytes // 4))
    return m


def test_patch_counts_its_originals_and_delta_then_gives_them_back() -> None:
    cache = ModelCache(ram_bytes=1 << 30, vram_bytes=1 << 30, device="cpu")
    x = torch.randn(2, WIDTH)
    with cache.lock(("net", "unet"), _net) as net:
        before = cache.stats()
        plain_out = net(x)
        with patched(net, [(_lora(), 1.0)], "unet", cache=cache):
            during = cache.stats()
            cached_out = net(x)
        after = cache.stats()
    assert during.reserved_ram == ORIGINALS
    assert during.bytes_ram == before.bytes_ram + ORIGINALS
    # one layer's work on the device: the LoRA matrices, two float32 deltas, the cast copy
    assert during.reserved_vram == 2 * RANK * WIDTH * 4 + WIDTH * WIDTH * (8 + 4)
    assert during.bytes_vram == before.bytes_vram + during.reserved_vram
    assert (after.reserved_ram, after.reserved_vram) == (0, 0)
    assert (after.bytes_ram, after.bytes_vram) == (before.bytes_ram, before.bytes_vram)
    # the same patch without a cache gives the same numbers out
    with torch.no_grad(), patched(_net(), [(_lora(), 1.0)], "unet") as free:
        free_out = free(x)
    assert torch.allclose(cached_out, free_out, atol=1e-5)
    assert not torch.allclose(cached_out, plain_out, atol=1e-3)


def test_a_model_that_fits_beside_the_net_but_not_beside_the_patch_is_evicted() -> None:
    other = 2 * ORIGINALS
    cache = ModelCache(ram_bytes=NET + other + ORIGINALS // 2, device="cpu")
    cache.get(("other", None), lambda: _blob(other))
    with cache.lock(("net", "unet"), _net) as net:
        assert ("other", None) in cache  # both fit without the LoRA
        with patched(net, [(_lora(), 1.0)], "unet", cache=cache):
            assert ("other", None) not in cache
            s = cache.stats()
            assert s.evictions == 1 and s.bytes_ram == NET + ORIGINALS <= s.ram_budget
    assert cache.stats().bytes_ram == NET


def test_device_bytes_offload_other_models_and_come_back_on_error() -> None:
    other = 4 * ORIGINALS
    cache = ModelCache(ram_bytes=1 << 30, vram_bytes=NET + other + 1024, device="cpu")
    with cache.lock(("other", None), lambda: _blob(other)):
        pass  # placed on the device, then unlocked
    with cache.lock(("net", "unet"), _net) as net:
        held = cache.stats().bytes_vram
        assert held == NET + other
        with (
            pytest.raises(RuntimeError, match="boom"),
            patched(net, [(_lora(), 1.0)], "unet", cache=cache),
        ):
            s = cache.stats()
            assert s.offloads == 1 and s.bytes_vram == NET + s.reserved_vram
            assert s.bytes_vram <= s.vram_budget
            raise RuntimeError("boom")
        s = cache.stats()
        assert (s.reserved_ram, s.reserved_vram, s.bytes_vram) == (0, 0, NET)
        assert torch.equal(net[0].weight, _net()[0].weight)  # restored too


def test_denoise_and_prompt_nodes_reserve_through_the_cache(models, sd1, monkeypatch) -> None:
    from invoke_nb.nodes.types import identifier

    lora = identifier(models.store.list(name="tiny-lora")[0])
    cache = models.cache
    seen: list[tuple[int, int, str]] = []
    real = cache.reserve

    def recording(ram: int = 0, vram: int = 0, *, label: str = ""):
        seen.append((ram, vram, label))
        return real(ram, vram, label=label)

    monkeypatch.setattr(cache, "reserve", recording)
    runner = inb.Runner(services=inb.Services(models=models))
    runner.run(txt2img(sd1, "a cat", width=64, height=64, steps=2, seed=3, loras=[(lora, 1.0)]))
    labels = {label for _, _, label in seen}
    assert labels == {"LoRA patch of unet", "LoRA patch of text_encoder"}
    assert all(ram > 0 for ram, _, _ in seen)
    s = cache.stats()
    assert (s.reserved_ram, s.reserved_vram) == (0, 0)
