"""Same seed, same pixels: images made by InvokeAI 6.14.2 re-generate here exactly.

The PNGs in tests/fixtures/invokeai/ came out of a real InvokeAI 6.14.2 (CPU, float32) with
the reference model; their ``invokeai_graph`` is InvokeAI's own session graph (every field
of every node, connected inputs as null, InvokeAI-only fields such as ``hidiffusion``).
The test rebuilds the model from the factory, installs it under a new key, and checks that
InvokeAI's recorded hash finds it and that the re-run matches every pixel.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from invokeai_root import REFERENCE_PNGS
from PIL import Image
from reference_model import REFERENCE_HASH

from invoke_nb.models.hashing import model_hash
from invoke_nb.recall import RecallError

SCHEDULERS = ("ddim", "dpmpp_sde_k", "euler", "euler_a")


def _pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.int16)


def _meta(png: Path) -> dict:
    with Image.open(png) as im:
        return json.loads(im.text["invokeai_metadata"])


def test_fixtures_cover_the_four_schedulers() -> None:
    assert sorted(_meta(p)["scheduler"] for p in REFERENCE_PNGS) == sorted(SCHEDULERS)
    for p in REFERENCE_PNGS:
        assert _meta(p)["app_version"] == "6.14.2"


def test_our_model_hash_is_the_one_invokeai_recorded(reference_model: Path) -> None:
    ours = model_hash(reference_model)
    assert ours == REFERENCE_HASH
    for p in REFERENCE_PNGS:
        assert _meta(p)["model"]["hash"] == ours


@pytest.fixture
def installed(studio, reference_model: Path):
    return studio.models.install(reference_model, name="my-copy-of-tiny", in_place=True)


@pytest.mark.parametrize("png", REFERENCE_PNGS, ids=lambda p: p.stem)
def test_rerun_of_an_invokeai_png_gives_its_pixels(studio, installed, png: Path) -> None:
    meta = _meta(png)
    # InvokeAI's key and name differ from ours: the model is found by hash
    assert meta["model"]["key"] != installed.key and meta["model"]["name"] != installed.name
    g = studio.recall(png)
    assert g.nodes["model_loader"].values["model"].key == installed.key
    assert g.nodes["denoise_latents"].values["scheduler"] == meta["scheduler"]
    img = studio.rerun(png, progress=False)
    with Image.open(png) as ref:
        diff = np.abs(_pixels(ref) - _pixels(img.pil))
    assert diff.max() == 0, f"{png.name}: {int((diff > 0).sum())} values differ, max {diff.max()}"
    assert img.record.seed == meta["seed"] == 42


def test_diffusers_seeding_does_not_reproduce_ancestral_images(studio, installed) -> None:
    """The seeding convention is what makes euler_a match: diffusers' own differs."""
    png = next(p for p in REFERENCE_PNGS if _meta(p)["scheduler"] == "euler_a")
    g = studio.recall(png)
    g.set("denoise_latents", seeding="diffusers")
    img = studio.run(g, progress=False).image
    with Image.open(png) as ref:
        assert np.abs(_pixels(ref) - _pixels(img.pil)).max() > 8


def test_recall_without_the_model_names_it(studio) -> None:
    png = REFERENCE_PNGS[0]
    with pytest.raises(RecallError, match=r"tiny-sd1.*sd-1.*blake3:38bf5eda"):
        studio.recall(png)
