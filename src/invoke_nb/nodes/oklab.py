"""Oklab, Okhsv and Okhsl colour spaces (Björn Ottosson's published definitions), vectorised
over numpy arrays of shape (..., 3) in float64.

Oklab is a perceptual Lab space reached from linear sRGB through an LMS-like cone space and a
cube root. Okhsv/Okhsl are hue/saturation/value-or-lightness spaces built on it whose
saturation 1 is the edge of the sRGB gamut for each hue: that edge is found from the gamut's
"cusp" (the most saturated colour of a hue) with a polynomial first guess refined by
Halley's method (``steps`` refinements). Out-of-gamut colours can be brought in with the
adaptive clip that moves them toward a lightness between theirs and 0.5 (``alpha`` sets how
much chroma is kept at the expense of lightness).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "gamut_clip",
    "linear_from_oklab",
    "linear_from_srgb",
    "okhsl_from_srgb",
    "okhsv_from_srgb",
    "oklab_from_linear",
    "srgb_from_linear",
    "srgb_from_okhsl",
    "srgb_from_okhsv",
]

_TO_LMS = np.array(
    [
        [0.4122214708, 0.5363325363, 0.0514459929],
        [0.2119034982, 0.6806995451, 0.1073969566],
        [0.0883024619, 0.2817188376, 0.6299787005],
    ]
)
_LMS_TO_LAB = np.array(
    [
        [0.2104542553, 0.7936177850, -0.0040720468],
        [1.9779984951, -2.4285922050, 0.4505937099],
        [0.0259040371, 0.7827717662, -0.8086757660],
    ]
)
_LAB_TO_LMS = np.array(
    [
        [1.0, 0.3963377774, 0.2158037573],
        [1.0, -0.1055613458, -0.0638541728],
        [1.0, -0.0894841775, -1.2914855480],
    ]
)
_LMS_TO_RGB = np.array(
    [
        [4.0767416621, -3.3077115913, 0.2309699292],
        [-1.2684380046, 2.6097574011, -0.3413193965],
        [-0.0041960863, -0.7034186147, 1.7076147010],
    ]
)
_BIG = np.finfo(np.float64).max


def linear_from_srgb(rgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1] -> linear light."""
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def srgb_from_linear(lin: np.ndarray) -> np.ndarray:
    """Linear light -> sRGB, clamped to [0, 1]."""
    lin = np.clip(lin, 0.0, 1.0)
    return np.where(lin < 0.0404482362771082 / 12.92, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055)


def oklab_from_linear(lin: np.ndarray) -> np.ndarray:
    return np.cbrt(lin @ _TO_LMS.T) @ _LMS_TO_LAB.T


def linear_from_oklab(lab: np.ndarray) -> np.ndarray:
    return ((lab @ _LAB_TO_LMS.T) ** 3) @ _LMS_TO_RGB.T


