"""FLUX Redux: SigLIP + the Redux projector append image tokens to the prompt, as
diffusers' FluxPriorReduxPipeline feeding FluxPipeline does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from invoke_nb.graph import standard_flux
from invoke_nb.graph.errors import NodeError
from invoke_nb.models.probe import probe

PROMPT = "a cat"


def _image() -> Image.Image:
    y, x = np.mgrid[0:40, 0:40]
    return Image.fromarray(np.stack([x * 6, y * 6, (x + y) * 3], -1).astype(np.uint8))


def _graph(extras, weight: float = 1.0):
    g = standard_flux.txt2img(
        extras["dev"], PROMPT, width=64, height=64, steps=3, guidance=3.5, seed=31,
        seeding="diffusers", t5_encoder=extras["t5"], clip_embed=extras["clip"],
        vae=extras["vae"],
    )  # fmt: skip
    g.add("flux_redux", id="redux", image=_image(), redux_model=extras["redux"], weight=weight)
    g.connect("redux", "redux_cond", "flux_denoise", "redux_conditioning")
    return g


def test_probe(extras_paths: dict[str, Path]) -> None:
    assert (probe(extras_paths["redux"]).type, probe(extras_paths["redux"]).base) == (
        "flux_redux",
        "flux",
    )
    assert probe(extras_paths["siglip"]).type == "siglip"


def test_redux_matches_prior_redux_pipeline(extras_runner, extras, extras_paths) -> None:
    from diffusers import FluxPipeline, FluxPriorReduxPipeline
    from diffusers.pipelines.flux.modeling_flux import ReduxImageEncoder
    from safetensors.torch import load_file
    from transformers import SiglipImageProcessor, SiglipVisionModel

    ours = np.asarray(extras_runner.run(_graph(extras)).image("l2i")).astype(int)
    base = FluxPipeline.from_pretrained(extras_paths["dev"])
    base.set_progress_bar_config(disable=True)
    sd = load_file(str(extras_paths["redux"]))
    redux = ReduxImageEncoder(redux_dim=sd["redux_up.weight"].shape[1],
                              txt_in_features=sd["redux_down.weight"].shape[0])  # fmt: skip
    redux.load_state_dict(sd)
    prior = FluxPriorReduxPipeline(
        image_encoder=SiglipVisionModel.from_pretrained(extras_paths["siglip"]),
        feature_extractor=SiglipImageProcessor.from_pretrained(extras_paths["siglip"]),
        image_embedder=redux,
        text_encoder=base.text_encoder,
        tokenizer=base.tokenizer,
        text_encoder_2=base.text_encoder_2,
        tokenizer_2=base.tokenizer_2,
    )
    embeds = prior(_image(), prompt=PROMPT)
    ref = base(
        prompt_embeds=embeds.prompt_embeds,
        pooled_prompt_embeds=embeds.pooled_prompt_embeds,
        width=64,
        height=64,
        num_inference_steps=3,
        guidance_scale=3.5,
        generator=torch.Generator("cpu").manual_seed(31),
    ).images[0]
    diff = np.abs(ours - np.asarray(ref).astype(int))
    assert diff.max() <= 2, f"max pixel difference {diff.max()}"
    faint = np.asarray(extras_runner.run(_graph(extras, weight=0.0)).image("l2i")).astype(int)
    assert np.abs(faint - ours).max() > 2


def test_redux_without_siglip_names_the_need(extras_runner, extras) -> None:
    g = _graph(extras)
    g.set("redux", redux_model=extras["vae"])
    with pytest.raises(NodeError) as err:
        extras_runner.run(g)
    assert "redux" in str(err.value) and "redux_model" in str(err.value)
