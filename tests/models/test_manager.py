"""The model manager with tiny real models: install from every kind of source, find, load."""

from __future__ import annotations

import os
import pickle
import shutil
import threading
from pathlib import Path

import pytest
import torch

from invoke_nb.models.cache import ModelCache
from invoke_nb.models.errors import (
    CorruptModelError,
    DownloadCancelledError,
    MissingComponentError,
    ModelInstallError,
    ModelLoadError,
    ModelNotFoundError,
    UnsafeModelError,
    WrongBaseError,
)
from invoke_nb.models.hashing import model_hash
from invoke_nb.models.manager import ModelManager
from invoke_nb.models.records import MemoryModelRecordStore

from .servers import FakeHub, FileServer, serving

MB = 1024 * 1024


@pytest.fixture
def cache() -> ModelCache:
    return ModelCache(ram_bytes=500 * MB, device="cpu")


@pytest.fixture
def manager(tmp_path: Path, cache: ModelCache) -> ModelManager:
    return ModelManager(tmp_path / "models", MemoryModelRecordStore(), cache)


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_install_diffusers_folder_copies_and_records(
    manager: ModelManager, sd1_folder: Path
) -> None:
    steps: list[tuple[str, int, int | None]] = []
    rec = manager.install(sd1_folder, name="tiny-sd1", progress=lambda *a: steps.append(a))
    assert steps == [
        ("hashing tiny-sd1", 1, 3),
        ("hashing tiny-sd1", 2, 3),
        ("hashing tiny-sd1", 3, 3),
    ]
    assert (rec.type, rec.base, rec.format, rec.variant) == ("main", "sd-1", "diffusers", "normal")
    assert rec.prediction_type == "epsilon" and rec.source_type == "path" and rec.owned
    assert rec.hash == model_hash(sd1_folder)
    dest = Path(rec.path)
    assert manager.models_dir in dest.parents and dest.is_dir()
    assert files_under(dest) == files_under(sd1_folder)
    assert rec.file_size == sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    assert manager.list(base="sd-1", type="main") == [rec]
    assert manager.get("tiny-sd1") == rec and manager.get(rec.key) == rec


def test_duplicate_install_returns_existing(
    manager: ModelManager, sd1_folder: Path, tmp_path: Path
) -> None:
    first = manager.install(sd1_folder, name="a")
    copy = tmp_path / "copy-of-sd1"
    shutil.copytree(sd1_folder, copy)
    again = manager.install(copy, name="b")
    assert again.key == first.key and again.name == "a"
    assert len(manager.list()) == 1
    assert len([p for p in (manager.models_dir / "sd-1" / "main").iterdir()]) == 1


def test_single_file_with_local_config_loads(
    manager: ModelManager, sd1_file: Path, sd1_folder: Path
) -> None:
    rec = manager.install(sd1_file, name="tiny-file", config=sd1_folder)
    assert (rec.type, rec.base, rec.format) == ("main", "sd-1", "checkpoint")
    assert rec.config_path == str(sd1_folder.resolve())
    assert Path(rec.path).name == sd1_file.name
    with manager.load({"key": rec.key}, "unet") as unet:
        assert type(unet).__name__ == "UNet2DConditionModel"
        assert unet.config.cross_attention_dim == 768
    with manager.load(rec.key, "scheduler") as sched:
        assert "num_train_timesteps" in sched


def test_config_overrides_and_bad_config(manager: ModelManager, tmp_path: Path) -> None:
    from invoke_nb.testing.tiny_models import make_vae

    vae = make_vae(tmp_path / "my-vae.safetensors", single_file=True)
    rec = manager.install(vae, config={"base": "sdxl", "description": "mine"})
    assert (rec.type, rec.base, rec.description) == ("vae", "sdxl", "mine")
    assert "sdxl/vae" in rec.path
    with pytest.raises(ModelInstallError, match="hash"):
        manager.install(vae, config={"hash": "x"})
    with pytest.raises(ModelInstallError, match="not a local diffusers folder"):
        manager.install(vae, config=tmp_path / "nowhere")


def test_in_place_install_and_remove_keep_user_files(manager: ModelManager, tmp_path: Path) -> None:
    from invoke_nb.testing.tiny_models import make_lora

    lora = make_lora(tmp_path / "shared" / "style.safetensors", base="sd-1", format="kohya")
    rec = manager.install(lora, in_place=True)
    assert rec.path == str(lora) and not rec.owned
    assert (rec.type, rec.base, rec.name) == ("lora", "sd-1", "style")
    manager.remove(rec.key)
    assert lora.exists() and manager.list() == []
    owned = manager.install(lora)
    assert Path(owned.path).exists() and owned.owned
    manager.remove(owned.key)
    assert not Path(owned.path).exists() and lora.exists()
    with pytest.raises(ModelNotFoundError):
        manager.get(owned.key)


