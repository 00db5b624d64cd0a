"""The Studio one-liners build InvokeAI's FLUX.2 Klein graph for a flux2 model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from invoke_nb.studio import Studio

SMALL = {"width": 64, "height": 64, "steps": 2, "cfg_scale": 1.0}


@pytest.fixture
def klein_studio(tmp_path: Path, tiny_flux2: Path) -> Iterator[Studio]:
    s = Studio(tmp_path / "studio")
    s.models.install(str(tiny_flux2), name="klein", in_place=True)
    yield s
    s.close()


def test_txt2img_and_img2img_with_metadata(klein_studio: Studio) -> None:
    img = klein_studio.txt2img("a red fox", model="klein", seed=7, progress=False, **SMALL)
    assert img.pil.size == (64, 64) and img.path.exists()
    meta = img.metadata
    assert meta["generation_mode"] == "flux2_txt2img"
    assert meta["model"]["name"] == "klein" and meta["model"]["base"] == "flux2"
    assert (meta["seed"], meta["steps"], meta["positive_prompt"]) == (7, 2, "a red fox")
    types = {s.type for s in img.graph.nodes.values()}
    assert {"flux2_klein_model_loader", "flux2_denoise", "flux2_vae_decode"} <= types
    assert img.record.seed == 7 and img.record.model_name == "klein"

    out = klein_studio.img2img(
        img,
        "a red fox",
        model="klein",
        strength=0.5,
        seed=8,
        steps=2,
        cfg_scale=1.0,
        progress=False,
    )
    assert out.metadata["generation_mode"] == "flux2_img2img"
    assert out.metadata["strength"] == 0.5
    assert out.pil.size == (64, 64)
    assert np.abs(np.asarray(out.pil).astype(int) - np.asarray(img.pil).astype(int)).max() > 0


def test_sd_only_options_are_refused(klein_studio: Studio) -> None:
    with pytest.raises(ValueError, match="clip_skip"):
        klein_studio.txt2img("x", model="klein", clip_skip=1, progress=False, **SMALL)
    with pytest.raises(TypeError, match="guidance"):
        klein_studio.txt2img("x", model="klein", guidance=3.5, progress=False, **SMALL)


def test_klein_defaults_hold_where_the_caller_set_nothing(klein_studio: Studio) -> None:
    """The Studio's SD defaults (CFG 7.5, 30 steps) are not forced on Klein: CFG 1, 4 steps."""
    img = klein_studio.txt2img("a boat", model="klein", width=64, height=64, seed=1,
                               progress=False)  # fmt: skip
    den = next(n for n in img.graph.nodes.values() if n.type == "flux2_denoise")
    assert (den.values["cfg_scale"], den.values["num_steps"]) == (1.0, 4)


def test_inpaint_keeps_pixels_outside_the_mask(klein_studio: Studio) -> None:
    from PIL import Image

    src = klein_studio.txt2img("a house", model="klein", seed=3, progress=False, **SMALL)
    mask = Image.new("L", (64, 64), 255)
    mask.paste(0, (24, 24, 40, 40))  # black: repaint
    out = klein_studio.inpaint(src, mask, "a house", model="klein", seed=4, steps=2,
                               cfg_scale=1.0, edge_radius=4, progress=False)  # fmt: skip
    assert out.metadata["generation_mode"] == "flux2_inpaint"
    before = np.asarray(src.pil.convert("RGB")).astype(int)
    after = np.asarray(out.pil.convert("RGB")).astype(int)
    assert np.array_equal(before[:8, :8], after[:8, :8])  # far from the hole: pasted back
    assert np.abs(before[28:36, 28:36] - after[28:36, 28:36]).max() > 0


def test_outpaint_fills_the_transparent_border(klein_studio: Studio) -> None:
    from PIL import Image

    src = klein_studio.txt2img("a field", model="klein", seed=5, progress=False, **SMALL)
    canvas = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    canvas.paste(src.pil.convert("RGB").crop((0, 0, 48, 48)), (0, 0))
    out = klein_studio.outpaint(canvas, "a field", model="klein", seed=6, steps=2,
                                cfg_scale=1.0, edge_radius=4, progress=False)  # fmt: skip
    assert out.metadata["generation_mode"] == "flux2_outpaint"
    rgb = np.asarray(out.pil.convert("RGB")).astype(int)
    kept = np.asarray(canvas.convert("RGB")).astype(int)
    assert np.array_equal(rgb[16:24, 16:24], kept[16:24, 16:24])  # inside the old picture
    assert rgb[-4:, -4:].std() > 0  # the border got content
