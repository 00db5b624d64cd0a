"""Model cache benchmark: cold load vs warm hit, switching under a one-model budget, RSS after clear.

Builds SD1-shaped diffusers folders (the tiny test model with a wider UNet, ``--channels``
sets its first block width; 320 is real SD1.5 size), installs them through the real
:class:`ModelManager`, and measures:

1. cold load of every submodel (unet, text encoder, vae, tokenizer, scheduler) vs a warm
   hit of the same (target: warm <= 1% of cold);
2. alternating two models under a RAM budget that holds only one, vs one that holds both;
3. RSS before the load, after it, and after ``cache.clear()`` (target: within 10% of before).

    .venv/bin/python benchmarks/model_cache.py [--channels 128] [--rounds 4]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from invoke_nb.models.cache import ModelCache
from invoke_nb.models.manager import ModelManager
from invoke_nb.models.memory import release_memory, rss_bytes
from invoke_nb.models.records import MemoryModelRecordStore

SUBMODELS = ("unet", "text_encoder", "vae", "tokenizer", "scheduler")
MB = 1024 * 1024


def build_model(dest: Path, channels: int, seed: int) -> Path:
    """The tiny SD1 folder with its UNet replaced by a 4-level SD1-layout UNet of ``channels``."""
    from diffusers import UNet2DConditionModel

    from invoke_nb.testing.tiny_models import make_sd1

    if (dest / "done").exists():
        return dest
    make_sd1(dest, seed=seed)
    widths = [channels, channels * 2, channels * 4, channels * 4]
    config = {
        "sample_size": 64,
        "in_channels": 4,
        "out_channels": 4,
        "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
        "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
        "block_out_channels": widths,
        "layers_per_block": 2,
        "attention_head_dim": 8,
        "norm_num_groups": 32,
        "cross_attention_dim": 768,
    }
    torch.manual_seed(seed)
    shutil.rmtree(dest / "unet")
    UNet2DConditionModel(**config).save_pretrained(dest / "unet", safe_serialization=True)
    (dest / "done").write_text("ok")
    return dest


def load_all(manager: ModelManager, key: str) -> float:
    t0 = time.perf_counter()
    for sub in SUBMODELS:
        with manager.load(key, sub):
            pass
    return time.perf_counter() - t0


def touch(manager: ModelManager, key: str) -> None:
    """Read every weight once, as a run would: mmap-loaded tensors become resident."""
    for sub in ("unet", "text_encoder", "vae"):
        with manager.load(key, sub) as module, torch.no_grad():
            for p in module.parameters():
                p.sum()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--channels", type=int, default=128, help="UNet first block width (SD1.5: 320)")
    ap.add_argument("--rounds", type=int, default=4, help="switches between the two models")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "invoke-nb-bench")
    args = ap.parse_args()
    torch.set_num_threads(1)

    work = args.work / f"c{args.channels}"
    a = build_model(work / "model-a", args.channels, seed=1)
    b = build_model(work / "model-b", args.channels, seed=2)
    models = Path(tempfile.mkdtemp(prefix="models-"))
    store = MemoryModelRecordStore()

    # Warm up imports (diffusers/transformers code paths) on a throwaway cache first so the
    # RSS baseline counts libraries, not the model.
    warm = ModelManager(models, store, ModelCache(ram_bytes=8 * 1024 * MB, device="cpu"))
    rec_a = warm.install(a, name="a", in_place=True)
    rec_b = warm.install(b, name="b", in_place=True)
    load_all(warm, rec_b.key)
    touch(warm, rec_b.key)
    warm.cache.clear()
    del warm
    release_memory()

    # 1. cold vs warm, and RSS
    cache = ModelCache(ram_bytes=8 * 1024 * MB, device="cpu")
    manager = ModelManager(models, store, cache)
    rss_before = rss_bytes()
    cold = load_all(manager, rec_a.key)
    size = cache.stats().bytes_ram
    touch(manager, rec_a.key)
    rss_loaded = rss_bytes()
    warm_times = [load_all(manager, rec_a.key) for _ in range(50)]
    warm_t = statistics.median(warm_times)
    cache.clear()
    rss_after = rss_bytes()

    # 2. switching under a budget that holds one model, vs one that holds both
    def switching(budget: int) -> dict[str, float]:
        c = ModelCache(ram_bytes=budget, device="cpu")
        m = ModelManager(models, store, c)
        times = []
        for i in range(args.rounds * 2):
            times.append(load_all(m, (rec_a if i % 2 == 0 else rec_b).key))
        s = c.stats()
        c.clear()
        return {
            "per_switch_s": statistics.median(times[2:]) if len(times) > 2 else times[-1],
            "loads": s.loads,
            "evictions": s.evictions,
            "entries_at_end": s.entries,
        }

    one = switching(int(size * 1.3))
    both = switching(int(size * 2.6))

    result = {
        "model_bytes": size,
        "cold_load_s": round(cold, 4),
        "warm_hit_s": round(warm_t, 6),
        "warm_over_cold_pct": round(100 * warm_t / cold, 4),
        "switch_budget_one_model": one,
        "switch_budget_two_models": both,
        "rss_before_mb": round(rss_before / MB, 1),
        "rss_loaded_mb": round(rss_loaded / MB, 1),
        "rss_after_clear_mb": round(rss_after / MB, 1),
        "rss_after_vs_before_pct": round(100 * (rss_after - rss_before) / rss_before, 2),
    }
    print(json.dumps(result, indent=2))
    ok_ratio = result["warm_over_cold_pct"] <= 1.0
    ok_rss = rss_after <= rss_before * 1.10
    print(
        f"warm <= 1% of cold: {'yes' if ok_ratio else 'NO'}; "
        f"RSS after clear within 10%: {'yes' if ok_rss else 'NO'}"
    )
    shutil.rmtree(models, ignore_errors=True)


if __name__ == "__main__":
    main()