def _lab(L: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.stack([L, a, b], axis=-1)


def _k_lms(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How each cone response moves per unit of chroma along hue (a, b)."""
    return (
        0.3963377774 * a + 0.2158037573 * b,
        -0.1055613458 * a - 0.0638541728 * b,
        -0.0894841775 * a - 1.2914855480 * b,
    )


def _max_saturation(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """Largest S = C/L inside sRGB for unit hue vectors (a, b): the channel that clips first
    is picked by hue, a polynomial gives a first guess, Halley's method refines it."""
    red = -1.88170328 * a - 0.80936493 * b > 1
    green = ~red & (1.81444104 * a - 1.19445276 * b > 1)
    coeffs = np.where(
        red[..., None],
        [1.19086277, 1.76576728, 0.59662641, 0.75515197, 0.56771245],
        np.where(
            green[..., None],
            [0.73956515, -0.45954404, 0.08285427, 0.12541070, 0.14503204],
            [1.35733652, -0.00915799, -1.15130210, -0.50559606, 0.00692167],
        ),
    )
    w = np.where(
        red[..., None], _LMS_TO_RGB[0], np.where(green[..., None], _LMS_TO_RGB[1], _LMS_TO_RGB[2])
    )
    k0, k1, k2, k3, k4 = np.moveaxis(coeffs, -1, 0)
    S = k0 + k1 * a + k2 * b + k3 * a * a + k4 * a * b
    kl, km, ks = _k_lms(a, b)
    for _ in range(steps):
        l_, m_, s_ = 1 + S * kl, 1 + S * km, 1 + S * ks
        f = w[..., 0] * l_**3 + w[..., 1] * m_**3 + w[..., 2] * s_**3
        f1 = 3 * (w[..., 0] * kl * l_**2 + w[..., 1] * km * m_**2 + w[..., 2] * ks * s_**2)
        f2 = 6 * (w[..., 0] * kl**2 * l_ + w[..., 1] * km**2 * m_ + w[..., 2] * ks**2 * s_)
        S = S - f * f1 / (f1 * f1 - 0.5 * f * f2)
    return S


def _cusp(a: np.ndarray, b: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(L, C) of the most saturated in-gamut colour of each hue."""
    S = _max_saturation(a, b, steps)
    rgb = linear_from_oklab(_lab(np.ones_like(S), S * a, S * b))
    L = np.cbrt(1.0 / np.max(rgb, axis=-1))
    return L, L * S


def _gamut_intersection(
    a: np.ndarray,
    b: np.ndarray,
    L1: np.ndarray,
    C1: np.ndarray,
    L0: np.ndarray,
    cusp: tuple[np.ndarray, np.ndarray],
    steps: int = 1,
) -> np.ndarray:
    """t in [0, 1] where the line from (L0, 0) to (L1, C1) leaves the gamut, per hue."""
    Lc, Cc = cusp
    lower = (L1 - L0) * Cc - (Lc - L0) * C1 <= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        t_low = Cc * L0 / (C1 * Lc + Cc * (L0 - L1))
        t = np.where(lower, t_low, Cc * (L0 - 1) / (C1 * (Lc - 1) + Cc * (L0 - L1)))
        dL, dC = L1 - L0, C1
        kl, km, ks = _k_lms(a, b)
        ldt, mdt, sdt = dL + dC * kl, dL + dC * km, dL + dC * ks
        for _ in range(steps):  # Halley steps toward the upper gamut surface
            L = L0 * (1 - t) + t * L1
            C = t * C1
            l_, m_, s_ = L + C * kl, L + C * km, L + C * ks
            lms = np.stack([l_**3, m_**3, s_**3], -1)
            d1 = np.stack([3 * ldt * l_**2, 3 * mdt * m_**2, 3 * sdt * s_**2], -1)
            d2 = np.stack([6 * ldt**2 * l_, 6 * mdt**2 * m_, 6 * sdt**2 * s_], -1)
            f = lms @ _LMS_TO_RGB.T - 1
            f1 = d1 @ _LMS_TO_RGB.T
            f2 = d2 @ _LMS_TO_RGB.T
            u = f1 / (f1 * f1 - 0.5 * f * f2)
            step = np.where(u >= 0, -f * u, _BIG).min(axis=-1)
            t = np.where(lower, t, t + step)
    return np.nan_to_num(t, nan=0.0, posinf=0.0, neginf=0.0)


def _hue_units(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    C = np.hypot(lab[..., 1], lab[..., 2])
    safe = np.where(C > 1e-12, C, 1.0)
    a = np.where(C > 1e-12, lab[..., 1] / safe, 1.0)
    b = np.where(C > 1e-12, lab[..., 2] / safe, 0.0)
    return C, a, b


def gamut_clip(lin: np.ndarray, alpha: float = 0.05, steps: int = 1) -> np.ndarray:
    """Bring linear sRGB colours outside [0, 1] to the gamut edge along a line toward a
    lightness between theirs and 0.5 (Ottosson's adaptive L0 = 0.5 clip)."""
    outside = np.any((lin < 0) | (lin > 1), axis=-1)
    if not outside.any():
        return lin
    lab = oklab_from_linear(lin[outside])
    L = lab[..., 0]
    C, a, b = _hue_units(lab)
    C = np.maximum(C, 1e-5)
    Ld = L - 0.5
    e1 = 0.5 + np.abs(Ld) + alpha * C
    L0 = 0.5 * (1 + np.sign(Ld) * (e1 - np.sqrt(np.maximum(e1 * e1 - 2 * np.abs(Ld), 0))))
    t = _gamut_intersection(a, b, L, C, L0, _cusp(a, b, steps), steps)
    Lc, Cc = L0 * (1 - t) + t * L, t * C
    out = lin.copy()
    out[outside] = linear_from_oklab(_lab(Lc, Cc * a, Cc * b))
    return out


_K1, _K2 = 0.206, 0.03
_K3 = (1 + _K1) / (1 + _K2)


def _toe(x: np.ndarray) -> np.ndarray:
    """Oklab L -> a lightness closer to CIELab's L* (Okhsl's l, Okhsv's v)."""
    y = _K3 * x - _K1
    return 0.5 * (y + np.sqrt(y * y + 4 * _K2 * _K3 * x))


def _toe_inv(x: np.ndarray) -> np.ndarray:
    return (x * x + _K1 * x) / (_K3 * (x + _K2))


def _st_mid(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A smooth approximation of the cusp's (S, T) used for Okhsl's mid saturation."""
    S = 0.11516993 + 1 / (
        7.44778970
        + 4.15901240 * b
        + a
        * (
            -2.19557347
            + 1.75198401 * b
            + a
            * (-2.13704948 - 10.02301043 * b + a * (-4.24894561 + 5.38770819 * b + 4.69891013 * a))
        )
    )
    T = 0.11239642 + 1 / (
        1.61320320
        - 0.68124379 * b
        + a
        * (
            0.40370612
            + 0.90148123 * b
            + a
            * (-0.27087943 + 0.61223990 * b + a * (0.00299215 - 0.45399568 * b - 0.14661872 * a))
        )
    )
    return S, T


def _chromas(L: np.ndarray, a: np.ndarray, b: np.ndarray, steps: int) -> tuple[np.ndarray, ...]:
    """Okhsl's three reference chromas for lightness L and hue: C0 (low saturation), C_mid
    (s = 0.8) and C_max (the gamut edge)."""
    cusp = _cusp(a, b, steps)
    C_max = _gamut_intersection(a, b, L, np.ones_like(L), L, cusp, steps)
    S_max, T_max = cusp[1] / cusp[0], cusp[1] / (1 - cusp[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        k = C_max / np.minimum(L * S_max, (1 - L) * T_max)
        S_mid, T_mid = _st_mid(a, b)
        Ca, Cb = L * S_mid, (1 - L) * T_mid
        C_mid = 0.9 * k * np.sqrt(np.sqrt(1 / (1 / Ca**4 + 1 / Cb**4)))
        Ca, Cb = L * 0.4, (1 - L) * 0.8
        C_0 = np.sqrt(1 / (1 / Ca**2 + 1 / Cb**2))
    return C_0, C_mid, C_max


_MID, _MID_INV = 0.8, 1.25


def okhsl_from_srgb(rgb: np.ndarray, steps: int = 1) -> np.ndarray:
    """sRGB (..., 3) in [0, 1] -> Okhsl (h, s, l) in [0, 1]."""
    lab = oklab_from_linear(linear_from_srgb(rgb))
    L = lab[..., 0]
    C, a, b = _hue_units(lab)
    h = 0.5 + 0.5 * np.arctan2(-lab[..., 2], -lab[..., 1]) / np.pi
    C_0, C_mid, C_max = _chromas(L, a, b, steps)
    with np.errstate(divide="ignore", invalid="ignore"):
        k1 = _MID * C_0
        k2 = 1 - k1 / C_mid
        s_low = C / (k1 + k2 * C) * _MID
        k1h = (1 - _MID) * C_mid**2 * _MID_INV**2 / C_0
        k2h = 1 - k1h / (C_max - C_mid)
        t = (C - C_mid) / (k1h + k2h * (C - C_mid))
        s = np.where(C_mid > C, s_low, _MID + (1 - _MID) * t)
    s = np.nan_to_num(np.where(C > 1e-12, s, 0.0))
    return np.stack([h, s, _toe(L)], axis=-1)


def srgb_from_okhsl(hsl: np.ndarray, alpha: float = 0.0, steps: int = 1) -> np.ndarray:
    """Okhsl (h, s, l) -> sRGB in [0, 1] (``alpha`` > 0: adaptive gamut clip first)."""
    h, s, lig = np.moveaxis(hsl, -1, 0)
    a, b = np.cos(2 * np.pi * h), np.sin(2 * np.pi * h)
    L = _toe_inv(lig)
    C_0, C_mid, C_max = _chromas(L, a, b, steps)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = _MID_INV * s
        k1 = _MID * C_0
        k2 = 1 - k1 / C_mid
        C_low = t * k1 / (1 - k2 * t)
        t = (s - _MID) / (1 - _MID)
        k1h = (1 - _MID) * C_mid**2 * _MID_INV**2 / C_0
        k2h = 1 - k1h / (C_max - C_mid)
        C = np.where(s < _MID, C_low, C_mid + t * k1h / (1 - k2h * t))
    C = np.nan_to_num(np.where((lig > 0) & (lig < 1), C, 0.0))
    lin = linear_from_oklab(_lab(L, C * a, C * b))
    lin = np.where((lig >= 1)[..., None], 1.0, np.where((lig <= 0)[..., None], 0.0, lin))
    if alpha > 0:
        lin = gamut_clip(lin, alpha, steps)
    return srgb_from_linear(lin)


_S0 = 0.5


def okhsv_from_srgb(rgb: np.ndarray, steps: int = 1) -> np.ndarray:
    """sRGB (..., 3) in [0, 1] -> Okhsv (h, s, v) in [0, 1]."""
    lab = oklab_from_linear(linear_from_srgb(rgb))
    L = lab[..., 0]
    C, a, b = _hue_units(lab)
    h = 0.5 + 0.5 * np.arctan2(-lab[..., 2], -lab[..., 1]) / np.pi
    Lc, Cc = _cusp(a, b, steps)
    S_max, T_max = Cc / Lc, Cc / (1 - Lc)
    k = 1 - _S0 / S_max
    with np.errstate(divide="ignore", invalid="ignore"):
        t = T_max / (C + L * T_max)
        L_v, C_v = t * L, t * C
        L_vt = _toe_inv(L_v)
        C_vt = C_v * L_vt / L_v
        scale = linear_from_oklab(_lab(L_vt, a * C_vt, b * C_vt))
        scale_L = np.cbrt(1 / np.maximum(scale.max(axis=-1), 0))
        L, C = L / scale_L, C / scale_L
        C = C * _toe(L) / L
        v = _toe(L) / L_v
        s = (_S0 + T_max) * C_v / (T_max * _S0 + T_max * k * C_v)
    return np.nan_to_num(np.stack([h, s, v], axis=-1))


def srgb_from_okhsv(hsv: np.ndarray, alpha: float = 0.0, steps: int = 1) -> np.ndarray:
    """Okhsv (h, s, v) -> sRGB in [0, 1]."""
    h, s, v = np.moveaxis(hsv, -1, 0)
    a, b = np.cos(2 * np.pi * h), np.sin(2 * np.pi * h)
    Lc, Cc = _cusp(a, b, steps)
    S_max, T_max = Cc / Lc, Cc / (1 - Lc)
    k = 1 - _S0 / S_max
    with np.errstate(divide="ignore", invalid="ignore"):
        L_v = 1 - s * _S0 / (_S0 + T_max - T_max * k * s)
        C_v = s * T_max * _S0 / (_S0 + T_max - T_max * k * s)
        L, C = v * L_v, v * C_v
        L_vt = _toe_inv(L_v)
        C_vt = C_v * L_vt / L_v
        L_new = _toe_inv(L)
        C = C * L_new / L
        L = L_new
        scale = linear_from_oklab(_lab(L_vt, a * C_vt, b * C_vt))
        scale_L = np.cbrt(1 / np.maximum(scale.max(axis=-1), 0))
    L, C = np.nan_to_num(L * scale_L), np.nan_to_num(C * scale_L)
    lin = linear_from_oklab(_lab(L, C * a, C * b))
    if alpha > 0:
        lin = gamut_clip(lin, alpha, steps)
    return srgb_from_linear(lin)
