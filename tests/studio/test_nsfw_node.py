"""``img_nsfw`` with a real (tiny, random) Stable Diffusion safety checker installed through
the model manager: the checker's concept thresholds decide, so both outcomes are checked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

import invoke_nb as inb
from invoke_nb.studio import Studio


def _tiny_checker(dest: Path, flag_everything: bool) -> Path:
    import torch
    from diffusers.pipelines.stable_diffusion.safety_checker import (
        StableDiffusionSafetyChecker,
    )
    from transformers import CLIPConfig, CLIPImageProcessor

    torch.manual_seed(0)
    cfg = CLIPConfig(
        text_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "vocab_size": 64,
        },
        vision_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=768,
    )
    checker = StableDiffusionSafetyChecker(cfg).eval()
    with torch.no_grad():
        # a concept is flagged when cos(image, concept) - weight > 0: cosines lie in [-1, 1]
        checker.concept_embeds_weights.fill_(-2.0 if flag_everything else 2.0)
        checker.special_care_embeds_weights.fill_(2.0)
    checker.save_pretrained(dest)
    CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ).save_pretrained(dest)
    return dest


@pytest.mark.parametrize("flag", [True, False])
def test_nsfw_blurs_only_flagged_images(studio: Studio, tmp_path: Path, flag: bool) -> None:
    rec = studio.models.install(str(_tiny_checker(tmp_path / "checker", flag)), name="checker")
    assert rec.type == "safety_checker"
    rng = np.random.default_rng(3)
    img = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    g = inb.Graph()
    g.add("img_nsfw", id="n", image=img)
    out = studio.run(g, progress=False)
    got = np.asarray(out.run.value(out.outputs["n"].image).convert("RGB"), dtype=int)
    want = img.filter(ImageFilter.GaussianBlur(radius=32)) if flag else img
    assert np.abs(got - np.asarray(want, dtype=int)).max() <= 1


def test_nsfw_without_a_checker_says_so() -> None:
    g = inb.Graph()
    g.add("img_nsfw", id="n", image=Image.new("RGB", (8, 8)))
    with pytest.raises(Exception, match="no safety checker installed"):
        inb.run(g)
