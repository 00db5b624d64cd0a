"""InvokeAI 6.11's default "Face Detailer with IP-Adapter & Canny" workflow imports with every
node and edge and runs on the tiny SD1 models: FaceOff finds the face of a real photo
(MediaPipe's face landmarker), the crop is re-denoised with a ControlNet on its Canny edges
and a full-face IP-Adapter, and pasted back through the blurred face mask, the rest of the
picture untouched. Only sizes and steps are made small; every node and edge runs."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import invoke_nb as inb
from invoke_nb.models.local import LocalModels
from invoke_nb.testing.faces import face_landmarker_bundle
from shared_paths import INVOKEAI_WORKFLOWS

from .conftest import cident

WORKFLOW = INVOKEAI_WORKFLOWS / "Face Detailer with IP-Adapter & Canny (See Note in Details).json"
PHOTO = Path(__file__).parents[1] / "fixtures" / "faces" / "astronaut-face.jpg"


def _picture() -> Image.Image:
    """The photo on a larger grey canvas, so the face crop does not cover the picture."""
    canvas = Image.new("RGB", (384, 384), (90, 90, 90))
    canvas.paste(Image.open(PHOTO), (64, 64))
    return canvas


def _blur_mask(size: int = 256) -> Image.Image:
    """What the workflow's note asks for: black in the middle, white at the border."""
    yy, xx = np.mgrid[:size, :size] / (size - 1) - 0.5
    r = np.clip(np.hypot(xx, yy) * 2.4, 0, 1)
    return Image.fromarray((r * 255).astype(np.uint8), "L")


def _by_type(raw: dict, type_id: str) -> list[str]:
    return [n["id"] for n in raw["nodes"] if n.get("data", {}).get("type") == type_id]


def test_face_detailer_imports_and_runs_on_tiny_models(cmodels: LocalModels) -> None:
    if not WORKFLOW.exists():
        pytest.skip(f"{WORKFLOW} is not on this machine")
    bundle, why = face_landmarker_bundle()
    if bundle is None:
        pytest.skip(why)
    if not cmodels.store.list(type="face_landmarker"):
        cmodels.register(bundle, name="face-landmarker", base="any", type="face_landmarker")
    raw = json.loads(WORKFLOW.read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # canny_image_processor is read as its successor
        g = inb.load_workflow(WORKFLOW)
    assert len(g.nodes) == sum(n["type"] == "invocation" for n in raw["nodes"])
    assert len(g.edges) == sum(e["type"] == "default" for e in raw["edges"])
    # every node and edge survives our JSON and InvokeAI's format
    assert inb.Graph.from_json(g.to_json()).to_json() == g.to_json()

    (loader,) = _by_type(raw, "main_model_loader")
    (control,) = _by_type(raw, "controlnet")
    (ip,) = _by_type(raw, "ip_adapter")
    (face_off,) = _by_type(raw, "face_off")
    (paste,) = _by_type(raw, "img_paste")
    (source,) = _by_type(raw, "image")
    (denoise,) = _by_type(raw, "denoise_latents")
    picture = _picture()
    g.set(loader, model=cident(cmodels, "tiny-sd1"))
    g.set(control, control_model=cident(cmodels, "cn-sd1-a"))
    g.set(ip, ip_adapter_model=cident(cmodels, "ip-sd1-full"))
    g.set(source, image=picture)
    g.set(denoise, steps=4)
    for nid, prompt in zip(_by_type(raw, "compel"), ("a detailed face", "blurry"), strict=True):
        g.set(nid, prompt=prompt)
    fed = {(e.destination.node_id, e.destination.field) for e in g.edges}
    for nid in _by_type(raw, "img_resize"):
        if (nid, "width") not in fed:  # the crop's resize before encoding: 512 -> 64
            g.set(nid, width=64, height=64)
        if (nid, "image") not in fed:  # the exposed blur-mask image
            g.set(nid, image=_blur_mask())

    r = inb.Runner(services=inb.Services(models=cmodels)).run(g)
    assert set(r.executed) == set(g.nodes)  # every node ran
    crop = r.outputs[face_off]
    # the face was found: a square crop of the face plus margin (padding 64), inside
    assert 200 <= crop.width == crop.height < 384 and crop.width % 8 == 0
    assert crop.x > 0 and crop.y > 0 and crop.x + crop.width <= 384
    assert abs(crop.x + crop.width / 2 - (64 + 128)) < 12  # centred on the face
    out = np.asarray(r.value(r.outputs[paste].image).convert("RGB")).astype(int)
    before = np.asarray(picture).astype(int)
    assert out.shape == before.shape
    inside = np.zeros(out.shape[:2], bool)
    inside[crop.y : crop.y + crop.height, crop.x : crop.x + crop.width] = True
    assert np.abs(out - before)[~inside].max() == 0  # outside the crop: untouched
    changed = np.abs(out - before).sum(-1) > 6
    assert changed[inside].mean() > 0.2  # the face was redrawn
    cy, cx = crop.y + crop.height // 2, crop.x + crop.width // 2
    assert changed[cy - 8 : cy + 8, cx - 8 : cx + 8].all()  # most at its centre
