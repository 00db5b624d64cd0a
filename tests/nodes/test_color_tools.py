"""Oklab/Okhsl/Okhsv maths against published values and round trips, and the
``invokeai_img_hue_adjust_plus`` node (InvokeAI parity: benchmarks/invokeai_node_parity.py)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import invoke_nb as inb
from invoke_nb.nodes import oklab


def test_oklab_of_srgb_primaries_matches_the_published_values() -> None:
    rgb = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 1, 1]])
    lab = oklab.oklab_from_linear(oklab.linear_from_srgb(rgb))
    expected = [
        [0.627955, 0.224863, 0.125846],
        [0.866440, -0.233888, 0.179498],
        [0.452014, -0.032457, -0.311528],
        [1.0, 0.0, 0.0],
    ]
    assert np.allclose(lab, expected, atol=2e-5)


def test_okhsl_and_okhsv_round_trip_and_span_the_gamut() -> None:
    rgb = np.random.default_rng(0).random((32, 32, 3))
    for fwd, back in (
        (oklab.okhsl_from_srgb, oklab.srgb_from_okhsl),
        (oklab.okhsv_from_srgb, oklab.srgb_from_okhsv),
    ):
        hs = fwd(rgb, 3)
        assert hs.min() >= -1e-6 and hs.max() <= 1 + 1e-6
        assert np.abs(back(hs, 0.0, 3) - rgb).max() < 1e-5
    # fully saturated primaries sit on the gamut edge: s = 1
    prim = np.eye(3)
    assert np.allclose(oklab.okhsv_from_srgb(prim, 3)[:, 1:], 1.0, atol=1e-4)
    assert np.allclose(oklab.okhsl_from_srgb(prim, 3)[:, 1], 1.0, atol=1e-3)


def test_gamut_clip_moves_only_colours_outside() -> None:
    lin = np.array([[0.2, 0.5, 0.7], [1.4, -0.2, 0.1], [-0.1, 0.3, 1.2]])
    out = oklab.gamut_clip(lin, 0.05, 3)
    assert np.array_equal(out[0], lin[0])
    assert out[1:].min() > -1e-4 and out[1:].max() < 1 + 1e-4
    hue = lambda x: np.arctan2(*oklab.oklab_from_linear(x)[..., [2, 1]].T)  # noqa: E731
    assert np.allclose(hue(out[1:]), hue(lin[1:]), atol=1e-3)  # hue kept


def _hue(image: Image.Image, **values: object) -> np.ndarray:
    g = inb.Graph()
    g.add("invokeai_img_hue_adjust_plus", id="h", image=image, **values)
    r = inb.run(g)
    return np.asarray(r.value(r.outputs["h"].image))


@pytest.mark.parametrize("space", ["HSV / HSL / RGB", "Okhsl", "Okhsv", "*Oklch / Oklab"])
def test_hue_rotation(space: str) -> None:
    red = Image.new("RGBA", (8, 4), (220, 30, 40, 128))
    back = _hue(red, space=space, degrees=360.0)
    assert back.shape == (4, 8, 4) and (back[..., 3] == 128).all()  # alpha kept
    # (truncation to bytes, as InvokeAI does, moves an 8-bit HSV hue by a step)
    assert np.abs(back[..., :3].astype(int) - [220, 30, 40]).max() <= 5
    turned = _hue(red, space=space, degrees=120.0)[0, 0, :3].astype(int)
    assert turned[1] > turned[0] and turned[1] > turned[2]  # red turned to green


def test_uplab_is_refused_by_name() -> None:
    with pytest.raises(Exception, match=r"UPLab.*CIELab_to_UPLab\.icc"):
        _hue(Image.new("RGB", (4, 4)), space="*UPLab (w/CIELab_to_UPLab.icc)", degrees=10.0)
