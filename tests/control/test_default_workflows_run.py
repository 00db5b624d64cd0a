"""InvokeAI 6.11's default control and upscaling workflows run on tiny models: each file is
imported as it is, its model fields are pointed at tiny models installed in a Studio, its
sizes and step counts shrunk, and the run must land an image in the catalog."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import invoke_nb as inb
from invoke_nb.studio import Studio
from invoke_nb.testing.tiny_depth import make_depth_anything
from invoke_nb.testing.tiny_upscale import make_esrgan
from shared_paths import INVOKEAI_WORKFLOWS

DEPTH_REPO = "depth-anything/Depth-Anything-V2-Small-hf"


@pytest.fixture(scope="module")
def wstudio(
    tmp_path_factory: pytest.TempPathFactory, tiny_sd1: Path, tiny_sdxl: Path, cmodels
) -> Iterator[Studio]:
    root = tmp_path_factory.mktemp("control-workflows")
    s = Studio(root / "studio")
    s.models.install(str(tiny_sd1), name="tiny-sd1", in_place=True)
    s.models.install(str(tiny_sdxl), name="tiny-sdxl", in_place=True)
    s.models.install(str(tiny_sdxl / "vae"), name="tiny-sdxl-vae", in_place=True)
    for name in ("cn-sd1-a", "cn-sd1-b", "cn-sdxl", "ip-sd1-plain", "ip_adapter_sd_image_encoder"):
        s.models.install(cmodels.store.list(name=name)[0].path, name=name, in_place=True)
    x2 = make_esrgan(root / "RealESRGAN_x2plus.safetensors", layout="realesrgan", scale=2)
    s.models.install(str(x2), name="RealESRGAN_x2plus", in_place=True)
    depth = make_depth_anything(root / "depth")
    s.models.install(str(depth), name=DEPTH_REPO, in_place=True)
    yield s
    s.close()


def _photo(size: int = 32) -> Image.Image:
    rng = np.random.default_rng(7)
    arr = np.zeros((size, size, 3), np.uint8)
    arr[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = (220, 60, 40)
    arr += rng.integers(0, 30, arr.shape, dtype=np.uint8)
    return Image.fromarray(arr)


def _shrink(s: Studio, g: inb.Graph, sdxl: bool) -> None:
    """Point model fields at the tiny models and make every size and step count small."""
    ident = s._model
    fed = {(e.destination.node_id, e.destination.field) for e in g.edges}
    cn = ident("cn-sdxl" if sdxl else "cn-sd1-a")
    for nid, spec in g.nodes.items():
        t = spec.type
        if t == "main_model_loader":
            g.set(nid, model=ident("tiny-sd1"))
        elif t == "sdxl_model_loader":
            g.set(nid, model=ident("tiny-sdxl"))
        elif t == "vae_loader":
            g.set(nid, vae_model=ident("tiny-sdxl-vae"))
        elif t == "controlnet":
            g.set(nid, control_model=cn)
        elif t == "ip_adapter":
            g.set(nid, ip_adapter_model=ident("ip-sd1-plain"))
        elif t == "model_identifier":  # the tile ControlNet of the MultiDiffusion files
            g.set(nid, model=cn)
        elif t == "spandrel_image_to_image_autoscale":
            g.set(nid, image_to_image_model=ident("RealESRGAN_x2plus"), tile_size=0)
        elif t == "denoise_latents":
            g.set(nid, steps=2)
        elif t == "tiled_multi_diffusion_denoise_latents":
            g.set(nid, steps=2, tile_width=32, tile_height=32, tile_overlap=16)
        elif t == "noise":  # fixed 512 px in "Multi ControlNet"; others take the image's size
            g.set(nid, **{f: 64 for f in ("width", "height") if (nid, f) not in fed})
        elif t == "merge_tiles_to_image":  # the seam must fit the overlap of small tiles
            g.set(nid, blend_amount=4)
        elif t == "esrgan":
            g.set(nid, tile_size=0)
        wants_image = "image" in spec.cls.input_fields() and (nid, "image") not in fed
        if wants_image and spec.values.get("image") is None:  # the workflow's input image
            g.set(nid, image=_photo())


@pytest.mark.parametrize(
    "name",
    [
        "ESRGAN Upscaling with Canny ControlNet",
        "MultiDiffusion SD1.5",
        "MultiDiffusion SDXL",
        "Multi ControlNet (Canny & Depth)",
        "Tiled Upscaling (Beta)",
    ],
)
def test_default_control_workflow_runs_on_tiny_models(wstudio: Studio, name: str) -> None:
    path = INVOKEAI_WORKFLOWS / f"{name}.json"
    if not path.exists():
        pytest.skip(f"{path} is not on this machine")
    raw = json.loads(path.read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # legacy processor ids are read as their successors
        g = inb.load_workflow(path)
    assert len(g.nodes) == sum(n["type"] == "invocation" for n in raw["nodes"])
    _shrink(wstudio, g, sdxl="SDXL" in name)
    before = len(wstudio.images.list())
    result = wstudio.run(g, progress=False)
    assert result.image is not None, name
    assert result.image.pil.size == (64, 64)  # the 32 px input upscaled x2, or the noise size
    assert np.asarray(result.image.pil.convert("RGB")).std() > 1
    assert len(wstudio.images.list()) >= before + 1  # it landed in the catalog
