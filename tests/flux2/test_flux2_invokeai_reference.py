"""Default seeding reproduces InvokeAI's own FLUX.2 backend (fixture made with InvokeAI)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from invoke_nb.graph.standard_flux2 import DENOISE, txt2img

FIXTURE = Path(__file__).parents[1] / "fixtures" / "flux2" / "invokeai-klein-latents.npz"
CASES = {"euler": (7, 64, 48, 4), "heun": (8, 48, 64, 3)}


@pytest.mark.parametrize("name", list(CASES))
def test_latents_match_invokeai(runner, klein, name: str) -> None:
    seed, width, height, steps = CASES[name]
    g = txt2img(
        klein,
        "a cute tiger cub",
        width=width,
        height=height,
        steps=steps,
        seed=seed,
        scheduler=name,
    )
    r = runner.run(g)
    ours = r.value(r.outputs[DENOISE].latents).numpy()
    ref = np.load(FIXTURE)[name]
    assert ours.shape == ref.shape == (1, 32, height // 8, width // 8)
    assert np.abs(ours - ref).max() <= 1e-3
