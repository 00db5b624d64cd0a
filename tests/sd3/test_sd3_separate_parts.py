"""sd3_model_loader with separate CLIP-G, T5 and VAE models, as InvokeAI's loader takes them."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from invoke_nb.graph.errors import NodeError
from invoke_nb.graph.standard import txt2img
from invoke_nb.models.local import identifier
from invoke_nb.nodes.base import NodeInputError


@pytest.fixture(scope="module")
def parts(sd3_manager, tiny_sd3: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The tiny SD3's CLIP-G, T5 (InvokeAI's T5 folder layout) and VAE as models of their own."""
    root = tmp_path_factory.mktemp("sd3-parts")
    t5 = root / "t5"
    shutil.copytree(tiny_sd3 / "text_encoder_3", t5 / "text_encoder_2")
    shutil.copytree(tiny_sd3 / "tokenizer_3", t5 / "tokenizer_2")
    # the probe tells CLIP-G from CLIP-L by width (1280); the tiny one is narrower, so say so
    clip_g = sd3_manager.install(
        tiny_sd3 / "text_encoder_2", name="clip-g", in_place=True, config={"variant": "gigantic"}
    )
    vae = sd3_manager.install(
        tiny_sd3 / "vae", name="sd3-vae", in_place=True, config={"base": "sd-3"}
    )
    t5_rec = sd3_manager.install(
        t5, name="t5", in_place=True, config={"type": "t5_encoder", "format": "t5_encoder"}
    )
    assert clip_g.type == "clip_embed" and t5_rec.type == "t5_encoder"
    return {"clip_g": clip_g, "t5": t5_rec, "vae": vae}


def test_separate_parts_give_the_same_image(sd3_runner, sd3, parts) -> None:
    g = txt2img(sd3, "a tiger", width=64, height=64, steps=2)
    g.set("seed", value=3)
    whole = np.asarray(sd3_runner.run(g).image("l2i"))
    g.set(
        "model_loader",
        clip_g_model=identifier(parts["clip_g"]),
        t5_encoder_model=identifier(parts["t5"]),
        vae_model=identifier(parts["vae"]),
    )
    r = sd3_runner.run(g)
    loader = r.outputs["model_loader"]
    assert loader.clip_g.text_encoder.key == parts["clip_g"].key
    assert loader.t5_encoder.tokenizer.key == parts["t5"].key
    assert np.array_equal(np.asarray(r.image("l2i")), whole)


def test_sd1_vae_into_sd3_loader_is_refused(sd3_runner, sd3_manager, sd3) -> None:
    g = txt2img(sd3, "a tiger", width=64, height=64, steps=2)
    g.set("model_loader", vae_model=identifier(sd3_manager.get("tiny-sd1")))
    with pytest.raises(NodeError) as info:
        sd3_runner.run(g)
    err = info.value.original
    assert isinstance(err, NodeInputError) and err.field == "vae_model"
