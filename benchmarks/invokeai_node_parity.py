"""Our image nodes vs InvokeAI 6.11.1's own invocation classes on the same inputs.

    PYTHONPATH=src .venv/bin/python -m benchmarks.invokeai_node_parity \
        [--invokeai-python /work/ext/invokeai-6.11.1/bin/python] [--all-blends]

Each case runs one of our nodes here, then the InvokeAI class of the same id in InvokeAI's
venv (a subprocess with a minimal stand-in for its context: images in and out as PNG
files), and prints the largest pixel difference (0 = identical).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageCms

_RUN_INVOKEAI = r"""
import importlib, json, sys
from types import SimpleNamespace
from PIL import Image, ImageCms
import invokeai.app.invocations as pkg
from invokeai.app.invocations.baseinvocation import InvocationRegistry
for stem in pkg.__all__:
    importlib.import_module(f"invokeai.app.invocations.{stem}")
folder, cases = sys.argv[1], json.loads(sys.argv[2])

class Images:
    def get_pil(self, name, mode=None):
        im = Image.open(f"{folder}/{name}.png"); im.load()
        return im.convert(mode) if mode else im
    def save(self, image, **kw):
        image.save(f"{folder}/out-{self.case}.png")
        return SimpleNamespace(image_name="out", width=image.width, height=image.height)

for i, (type_id, values) in enumerate(cases):
    images = Images(); images.case = i
    ctx = SimpleNamespace(images=images, logger=SimpleNamespace(debug=print, info=print, warning=print))
    cls = InvocationRegistry.get_invocation_for_type(type_id)
    cls(id="n", **values).invoke(ctx)
