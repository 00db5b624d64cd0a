"""Same seed, same pixels: images made by InvokeAI 6.14.2 re-generate here.

The PNGs in tests/fixtures/invokeai/ came out of a real InvokeAI 6.14.2 (CPU, float32) with
the reference model; their ``invokeai_graph`` is InvokeAI's own session graph (every field
of every node, connected inputs as null, InvokeAI-only fields such as ``hidiffusion``).
The test rebuilds the model from the factory, installs it under a new key, and checks that
InvokeAI's recorded hash finds it and that the re-run gives InvokeAI's pixels within the
cross-machine tolerance of ``invoke_nb.testing.pixels`` (at most 2 levels off, at most 2% of
values differing): float rounding differs by a unit between CPUs and patch releases, which
moves a few 8-bit values by one level; a wrong scheduler or seeding moves most values by more
than 8. On the machine that made the PNGs the re-run is exact; ``python -m
benchmarks.exactness`` reports the figures on any machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from invokeai_root import REFERENCE_PNGS
from PIL import Image
from reference_model import REFERENCE_HASH

from invoke_nb.interchange.recall import RecallError
from invoke_nb.models.hashing import model_hash
from invoke_nb.testing.pixels import assert_pixels_close, pixel_diff

SCHEDULERS = ("ddim", "dpmpp_sde_k", "euler", "euler_a")


def _meta(png: Path) -> dict:
    with Image.open(png) as im:
        return json.loads(im.text["invokeai_metadata"])


def test_fixtures_cover_the_four_schedulers() -> None:
    assert sorted(_meta(p)["scheduler"] for p in REFERENCE_PNGS) == sorted(SCHEDULERS)
    for p in REFERENCE_PNGS:
        assert _meta(p)["app_version"] == "6.14.2"


def test_fixtures_record_the_reference_hash() -> None:
    """Committed data only: every PNG names the one model, by the hash InvokeAI computed."""
    assert {_meta(p)["model"]["hash"] for p in REFERENCE_PNGS} == {REFERENCE_HASH}


def test_our_model_hash_is_the_one_invokeai_recorded(reference_model: Path) -> None:
    # the weights are made from integers (reference_model.py): the same bytes everywhere
    assert model_hash(reference_model) == REFERENCE_HASH


@pytest.fixture
def installed(studio, invokeai_weights: Path):
    return studio.models.install(invokeai_weights, name="my-copy-of-tiny", in_place=True)


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
        assert_pixels_close(img.pil, ref, what=png.name)
    assert img.record.seed == meta["seed"] == 42


def test_diffusers_seeding_does_not_reproduce_ancestral_images(studio, installed) -> None:
    """The seeding convention is what makes euler_a match: diffusers' own differs."""
    png = next(p for p in REFERENCE_PNGS if _meta(p)["scheduler"] == "euler_a")
    g = studio.recall(png)
    g.set("denoise_latents", seeding="diffusers")
    img = studio.run(g, progress=False).image
    with Image.open(png) as ref:
        d = pixel_diff(img.pil, ref)
    assert d.max_levels > 8 and d.share > 0.5, d  # far outside the tolerance above


def test_recall_without_the_model_names_it(studio) -> None:
    png = REFERENCE_PNGS[0]
    with pytest.raises(RecallError, match=r"tiny-sd1.*sd-1.*blake3:5bf3dd45"):
        studio.recall(png)
