"""SD 2.x: a 1024-wide, v-prediction model is identified as sd-2 and our txt2img graph
reproduces diffusers' pipeline on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import invoke_nb as inb
from invoke_nb.graph.standard import OUTPUT, txt2img
from invoke_nb.models.local import LocalModels
from invoke_nb.models.probe import probe
from invoke_nb.nodes.types import identifier
from invoke_nb.testing.tiny_models import make_sd2


@pytest.fixture(scope="module")
def tiny_sd2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sd2(tmp_path_factory.mktemp("sd2") / "tiny-sd2")


def test_sd2_is_identified_with_v_prediction(tiny_sd2: Path) -> None:
    found = probe(tiny_sd2)
    assert (found.type, found.base, found.format) == ("main", "sd-2", "diffusers")
    assert found.prediction_type == "v_prediction"


@pytest.mark.parametrize(
    "scheduler, cls", [("ddim", "DDIMScheduler"), ("euler", "EulerDiscreteScheduler")]
)
def test_sd2_txt2img_matches_diffusers(tiny_sd2: Path, scheduler: str, cls: str) -> None:
    import diffusers

    models = LocalModels()
    rec = models.register(tiny_sd2, name="tiny-sd2")
    assert rec.base == "sd-2"
    g = txt2img(
        identifier(rec), "a lighthouse", negative="fog", width=64, height=64, steps=4,
        cfg_scale=6.0, scheduler=scheduler, seed=5, seeding="diffusers",
    )  # fmt: skip
    ours = np.asarray(inb.Runner(services=inb.Services(models=models)).run(g).image(OUTPUT)).astype(
        int
    )
    pipe = diffusers.StableDiffusionPipeline.from_pretrained(tiny_sd2, safety_checker=None)
    pipe.scheduler = getattr(diffusers, cls).from_config(pipe.scheduler.config)
    assert pipe.scheduler.config.prediction_type == "v_prediction"
    pipe.set_progress_bar_config(disable=True)
    ref = pipe(
        "a lighthouse", negative_prompt="fog", num_inference_steps=4, height=64, width=64,
        guidance_scale=6.0, generator=torch.Generator("cpu").manual_seed(5),
    ).images[0]  # fmt: skip
    ref = np.asarray(ref).astype(int)
    assert np.abs(ours - ref).max() <= 1
    assert ours.std() > 5