print("done")
"""


def _cases(rng: np.random.Generator) -> tuple[dict[str, Image.Image], list[tuple[str, dict]]]:
    yy, xx = np.mgrid[0:64, 0:64]
    photo = np.stack([xx * 4, yy * 4, (xx + yy) * 2], -1).astype(np.uint8)
    photo = np.clip(photo.astype(int) + rng.integers(-20, 20, photo.shape), 0, 255).astype(np.uint8)
    inputs = {
        "photo": Image.fromarray(photo),
        "grey": Image.fromarray(photo[..., 0]),
        "subject": Image.new("RGB", (48, 64), (0, 255, 0)),
        "mask": Image.new("RGB", (64, 64), (0, 0, 0)),
    }
    inputs["big"] = inputs["photo"].resize((256, 256))
    # blend layers: a colour sweep over the photo, one half-transparent, a soft mask
    upper = np.stack([255 - xx * 4, (xx * yy) % 256, yy * 4], -1).astype(np.uint8)
    inputs["upper"] = Image.fromarray(upper)
    alpha = np.clip(xx * 5, 0, 255).astype(np.uint8)
    inputs["upper_rgba"] = Image.fromarray(np.dstack([upper, alpha]), "RGBA")
    inputs["soft_mask"] = Image.fromarray(np.clip(yy * 6 - 60, 0, 255).astype(np.uint8))
    edges = np.zeros((40, 40, 3), np.uint8)  # a one-pixel edge map (heuristic_resize thins it)
    edges[5:35, 20] = 255
    edges[10, 5:35] = 255
    inputs["edges"] = Image.fromarray(edges)
    inputs["subject"].paste((200, 30, 30), (10, 10, 38, 54))
    inputs["mask"].paste((255, 255, 255), (8, 12, 40, 50))
    img = {"image_name": "photo"}
    cases = [
        ("invokeai_img_enhance", {"image": img, "contrast": 1.4, "brightness": 0.9, "color": 1.2}),
        ("invokeai_img_enhance", {"image": img, "invert": True, "sharpness": 2.0}),
        (
            "invokeai_img_val_thresholds",
            {"image": img, "threshold_lower": 0.3, "threshold_upper": 0.6},
        ),
        (
            "invokeai_img_val_thresholds",
            {
                "image": img,
                "threshold_lower": 0.3,
                "threshold_upper": 0.6,
                "renormalize_values": True,
                "lightness_only": True,
            },
        ),
        (
            "invokeai_img_dilate_erode",
            {"image": {"image_name": "grey"}, "radius_w": 3, "radius_h": 2},
        ),
        ("invokeai_img_dilate_erode", {"image": img, "mode": "Erode", "lightness_only": True}),
        ("invokeai_ealightness", {"image": img}),
        (
            "invokeai_img_composite",
            {
                "image_subject": {"image_name": "subject"},
                "image_background": img,
                "chroma_key": "#00ff00",
                "threshold": 30,
                "x_offset": 3,
                "y_offset": 2,
            },
        ),
        (
            "invokeai_img_composite",
            {"image_subject": {"image_name": "subject"}, "image_background": img, "fill_x": True},
        ),
        (
            "canvas_v2_mask_and_crop",
            {
                "generated_image": img,
                "source_image": {"image_name": "grey"},
                "mask": {"image_name": "mask"},
                "mask_blur": 3,
            },
        ),
        ("crop_image_to_bounding_box", {"image": {"image_name": "mask"}}),
        ("img_watermark", {"image": {"image_name": "big"}, "text": "InvokeAI"}),
        ("heuristic_resize", {"image": {"image_name": "edges"}, "width": 97, "height": 83}),
        ("heuristic_resize", {"image": {"image_name": "mask"}, "width": 150, "height": 120}),
        ("heuristic_resize", {"image": img, "width": 40, "height": 30}),
        *(
            ("invokeai_img_hue_adjust_plus", {"image": img, "space": space, "degrees": deg})
            for space, deg in (
                ("HSV / HSL / RGB", 60.0),
                ("Okhsl", 90.0),
                ("Okhsv", 120.0),
                ("*Oklch / Oklab", 45.0),
                ("*LCh / CIELab", 30.0),
            )
        ),
        (
            "invokeai_img_hue_adjust_plus",
            {"image": img, "space": "Okhsl", "degrees": 200.0, "preserve_lightness": True},
        ),
        (
            "invokeai_img_hue_adjust_plus",
            {
                "image": img,
                "space": "*Oklch / Oklab",
                "degrees": 170.0,
                "ok_adaptive_gamut": 0.5,
                "ok_high_precision": False,
            },
        ),
        *_blend_cases(),
    ]
    return inputs, cases


BLEND_MODES = (
    "Normal",
    "Lighten Only",
    "Darken Only",
    "Lighten Only (EAL)",
    "Darken Only (EAL)",
    "Hue",
    "Saturation",
    "Color",
    "Luminosity",
    "Linear Dodge (Add)",
    "Subtract",
    "Multiply",
    "Divide",
    "Screen",
    "Overlay",
    "Linear Burn",
    "Difference",
    "Hard Light",
    "Soft Light",
    "Vivid Light",
    "Linear Light",
    "Color Burn",
    "Color Dodge",
)
BLEND_SPACES = (
    "RGB",
    "Linear RGB",
    "HSL (RGB)",
    "HSV (RGB)",
    "Okhsl",
    "Okhsv",
    "Oklch (Oklab)",
    "LCh (CIELab)",
)


def _all_blend_cases() -> list[tuple[str, dict]]:
    """Every blend mode in every colour space; upper RGBA at opacity 0.7 with a mask on
    every other one."""
    cases = []
    for i, mode in enumerate(BLEND_MODES):
        for j, space in enumerate(BLEND_SPACES):
            values: dict[str, Any] = {
                "layer_upper": {"image_name": "upper_rgba" if (i + j) % 2 else "upper"},
                "layer_base": {"image_name": "photo"},
                "blend_mode": mode,
                "color_space": space,
            }
            if (i + j) % 2:
                values["opacity"] = 0.7
                values["mask"] = {"image_name": "soft_mask"}
            cases.append(("invokeai_img_blend", values))
    return cases


def _blend_cases() -> list[tuple[str, dict]]:
    """Every blend mode in two colour spaces (cycling through all eight), alternately with
    an RGBA upper layer plus opacity, and with a mask; and a few with gamut clipping."""
    cases = []
    for i, mode in enumerate(BLEND_MODES):
        for j in range(2):
            space = BLEND_SPACES[(2 * i + j) % len(BLEND_SPACES)]
            values: dict[str, Any] = {
                "layer_upper": {"image_name": "upper_rgba" if j else "upper"},
                "layer_base": {"image_name": "photo"},
                "blend_mode": mode,
                "color_space": space,
            }
            if j:
                values["opacity"] = 0.7
            if (i + j) % 2:
                values["mask"] = {"image_name": "soft_mask"}
            cases.append(("invokeai_img_blend", values))
    cases.append(
        (
            "invokeai_img_blend",
            {
                "layer_upper": {"image_name": "upper_rgba"},
                "layer_base": {"image_name": "photo_icc"},
                "blend_mode": "Overlay",
                "color_space": "RGB",
            },
        )
    )
    for space in ("Okhsl", "Oklch (Oklab)", "RGB"):
        cases.append(
            (
                "invokeai_img_blend",
                {
                    "layer_upper": {"image_name": "upper"},
                    "layer_base": {"image_name": "photo"},
                    "blend_mode": "Linear Dodge (Add)",
                    "color_space": space,
                    "adaptive_gamut": 0.3,
                    "high_precision": False,
                },
            )
        )
    return cases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--invokeai-python", default="/work/ext/invokeai-6.11.1/bin/python")
    ap.add_argument(
        "--all-blends",
        action="store_true",
        help="instead: invokeai_img_blend in every mode and colour space (184 cases)",
    )
    args = ap.parse_args()
    import invoke_nb as inb

    folder = Path(tempfile.mkdtemp(prefix="parity-"))
    inputs, cases = _cases(np.random.default_rng(0))
    if args.all_blends:
        cases = _all_blend_cases()
    for name, im in inputs.items():
        im.save(folder / f"{name}.png")
    # a base with an embedded ICC profile (sRGB): the blend converts and restores it (other
    # pixels than "photo": images are stored by content, and the profile is not content)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    flipped = inputs["photo"].transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    flipped.save(folder / "photo_icc.png", icc_profile=srgb)
    ours: list[np.ndarray] = []
    for type_id, values in cases:
        g = inb.Graph()
        lit: dict[str, Any] = {
            k: (Image.open(folder / f"{v['image_name']}.png") if isinstance(v, dict) else v)
            for k, v in values.items()
        }
        g.add(type_id, id="n", **lit)
        r = inb.run(g)
        ours.append(np.asarray(r.value(r.outputs["n"].image)))
    proc = subprocess.run(
        [args.invokeai_python, "-c", _RUN_INVOKEAI, str(folder), json.dumps(cases)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        print(proc.stderr[-3000:])
        raise SystemExit("InvokeAI side failed")
    same = 0
    for i, (type_id, values) in enumerate(cases):
        theirs = np.asarray(Image.open(folder / f"out-{i}.png"))
        if theirs.shape != ours[i].shape:
            print(f"{type_id:32s} shape ours {ours[i].shape} InvokeAI {theirs.shape}")
            continue
        diff = int(np.abs(theirs.astype(int) - ours[i].astype(int)).max())
        same += diff == 0
        extra = ", ".join(
            f"{k}={v}" if k in ("blend_mode", "color_space", "opacity") else k
            for k, v in values.items()
            if k not in ("image", "layer_upper", "layer_base")
        )
        delta = np.abs(theirs.astype(int) - ours[i].astype(int))
        off = int((delta.reshape(*delta.shape[:2], -1).max(-1) > 0).sum())
        print(f"{type_id:28s} max |diff| {diff:3d} ({off:4d} px)  ({extra})")
    print(f"{same} of {len(cases)} cases pixel-identical to InvokeAI 6.11.1")


if __name__ == "__main__":
    main()
