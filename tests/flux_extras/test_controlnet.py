"""FLUX ControlNet (InstantX / diffusers layout): parity with FluxControlNetPipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from invoke_nb.graph import standard_flux
from invoke_nb.graph.errors import NodeError
from invoke_nb.models.probe import probe

PROMPT = "a house by the lake"


def _control_image() -> Image.Image:
    y, x = np.mgrid[0:64, 0:64]
    edges = (((x // 8) + (y // 8)) % 2) * 255
    return Image.fromarray(np.stack([edges] * 3, axis=-1).astype(np.uint8))


def _graph(extras, weight=0.8, end=1.0):
    g = standard_flux.txt2img(
        extras["dev"], PROMPT, width=64, height=64, steps=3, guidance=3.5, seed=21,
        seeding="diffusers", t5_encoder=extras["t5"], clip_embed=extras["clip"],
        vae=extras["vae"],
    )  # fmt: skip
    g.add(
        "flux_controlnet", id="cn", image=_control_image(), control_model=extras["controlnet"],
        control_weight=weight, end_step_percent=end,
    )  # fmt: skip
    g.connect("cn", "control", "flux_denoise", "control")
    return g


def test_probe_identifies_flux_controlnets(extras_paths, tmp_path: Path) -> None:
    found = probe(extras_paths["controlnet"])
    assert (found.type, found.base, found.format) == ("controlnet", "flux", "diffusers")
    xlabs = tmp_path / "xlabs.safetensors"
    save_file(
        {
            "input_hint_block.0.weight": torch.zeros(2, 3, 3, 3),
            "controlnet_blocks.0.weight": torch.zeros(4, 4),
            "double_blocks.0.img_attn.qkv.weight": torch.zeros(12, 4),
        },
        xlabs,
    )
    assert (probe(xlabs).type, probe(xlabs).base) == ("controlnet", "flux")
    instantx = tmp_path / "instantx.safetensors"
    save_file({"controlnet_x_embedder.weight": torch.zeros(4, 64)}, instantx)
    assert (probe(instantx).type, probe(instantx).base) == ("controlnet", "flux")


def test_controlnet_matches_flux_controlnet_pipeline(extras_runner, extras, extras_paths) -> None:
    from diffusers import FluxControlNetModel, FluxControlNetPipeline, FluxPipeline

    ours = np.asarray(extras_runner.run(_graph(extras)).image("l2i")).astype(int)
    base = FluxPipeline.from_pretrained(extras_paths["dev"])
    pipe = FluxControlNetPipeline(
        **base.components,
        controlnet=FluxControlNetModel.from_pretrained(extras_paths["controlnet"]),
    )
    pipe.set_progress_bar_config(disable=True)
    ref = pipe(
        PROMPT,
        control_image=_control_image(),
        controlnet_conditioning_scale=0.8,
        width=64,
        height=64,
        num_inference_steps=3,
        guidance_scale=3.5,
        generator=torch.Generator("cpu").manual_seed(21),
    ).images[0]
    diff = np.abs(ours - np.asarray(ref).astype(int))
    assert diff.max() <= 2, f"max pixel difference {diff.max()}"
    weaker = np.asarray(extras_runner.run(_graph(extras, weight=0.0)).image("l2i")).astype(int)
    assert np.abs(weaker - ours).max() > 2  # the ControlNet changed the picture


def test_controlnet_needs_a_flux_controlnet(extras_runner, extras) -> None:
    g = _graph(extras)
    g.set("cn", control_model=extras["vae"])
    with pytest.raises(NodeError) as err:
        extras_runner.run(g)
    assert "'cn'" in str(err.value) and "control_model" in str(err.value)


def test_xlabs_file_matches_the_pipeline_with_its_diffusers_twin(
    extras_runner, extras, extras_paths
) -> None:
    """An XLabs-layout file (BFL names, input-hint convs) converts to the same model diffusers
    runs; its residuals cycle over the double blocks and it reads the image, not latents."""
    from diffusers import FluxControlNetModel, FluxControlNetPipeline, FluxPipeline

    found = probe(extras_paths["xlabs"])
    assert (found.type, found.base, found.format) == ("controlnet", "flux", "checkpoint")
    g = _graph(extras, weight=0.9)
    g.set("cn", control_model=extras["xlabs"])
    ours = np.asarray(extras_runner.run(g).image("l2i")).astype(int)
    base = FluxPipeline.from_pretrained(extras_paths["dev"])
    twin = FluxControlNetModel.from_pretrained(extras_paths["xlabs_diffusers"])
    pipe = FluxControlNetPipeline(**base.components, controlnet=twin)
    pipe.set_progress_bar_config(disable=True)
    ref = pipe(
        PROMPT,
        control_image=_control_image(),
        controlnet_conditioning_scale=0.9,
        width=64,
        height=64,
        num_inference_steps=3,
        guidance_scale=3.5,
        generator=torch.Generator("cpu").manual_seed(21),
    ).images[0]
    diff = np.abs(ours - np.asarray(ref).astype(int))
    assert diff.max() <= 2, f"max pixel difference {diff.max()}"


def _record(path: Path, name: str):
    from invoke_nb.models.records import ModelRecord

    found = probe(path)
    return ModelRecord(
        key=name, hash=f"local:{name}", path=str(path), name=name, base=found.base,
        type=found.type, format=found.format, variant=found.variant, source=str(path),
        owned=False,
    )  # fmt: skip


def test_instantx_file_runs_as_its_diffusers_folder(extras_runner, extras, extras_paths) -> None:
    """A single InstantX-style file (diffusers' tensor names, no config) is identified as a
    FLUX ControlNet checkpoint and steers the picture exactly as the folder it came from."""
    found = probe(extras_paths["controlnet_file"])
    assert (found.type, found.base, found.format) == ("controlnet", "flux", "checkpoint")
    folder = np.asarray(extras_runner.run(_graph(extras)).image("l2i")).astype(int)
    g = _graph(extras)
    g.set("cn", control_model=extras["controlnet_file"])
    single = np.asarray(extras_runner.run(g).image("l2i")).astype(int)
    assert np.abs(single - folder).max() <= 1
    plain = np.asarray(extras_runner.run(_graph(extras, weight=0.0)).image("l2i")).astype(int)
    assert np.abs(single - plain).max() > 2  # the file's ControlNet acted


def test_instantx_union_file_keeps_its_control_modes(tmp_path: Path) -> None:
    """A Union file (``controlnet_mode_embedder``) loads with its mode count and gives the
    residuals of diffusers' model for a chosen mode."""
    from diffusers import FluxControlNetModel

    from invoke_nb.models.load_flux_extras import load_flux_extra
    from invoke_nb.testing.tiny_flux_extras import make_flux_controlnet, make_flux_controlnet_file

    folder = make_flux_controlnet(tmp_path / "union", num_mode=3)
    file = make_flux_controlnet_file(tmp_path / "union.safetensors", folder)
    ours = load_flux_extra(_record(file, "union"), None, torch.float32)
    ref = FluxControlNetModel.from_pretrained(folder).eval()
    assert ours.config.num_mode == 3 and ours.config.num_single_layers == 1
    g = torch.Generator().manual_seed(0)
    args = dict(
        hidden_states=torch.randn(1, 16, 64, generator=g),
        controlnet_cond=torch.randn(1, 16, 64, generator=g),
        encoder_hidden_states=torch.randn(1, 5, ref.config.joint_attention_dim, generator=g),
        pooled_projections=torch.randn(1, 768, generator=g),
        timestep=torch.tensor([0.5]), guidance=torch.tensor([3.5]),
        img_ids=torch.zeros(16, 3), txt_ids=torch.zeros(5, 3), return_dict=False,
    )  # fmt: skip
    with torch.no_grad():
        for mode in (0, 2):
            m = torch.tensor([[mode]])
            a_blocks, a_single = ours(controlnet_mode=m, **args)
            b_blocks, b_single = ref(controlnet_mode=m, **args)
            for a, b in zip([*a_blocks, *a_single], [*b_blocks, *b_single], strict=True):
                torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_instantx_union_file_matches_invokeais_own_instantx_code(tmp_path: Path) -> None:
    """InvokeAI 6.11.1 reads the same tiny single file with its own InstantX converter and
    model; its residuals for mode 2 (fixture: tests/fixtures/flux/README.md) equal ours."""
    import json

    from invoke_nb.models.load_flux_extras import load_flux_extra
    from invoke_nb.testing.tiny_flux_extras import make_flux_controlnet, make_flux_controlnet_file

    ref = json.loads(
        (Path(__file__).parents[1] / "fixtures/flux/invokeai-flux-instantx-union.json").read_text()
    )

    def t(e: dict) -> torch.Tensor:
        return torch.tensor(e["values"]).reshape(e["shape"])

    x = {k: t(v) for k, v in ref["inputs"].items()}
    file = make_flux_controlnet_file(
        tmp_path / "u.safetensors", make_flux_controlnet(tmp_path / "u", num_mode=3)
    )
    model = load_flux_extra(_record(file, "union"), None, torch.float32)
    with torch.no_grad():
        double, single = model(
            hidden_states=x["img"], controlnet_cond=x["cond"],
            controlnet_mode=torch.tensor([[ref["mode"]]]), conditioning_scale=1.0,
            encoder_hidden_states=x["txt"], pooled_projections=x["y"],
            timestep=torch.tensor([ref["timestep"]]), guidance=torch.tensor([ref["guidance"]]),
            img_ids=x["img_ids"][0], txt_ids=torch.zeros(3, 3), return_dict=False,
        )  # fmt: skip
    assert len(double) == len(ref["double"]) and len(single) == len(ref["single"])
    for ours, theirs in zip([*double, *single], [*ref["double"], *ref["single"]], strict=True):
        torch.testing.assert_close(ours, t(theirs), atol=1e-4, rtol=1e-4)


def test_unknown_controlnet_file_is_refused_by_name(tmp_path: Path) -> None:
    from invoke_nb.models.errors import ModelLoadError
    from invoke_nb.models.load_flux_extras import load_flux_extra

    file = tmp_path / "odd.safetensors"
    save_file({"controlnet_blocks.0.weight": torch.zeros(4, 4)}, file)
    rec = _record(file, "odd").model_copy(
        update={"base": "flux", "type": "controlnet", "format": "checkpoint"}
    )
    with pytest.raises(ModelLoadError, match=r"odd.*controlnet_x_embedder"):
        load_flux_extra(rec, None, torch.float32)
