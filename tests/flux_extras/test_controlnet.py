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
