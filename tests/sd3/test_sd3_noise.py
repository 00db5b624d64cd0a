"""InvokeAI 6.11's SD3 noise: torch 2.7's float16 CPU ``randn``, rebuilt without torch 2.7."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from invoke_nb.nodes.diffusion.sd3.sampling import invokeai_noise
from invoke_nb.nodes.diffusion.torch27_noise import randn_float16_torch27
from invoke_nb.testing.pixels import assert_float16_noise_close

FIXTURE = Path(__file__).parents[1] / "fixtures" / "torch27_noise" / "randn_float16.json"
CASES = json.loads(FIXTURE.read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"seed{c['seed']}")
def test_matches_torch_2_7_float16_randn(case: dict) -> None:
    shape = tuple(case["shape"])
    ref = np.frombuffer(bytes.fromhex(case["float16_hex"]), np.float16).reshape(shape)
    ours = randn_float16_torch27(case["seed"], shape).numpy()
    assert ours.dtype == np.float16 and ours.shape == shape
    assert_float16_noise_close(ours, ref)
    assert abs(float(ref.astype(np.float32).std()) - 1.0) < 0.1


def test_sd3_noise_is_that_stream_in_latent_shape() -> None:
    noise = invokeai_noise(1234, 16, 64, 64)
    assert tuple(noise.shape) == (1, 16, 8, 8)
    case = next(c for c in CASES if c["seed"] == 1234)
    ref = np.frombuffer(bytes.fromhex(case["float16_hex"]), np.float16)
    assert np.abs(noise.numpy().ravel().astype(np.float32) - ref.astype(np.float32)).max() < 2e-3
    with pytest.raises(ValueError, match="16"):
        randn_float16_torch27(0, (3, 4))