def test_pickles_refused_unless_allowed_then_scanned(manager: ModelManager, tmp_path: Path) -> None:
    ckpt = tmp_path / "emb.pt"
    torch.save({"emb_params": torch.zeros(2, 768)}, ckpt)
    with pytest.raises(
        UnsafeModelError, match=r"emb\.pt is a pickle checkpoint.*allow_unsafe=True"
    ):
        manager.install(ckpt)
    assert manager.list() == [] and not any(manager.models_dir.rglob("*.pt"))
    rec = manager.install(ckpt, allow_unsafe=True)
    assert (rec.type, rec.base) == ("embedding", "sd-1")

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps({"state_dict": Evil()}))
    with pytest.raises(UnsafeModelError, match=r"evil\.ckpt.*dangerous.*system"):
        manager.install(evil, allow_unsafe=True)
    assert len(manager.list()) == 1


def test_truncated_safetensors_is_rejected_and_nothing_kept(
    manager: ModelManager, sd1_file: Path, tmp_path: Path
) -> None:
    cut = tmp_path / "cut.safetensors"
    data = sd1_file.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptModelError, match=r"cut\.safetensors: truncated"):
        manager.install(cut)
    assert manager.list() == [] and files_under(manager.models_dir) == []


def test_unknown_file_is_recorded_with_reason(manager: ModelManager, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    odd = tmp_path / "odd.safetensors"
    save_file({f"net.{i}.weight": torch.zeros(3, 3, 3, 3) for i in range(12)}, str(odd))
    rec = manager.install(odd)
    assert rec.type == "unknown" and "12 tensors" in (rec.unknown_reason or "")
    with pytest.raises(ModelNotFoundError, match="could not be identified"):
        manager.load(rec.key)


def test_url_install_with_progress_cancel_and_resume(
    manager: ModelManager, sd1_file: Path, sd1_folder: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(sd1_file, site / "tiny.safetensors")
    server = FileServer(site)
    with serving(server) as base:
        url = f"{base}/tiny.safetensors"
        cancel = threading.Event()
        seen: list[int] = []

        def stop_midway(message: str, done: int, total: int | None) -> None:
            seen.append(done)
            if done >= 4 * MB:
                cancel.set()

        with pytest.raises(DownloadCancelledError, match="resumes"):
            manager.install(url, progress=stop_midway, cancel=cancel)
        assert manager.list() == []
        partial = list((manager.models_dir / ".download").rglob("*.part"))
        assert len(partial) == 1 and partial[0].stat().st_size >= 4 * MB
        kept = partial[0].stat().st_size

        progress: list[tuple[int, int | None]] = []
        rec = manager.install(
            url,
            config={"config_path": str(sd1_folder)},
            progress=lambda m, d, t: (
                progress.append((d, t)) if m.startswith("downloading") else None
            ),
        )
        ranges = [r for (_m, _p, r) in server.requests if r]
        assert ranges == [f"bytes={kept}-"]  # resumed where the cancelled download stopped
        assert progress[-1] == (sd1_file.stat().st_size, sd1_file.stat().st_size)
        assert progress[0][0] > kept
    assert (rec.type, rec.base, rec.source_type, rec.source) == ("main", "sd-1", "url", url)
    assert rec.hash == model_hash(sd1_file)
    assert Path(rec.path).read_bytes() == sd1_file.read_bytes()
    assert not (manager.models_dir / ".download").exists() or not any(
        (manager.models_dir / ".download").iterdir()
    )


def test_url_errors_are_specific(manager: ModelManager, tmp_path: Path) -> None:
    from invoke_nb.models.errors import DownloadError

    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "model.ckpt").write_bytes(b"pickle")
    server = FileServer(tmp_path / "site")
    with serving(server) as base:
        with pytest.raises(DownloadError, match="HTTP 404"):
            manager.install(f"{base}/missing.safetensors")
        with pytest.raises(UnsafeModelError, match="allow_unsafe=True"):
            manager.install(f"{base}/model.ckpt")
    assert [p for (_m, p, _r) in server.requests] == ["/missing.safetensors"]  # no pickle fetched
    with pytest.raises(ModelInstallError, match="not an existing file"):
        manager.install("./no/such/file.safetensors")


def test_hf_repo_install_through_fake_hub(
    manager: ModelManager, sd1_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(sd1_folder, repo)
    # a variant and a pickle twin that must not be fetched
    shutil.copy(
        repo / "vae" / "diffusion_pytorch_model.safetensors",
        repo / "vae" / "diffusion_pytorch_model.bin",
    )
    (repo / "README.md").write_text("tiny")
    hub = FakeHub({"tiny-org/tiny-sd1": repo})
    with serving(hub) as url:
        monkeypatch.setenv("HF_ENDPOINT", url)
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        rec = manager.install("tiny-org/tiny-sd1")
        vae = manager.install("tiny-org/tiny-sd1::vae", name="tiny-vae")
        with pytest.raises(ModelInstallError, match="not found"):
            manager.install("tiny-org/nothing-here")
        stop = threading.Event()
        stop.set()
        with pytest.raises(DownloadCancelledError, match="tiny-org/tiny-sd1"):
            manager.install("tiny-org/tiny-sd1:fp16", cancel=stop)
    assert (rec.type, rec.base, rec.source_type, rec.name) == (
        "main",
        "sd-1",
        "hf_repo_id",
        "tiny-sd1",
    )
    assert rec.hash == model_hash(sd1_folder)
    assert files_under(Path(rec.path)) == files_under(sd1_folder)
    assert (vae.type, vae.format, vae.name) == ("vae", "diffusers", "tiny-vae")
    assert files_under(Path(vae.path)) == ["config.json", "diffusion_pytorch_model.safetensors"]
    fetched = [p for (m, p, _r) in hub.requests if m == "GET" and "/resolve/" in p]
    assert not any(p.endswith((".bin", "README.md")) for p in fetched)


def test_scan_folder_reports_each_path(
    manager: ModelManager, sd1_folder: Path, tmp_path: Path
) -> None:
    from invoke_nb.testing.tiny_models import make_lora

    lib = tmp_path / "library"
    shutil.copytree(sd1_folder, lib / "checkpoints" / "tiny-sd1")
    make_lora(lib / "loras" / "a.safetensors")
    shutil.copy(lib / "loras" / "a.safetensors", lib / "loras" / "a-copy.safetensors")
    (lib / "broken.safetensors").write_bytes(b"nope")
    torch.save({"x": torch.zeros(1)}, lib / "old.ckpt")
    (lib / "notes.txt").write_text("not a model")
    report = manager.scan_folder(lib)
    status = {Path(o.path).name: o.status for o in report.outcomes}
    assert status == {
        "broken.safetensors": "error",
        "tiny-sd1": "installed",
        "a-copy.safetensors": "installed",
        "a.safetensors": "duplicate",
        "old.ckpt": "error",
    }
    errors = {Path(o.path).name: o.message for o in report.by_status("error")}
    assert "CorruptModelError" in errors["broken.safetensors"]
    assert "UnsafeModelError" in errors["old.ckpt"]
    assert len(manager.list()) == 2 and all(not r.owned for r in manager.list())
    assert "duplicate" in str(report)


def test_find_by_key_hash_then_name_and_base(manager: ModelManager, sd1_folder: Path) -> None:
    rec = manager.install(sd1_folder, name="tiny-sd1")
    assert (
        manager.find({"key": "gone", "hash": rec.hash, "name": "x", "base": "sd-1", "type": "main"})
        == rec
    )
    assert (
        manager.find({"key": "gone", "hash": "blake3:00", "name": "tiny-sd1", "base": "sd-1"})
        == rec
    )
    from invoke_nb.nodes.types import ModelIdentifierField

    ident = ModelIdentifierField(
        key="zz", hash="blake3:ff", name="tiny-sd1", base="sd-1", type="main"
    )
    assert manager.record(ident) == rec
    with pytest.raises(ModelNotFoundError, match=r"name='tiny-sd1', base='sdxl'"):
        manager.find({"key": "gone", "hash": "blake3:00", "name": "tiny-sd1", "base": "sdxl"})
    with pytest.raises(WrongBaseError, match=r"tiny-sd1.*sd-1; sdxl needed"):
        manager.check_base(rec, "sdxl")


def test_update_fields(manager: ModelManager, sd1_folder: Path) -> None:
    rec = manager.install(sd1_folder)
    new = manager.update(
        rec.key,
        name="renamed",
        description="d",
        default_settings={"steps": 4},
        trigger_phrases=["tiny style"],
    )
    assert (new.name, new.description, new.default_settings, new.trigger_phrases) == (
        "renamed",
        "d",
        {"steps": 4},
        ["tiny style"],
    )
    assert manager.get("renamed").key == rec.key and new.updated_at >= rec.updated_at


def test_load_uses_cache_and_survives_a_new_manager(
    manager: ModelManager, cache: ModelCache, sd1_folder: Path, tmp_path: Path
) -> None:
    rec = manager.install(sd1_folder, in_place=True)
    with manager.load(rec.key, "vae") as vae:
        first = vae
    with manager.load(rec.key, "vae") as vae:
        assert vae is first
    assert (cache.stats().misses, cache.stats().hits) == (1, 1)
    # a new manager (a new Studio) over the same store and the process cache: no reload
    other = ModelManager(tmp_path / "models", manager.store, cache)
    with other.load({"key": rec.key, "submodel_type": "vae"}) as vae:
        assert vae is first
    assert cache.stats().loads == 1


def test_missing_component_and_files_gone(
    manager: ModelManager, cache: ModelCache, sd1_folder: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "partial"
    shutil.copytree(sd1_folder, folder)
    shutil.rmtree(folder / "vae")
    rec = manager.install(folder, in_place=True)
    assert rec.extra.get("missing_components") == ["vae"]
    with (
        pytest.raises(MissingComponentError, match="no 'vae' folder"),
        manager.load(rec.key, "vae"),
    ):
        pass
    with manager.load(rec.key, "scheduler") as sched:
        assert sched
    shutil.rmtree(folder)
    manager.cache.clear()
    with pytest.raises(ModelLoadError, match="files are gone"), manager.load(rec.key, "unet"):
        pass
    assert cache.stats().locked == 0 and cache.keys() == []


def test_file_damaged_after_install_gives_corrupt_error(
    manager: ModelManager, sd1_file: Path, sd1_folder: Path, tmp_path: Path
) -> None:
    own = tmp_path / "own.safetensors"
    shutil.copy(sd1_file, own)  # installs hard-link: damage a private copy, not the fixture
    rec = manager.install(own, config=sd1_folder)
    path = Path(rec.path)
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 3)
    with pytest.raises(CorruptModelError, match="truncated"), manager.load(rec.key, "unet"):
        pass
    assert manager.cache.keys() == []


def test_repo_file_selection_variant_subfolder_and_safetensors() -> None:
    from invoke_nb.models.install import _select_files, parse_source

    files = [
        "model_index.json",
        "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors",
        "unet/diffusion_pytorch_model.fp16.safetensors",
        "unet/diffusion_pytorch_model.bin",
        "vae/diffusion_pytorch_model.bin",
        "vae/diffusion_flax_model.msgpack",
        "text_encoder/model.fp16.safetensors",
        "text_encoder/model.safetensors",
        "README.md",
    ]
    assert _select_files(files, "fp16", None) == [
        "model_index.json",
        "text_encoder/model.fp16.safetensors",
        "unet/config.json",
        "unet/diffusion_pytorch_model.fp16.safetensors",
        "vae/diffusion_pytorch_model.bin",
    ]
    assert _select_files(files, None, "unet") == [
        "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors",
    ]
    src = parse_source("org/model.v2:fp16::unet")
    assert (src.kind, src.value, src.variant, src.subfolder) == (
        "hf_repo_id",
        "org/model.v2",
        "fp16",
        "unet",
    )
    assert parse_source("https://x.org/a.safetensors").kind == "url"


def test_managers_share_the_process_cache_by_default(sd1_folder: Path, tmp_path: Path) -> None:
    from invoke_nb.models.cache import get_model_cache

    store = MemoryModelRecordStore()
    first = ModelManager(tmp_path / "m", store)
    rec = first.install(sd1_folder, in_place=True)
    events: list[str] = []
    listener = lambda kind, payload: events.append(f"{kind}:{payload['submodel']}")  # noqa: E731
    first.cache.add_listener(listener)
    try:
        with first.load(rec.key, "tokenizer") as tok:
            loaded = tok
        second = ModelManager(tmp_path / "m", store)  # e.g. a new Studio in the same kernel
        assert second.cache is first.cache is get_model_cache()
        with second.load(rec.key, "tokenizer") as tok:
            assert tok is loaded
        assert events == ["model_load_started:tokenizer", "model_load_complete:tokenizer"]
    finally:
        first.cache.remove_listener(listener)
        first.cache.drop(rec.key)


def test_txt2img_graph_runs_through_the_manager_and_reuses_the_cache(
    manager: ModelManager, cache: ModelCache, sd1_folder: Path
) -> None:
    """The real graph runner with ``Services(models=manager)``: a new seed loads nothing."""
    import numpy as np

    import invoke_nb as inb
    from invoke_nb.graph.standard import OUTPUT, txt2img

    rec = manager.install(sd1_folder, name="tiny-sd1", in_place=True)
    runner = inb.Runner(services=inb.Services(models=manager))
    first = runner.run(txt2img(rec, "a red car", width=64, height=64, steps=2, seed=1))
    loads = cache.stats().loads
    assert loads >= 4  # unet, vae, text encoder, tokenizer (and the scheduler config)
    second = inb.Runner(services=inb.Services(models=manager)).run(
        txt2img(rec, "a red car", width=64, height=64, steps=2, seed=2)
    )
    s = cache.stats()
    assert s.loads == loads and s.hits > 0 and s.locked == 0
    a = np.asarray(first.image(OUTPUT).convert("RGB"), dtype=np.int16)
    b = np.asarray(second.image(OUTPUT).convert("RGB"), dtype=np.int16)
    assert a.shape == (64, 64, 3) and np.abs(a - b).max() > 0
