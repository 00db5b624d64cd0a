"""FLUX.2 single files: a BFL-layout Klein transformer and the FLUX.2 VAE checkpoint (BFL and
diffusers names) are identified, install, and compute what the diffusers folder computes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import invoke_nb as inb
from invoke_nb.graph.standard_flux2 import OUTPUT, txt2img
from invoke_nb.models.cache import ModelCache
from invoke_nb.models.errors import MissingComponentError
from invoke_nb.models.local import LocalModels, identifier
from invoke_nb.models.manager import ModelManager
from invoke_nb.models.probe import probe
from invoke_nb.models.records import MemoryModelRecordStore
from invoke_nb.testing.flux2_files import make_flux2_single_files


@pytest.fixture(scope="module")
def files(tiny_flux2: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_flux2_single_files(tiny_flux2, tmp_path_factory.mktemp("flux2-files"))


@pytest.fixture(scope="module")
def manager(tmp_path_factory: pytest.TempPathFactory) -> ModelManager:
    root = tmp_path_factory.mktemp("flux2-single-models")
    return ModelManager(root, MemoryModelRecordStore(), ModelCache(device="cpu"))


def test_single_files_are_identified(files: dict[str, Path]) -> None:
    found = probe(files["transformer"])
    assert (found.type, found.base, found.format, found.variant) == (
        "main",
        "flux2",
        "checkpoint",
        "klein_4b",
    )
    for name in ("vae", "vae_diffusers"):
        found = probe(files[name])
        assert (found.type, found.base, found.format) == ("vae", "flux2", "checkpoint"), name


def test_transformer_file_equals_the_folder(
    manager: ModelManager, files: dict[str, Path], tiny_flux2: Path
) -> None:
    from diffusers import Flux2Transformer2DModel

    rec = manager.install(files["transformer"], name="klein-file")
    ref = Flux2Transformer2DModel.from_pretrained(tiny_flux2 / "transformer").eval()
    g = torch.Generator().manual_seed(3)
    args = dict(
        hidden_states=torch.randn(1, 16, 128, generator=g),
        encoder_hidden_states=torch.randn(1, 6, ref.config.joint_attention_dim, generator=g),
        timestep=torch.tensor([0.7]),
        img_ids=torch.cat([torch.zeros(16, 1), torch.rand(16, 3, generator=g) * 4], 1)[None],
        txt_ids=torch.zeros(1, 6, 4),
        guidance=None,
        return_dict=False,
    )
    with manager.load(rec, "transformer") as ours, torch.no_grad():
        for key in ("patch_size", "num_layers", "mlp_ratio", "axes_dims_rope", "guidance_embeds"):
            assert list(np.atleast_1d(ours.config[key])) == list(np.atleast_1d(ref.config[key]))
        got = ours(**args)[0]
        want = ref(**args)[0]
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
    with pytest.raises(MissingComponentError, match=r"klein-file.*'vae'"), manager.load(rec, "vae"):
        pass


@pytest.mark.parametrize("name", ["vae", "vae_diffusers"])
def test_vae_file_equals_the_folder(
    manager: ModelManager, files: dict[str, Path], tiny_flux2: Path, name: str
) -> None:
    from diffusers import AutoencoderKLFlux2

    rec = manager.install(files[name], name=f"klein-{name}")
    ref = AutoencoderKLFlux2.from_pretrained(tiny_flux2 / "vae").eval()
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(5)) * 2 - 1
    with manager.load(rec) as ours, torch.no_grad():
        assert type(ours).__name__ == "AutoencoderKLFlux2"
        lat = ours.encode(image).latent_dist.mean
        torch.testing.assert_close(lat, ref.encode(image).latent_dist.mean, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(
            ours.decode(lat).sample, ref.decode(lat).sample, atol=1e-6, rtol=1e-5
        )
        torch.testing.assert_close(ours.bn.running_var, ref.bn.running_var)


def test_klein_graph_on_single_files_equals_the_folder(
    files: dict[str, Path], tiny_flux2: Path
) -> None:
    """A txt2img graph on the single-file transformer and VAE, the Qwen3 encoder from the
    folder (InvokeAI's Qwen3 Source model), makes the folder's picture."""
    m = LocalModels()
    folder = identifier(m.register(tiny_flux2, name="klein", base="flux2", type="main"))
    single = identifier(
        m.register(files["transformer"], name="klein-file", base="flux2", type="main")
    )
    vae = identifier(m.register(files["vae"], name="klein-vae-file", base="flux2", type="vae"))
    runner = inb.Runner(services=inb.Services(models=m))

    def run(model, **kw) -> np.ndarray:  # type: ignore[no-untyped-def]
        g = txt2img(model, "a red barn", width=64, height=64, steps=2, seed=4, **kw)
        return np.asarray(runner.run(g).image(OUTPUT)).astype(int)

    want = run(folder)
    got = run(single, vae=vae, qwen3_source=folder)
    assert np.abs(got - want).max() <= 1


def test_scaled_fp8_transformer_file_stays_near_the_folder(
    manager: ModelManager, files: dict[str, Path], tiny_flux2: Path
) -> None:
    """ComfyUI's scaled fp8 (float8 weights, a ``weight_scale`` each) is identified like the
    full file and dequantized at load; fp8 keeps ~2 significant digits."""
    from diffusers import Flux2Transformer2DModel

    found = probe(files["transformer_fp8"])
    assert (found.type, found.base, found.format) == ("main", "flux2", "checkpoint")
    rec = manager.install(files["transformer_fp8"], name="klein-fp8")
    ref = Flux2Transformer2DModel.from_pretrained(tiny_flux2 / "transformer").eval()
    g = torch.Generator().manual_seed(4)
    args = dict(
        hidden_states=torch.randn(1, 16, 128, generator=g),
        encoder_hidden_states=torch.randn(1, 6, ref.config.joint_attention_dim, generator=g),
        timestep=torch.tensor([0.5]), img_ids=torch.zeros(1, 16, 4),
        txt_ids=torch.zeros(1, 6, 4), guidance=None, return_dict=False,
    )  # fmt: skip
    with manager.load(rec, "transformer") as ours, torch.no_grad():
        w = ours.transformer_blocks[0].attn.to_q.weight
        w_ref = ref.transformer_blocks[0].attn.to_q.weight
        assert w.dtype == torch.float32 and 0 < (w - w_ref).abs().max() <= w_ref.abs().max() / 16
        got, want = ours(**args)[0], ref(**args)[0]
    err = ((got - want).norm() / want.norm()).item()
    assert err < 0.1, f"relative error {err:.3f}"
