"""Single-file ControlNets (lllyasviel's v1.1 and v1.0 LDM key layouts, diffusers names in
one file, .safetensors or a scanned .pth) install with no config given: the base comes from
the keys, the config from the shapes (heads and norm groups from an installed model of that
base), and the loaded net gives the diffusers folder's outputs; in a graph, the same image."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import invoke_nb as inb
from invoke_nb.graph.standard import OUTPUT, txt2img
from invoke_nb.models.errors import ModelLoadError
from invoke_nb.models.loaders import load_submodel
from invoke_nb.models.local import identifier
from invoke_nb.models.manager import ModelManager
from invoke_nb.models.records import MemoryModelRecordStore
from invoke_nb.testing.tiny_control import make_controlnet_file

CASES = [
    ("sd-1", "ldm", ".safetensors"),
    ("sd-1", "ldm-v1.0", ".safetensors"),
    ("sd-1", "ldm", ".pth"),
    ("sd-1", "diffusers", ".safetensors"),
    ("sdxl", "ldm", ".safetensors"),
    ("sdxl", "diffusers", ".safetensors"),
]


@pytest.fixture(scope="module")
def manager(tmp_path_factory: pytest.TempPathFactory, tiny_sd1: Path, tiny_sdxl: Path) -> Any:
    m = ModelManager(tmp_path_factory.mktemp("cn-files"), MemoryModelRecordStore())
    m.install(str(tiny_sd1), name="tiny-sd1", in_place=True)  # the references for the heads
    m.install(str(tiny_sdxl), name="tiny-sdxl", in_place=True)
    return m


def _folder(cmodels: Any, base: str) -> Path:
    return Path(cmodels.store.list(name="cn-sd1-a" if base == "sd-1" else "cn-sdxl")[0].path)


def _outputs(net: Any, seed: int = 0) -> list[torch.Tensor]:
    cfg = net.config
    g = torch.Generator().manual_seed(seed)
    kw: dict[str, Any] = {}
    if cfg.addition_embed_type == "text_time":
        pooled = cfg.projection_class_embeddings_input_dim - 6 * cfg.addition_time_embed_dim
        kw["added_cond_kwargs"] = {
            "text_embeds": torch.randn(1, pooled, generator=g),
            "time_ids": torch.randn(1, 6, generator=g),
        }
    x = torch.randn(1, 4, 8, 8, generator=g)
    hint = torch.rand(1, 3, 64, 64, generator=g)
    text = torch.randn(1, 77, cfg.cross_attention_dim, generator=g)
    with torch.no_grad():
        down, mid = net(x, 10, text, hint, return_dict=False, **kw)
    return [*down, mid]


@pytest.mark.parametrize(("base", "layout", "suffix"), CASES)
def test_single_file_controlnet_installs_and_matches_its_folder(
    manager: Any, cmodels: Any, tmp_path: Path, base: str, layout: str, suffix: str
) -> None:
    from diffusers import ControlNetModel

    folder = _folder(cmodels, base)
    path = make_controlnet_file(tmp_path / f"cn-{layout}{suffix}", folder, layout=layout)
    rec = manager.install(str(path), name=f"{base}-{layout}{suffix}", allow_unsafe=True)
    assert (rec.type, rec.base, rec.format) == ("controlnet", base, "checkpoint")
    assert rec.config_path and (Path(rec.config_path) / "config.json").is_file()
    ours = _outputs(load_submodel(rec, None, dtype=torch.float32))
    ref = _outputs(ControlNetModel.from_pretrained(folder).eval())
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref, strict=True):
        assert a.shape == b.shape
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4), (a - b).abs().max()


def test_ldm_controlnet_file_in_a_graph_gives_the_folders_image(
    manager: Any, cmodels: Any, tmp_path: Path, control_image: Any
) -> None:
    folder = _folder(cmodels, "sd-1")
    file_rec = manager.install(
        str(make_controlnet_file(tmp_path / "control_v11p_sd15_tiny.safetensors", folder)),
        in_place=True,
    )
    folder_rec = manager.install(str(folder), name="cn-folder", in_place=True)
    runner = inb.Runner(services=inb.Services(models=manager))
    main = identifier(manager.list(name="tiny-sd1")[0])
    images = []
    for rec in (file_rec, folder_rec):
        g = txt2img(main, "a cat", width=64, height=64, steps=2, seed=3, scheduler="euler")
        cn = g.add("controlnet", control_model=identifier(rec), image=control_image)
        g.connect(cn, "control", "denoise_latents", "control")
        images.append(np.asarray(runner.run(g).image(OUTPUT).convert("RGB"), np.int16))
    assert np.abs(images[0] - images[1]).max() <= 1


def test_a_controlnet_file_missing_tensors_names_the_model(
    manager: Any, cmodels: Any, tmp_path: Path
) -> None:
    from safetensors.torch import load_file, save_file

    path = make_controlnet_file(tmp_path / "broken.safetensors", _folder(cmodels, "sd-1"))
    sd = load_file(str(path))
    save_file({k: v for k, v in sd.items() if not k.startswith("zero_convs.1.")}, str(path))
    rec = manager.install(str(path), name="broken-cn", in_place=True)
    with pytest.raises(ModelLoadError, match=r"broken-cn.*missing.*controlnet_down_blocks\.1"):
        load_submodel(rec, None, dtype=torch.float32)


REAL_CONFIGS = {  # the published configs of lllyasviel/control_v11p_sd15_canny and
    # diffusers/controlnet-canny-sdxl-1.0 (fields that differ from ControlNetModel's defaults)
    "sd-1": dict(
        block_out_channels=[320, 640, 1280, 1280],
        cross_attention_dim=768,
        attention_head_dim=8,
        conditioning_embedding_out_channels=[16, 32, 96, 256],
    ),
    "sdxl": dict(
        block_out_channels=[320, 640, 1280],
        down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        cross_attention_dim=2048,
        attention_head_dim=[5, 10, 20],
        transformer_layers_per_block=[1, 2, 10],
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=256,
        projection_class_embeddings_input_dim=2816,
        conditioning_embedding_out_channels=[16, 32, 96, 256],
    ),
}


@pytest.mark.parametrize("base", ["sd-1", "sdxl"])
def test_full_size_shapes_alone_give_the_published_config(base: str) -> None:
    """With no installed model to borrow from, SD's conventions fill what shapes hide: the
    config read off a full-size file's shapes (built on the meta device, no weights) is the
    published one."""
    from accelerate import init_empty_weights
    from diffusers import ControlNetModel

    from invoke_nb.models.controlnet_config import controlnet_config
    from invoke_nb.testing.ldm_keys import controlnet_to_ldm

    with init_empty_weights():
        published = ControlNetModel(**REAL_CONFIGS[base])
    cfg = dict(published.config)
    shapes = {k: tuple(v.shape) for k, v in controlnet_to_ldm(published.state_dict(), cfg).items()}
    with init_empty_weights():
        ours = ControlNetModel.from_config(controlnet_config(shapes, base)).config

    def public(c: Any) -> dict[str, Any]:  # tuples and lists alike, no bookkeeping fields
        return {k: v for k, v in json.loads(json.dumps(dict(c))).items() if k[0] != "_"}

    assert public(ours) == public(cfg)


def test_a_given_config_folder_is_used(manager: Any, cmodels: Any, tmp_path: Path) -> None:
    """``config=`` a ControlNet folder (the way to load files whose shapes mislead): its
    config.json is taken as it is; a folder without one is refused at load by name."""
    from diffusers import ControlNetModel

    folder = Path(cmodels.store.list(name="cn-sd1-b")[0].path)  # not installed by others
    path = make_controlnet_file(tmp_path / "given.safetensors", folder)
    rec = manager.install(str(path), name="given-config", config=str(folder), in_place=True)
    assert Path(rec.config_path) == folder.resolve()
    ours = _outputs(load_submodel(rec, None, dtype=torch.float32))
    ref = _outputs(ControlNetModel.from_pretrained(folder).eval())
    assert all(torch.allclose(a, b, atol=1e-4, rtol=1e-4) for a, b in zip(ours, ref, strict=True))
    empty = tmp_path / "empty-config"
    empty.mkdir()
    other = make_controlnet_file(tmp_path / "other.safetensors", folder, layout="diffusers")
    bad = manager.install(str(other), name="bad-config", config=str(empty), in_place=True)
    with pytest.raises(ModelLoadError, match=r"bad-config.*holds no ControlNetModel config"):
        load_submodel(bad, None, dtype=torch.float32)
