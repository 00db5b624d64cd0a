"""``invokeai_img_blend`` (Image Layer Blend) on known colours: each blend mode's formula,
opacity, masks, alpha and fitting. Pixel parity with InvokeAI 6.11.1's own node is measured by
benchmarks/invokeai_node_parity.py; here values are checked within a byte or two."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import invoke_nb as inb


def _blend(upper: Image.Image, base: Image.Image, **values: object) -> np.ndarray:
    g = inb.Graph()
    g.add("invokeai_img_blend", id="b", layer_upper=upper, layer_base=base, **values)
    r = inb.run(g)
    return np.asarray(r.value(r.outputs["b"].image)).astype(int)


def _flat(rgb: tuple[int, ...], size: tuple[int, int] = (8, 8), mode: str = "RGB") -> Image.Image:
    return Image.new(mode, size, rgb)


U, B = (200, 100, 50), (128, 255, 10)
u, b = np.array(U) / 255, np.array(B) / 255


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("Multiply", u * b),
        ("Screen", 1 - (1 - u) * (1 - b)),
        ("Darken Only", np.minimum(u, b)),
        ("Lighten Only", np.maximum(u, b)),
        ("Difference", np.abs(u - b)),
        ("Linear Dodge (Add)", np.minimum(u + b, 1)),
        ("Subtract", np.maximum(b - u, 0)),
        ("Linear Burn", np.maximum(u + b - 1, 0)),
    ],
)
def test_rgb_modes_follow_their_formula(mode: str, expected: np.ndarray) -> None:
    out = _blend(_flat(U), _flat(B), blend_mode=mode)
    assert out.shape == (8, 8, 3)  # the base's size and mode
    assert np.abs(out - expected * 255).max() <= 1.5, out[0, 0]


def test_normal_at_half_opacity_is_the_average() -> None:
    out = _blend(_flat((200, 0, 100)), _flat((0, 200, 50)), opacity=0.5)
    assert np.abs(out - [100, 100, 75]).max() <= 1


def test_mask_keeps_the_base_where_white() -> None:
    mask = Image.new("L", (8, 8), 0)
    mask.paste(255, (0, 0, 4, 8))  # left half white: no blending there
    out = _blend(_flat(U), _flat(B), blend_mode="Multiply", mask=mask)
    assert np.abs(out[:, :4] - B).max() <= 1
    assert np.abs(out[:, 4:] - u * b * 255).max() <= 1.5


def test_upper_alpha_and_base_alpha() -> None:
    upper = _flat((*U, 0), mode="RGBA")
    upper.paste((*U, 255), (0, 0, 8, 4))  # top half opaque, bottom half transparent
    out = _blend(upper, _flat(B))
    assert np.abs(out[:4] - U).max() <= 1 and np.abs(out[4:] - B).max() <= 1
    # an RGBA base keeps its mode; alpha composes as "over": 0.5 over 0.5 -> 0.75
    out = _blend(_flat((*U, 128), mode="RGBA"), _flat((*B, 128), mode="RGBA"))
    assert out.shape == (8, 8, 4) and abs(out[0, 0, 3] - 0.75 * 255) <= 1.5


def test_hue_mode_takes_hue_from_the_upper_layer() -> None:
    # base: HSL green, s 1, l 0.25; upper: red -> red at the base's lightness
    out = _blend(_flat((255, 0, 0)), _flat((0, 128, 0)), blend_mode="Hue")
    assert np.abs(out[0, 0] - [128, 0, 0]).max() <= 1
    lum = _blend(_flat((255, 255, 255)), _flat((0, 128, 0)), blend_mode="Luminosity")
    assert np.abs(lum[0, 0] - [255, 255, 255]).max() <= 1  # l = 1 from the upper: white


@pytest.mark.parametrize("space", ["Okhsl", "Okhsv", "Oklch (Oklab)", "LCh (CIELab)", "HSV (RGB)"])
def test_normal_in_every_space_returns_the_upper_layer(space: str) -> None:
    out = _blend(_flat(U), _flat(B), color_space=space)
    tol = 4 if space == "LCh (CIELab)" else 2  # 8-bit Lab planes round
    assert np.abs(out - U).max() <= tol, out[0, 0]


def test_lighten_only_in_oklch_compares_lightness_not_channels() -> None:
    dark_red, light_grey = (150, 0, 0), (160, 160, 160)
    out = _blend(
        _flat(dark_red), _flat(light_grey), blend_mode="Lighten Only", color_space="Oklch (Oklab)"
    )
    assert np.abs(out - light_grey).max() <= 2  # the lighter pixel as a whole, not a mix
    rgb = _blend(_flat(dark_red), _flat(light_grey), blend_mode="Lighten Only")
    assert np.abs(rgb[0, 0] - [160, 160, 160]).max() <= 1


def test_upper_layer_is_fitted_to_the_base() -> None:
    # fit_to_height (default): a narrower upper is scaled and padded with black
    out = _blend(_flat(U, (4, 8)), _flat(B, (16, 8)))
    assert out.shape == (8, 16, 3)
    assert np.abs(out[:, 6:10] - U).max() <= 1 and (out[:, 0] == 0).all()
    with pytest.raises(Exception, match=r"upper layer is 4x8.*base 16x8"):
        _blend(_flat(U, (4, 8)), _flat(B, (16, 8)), fit_to_height=False)


def test_base_with_an_icc_profile_is_blended_in_srgb_and_stays_rgba() -> None:
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    base = _flat((120, 60, 30))
    base.info["icc_profile"] = srgb
    out = _blend(_flat(U), base, blend_mode="Multiply")
    assert out.shape == (8, 8, 4)  # InvokeAI keeps RGBA when it converts back to the profile
    assert np.abs(out[..., :3] - u * [120, 60, 30]).max() <= 2 and (out[..., 3] == 255).all()
