"""Image-to-image nodes on tiny random ESRGAN / Real-ESRGAN files installed through the
model manager: the node's output equals the spandrel model called directly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import invoke_nb as inb
from invoke_nb.models.load_spandrel import load_spandrel_state_dict

FIX = Path(__file__).parents[1] / "fixtures"


def _picture(w: int = 40, h: int = 32) -> Image.Image:
    src = Image.open(FIX / "invokeai" / "invokeai-euler-seed42.png").convert("RGB")
    return src.crop((0, 0, w, h))


def _direct(path: Path, image: Image.Image) -> np.ndarray:
    """The spandrel model called directly, as InvokeAI converts images in and out."""
    model = load_spandrel_state_dict(load_file(str(path)))
    x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    with torch.no_grad():
        y = model(x)[0].permute(1, 2, 0).clamp(0, 1)
    return (y * 255).to(torch.uint8).numpy()


def _one(run: Any, type_id: str, **values: Any) -> tuple[Any, np.ndarray]:
    g = inb.Graph()
    g.add(type_id, id="n", **values)
    r = run(g)
    out = r.outputs["n"]
    return out, np.asarray(r.value(out.image))


def test_probe_and_record(manager: Any) -> None:
    recs = {r.name: r for r in manager.list(type="spandrel_image_to_image")}
    assert set(recs) == {"RealESRGAN_x4plus", "esrgan-x2", "tiny-lama"}
    assert recs["esrgan-x2"].base == "any"


@pytest.mark.parametrize("layout", ["realesrgan", "esrgan"])
def test_untiled_equals_spandrel_directly(
    run: Any, x4: Any, x2: Any, upscale_files: dict, layout: str
) -> None:
    image = _picture()
    model, scale = (x4, 4) if layout == "realesrgan" else (x2, 2)
    out, arr = _one(
        run, "spandrel_image_to_image", image=image, image_to_image_model=model, tile_size=0
    )
    assert (out.width, out.height) == (40 * scale, 32 * scale)
    expected = _direct(upscale_files[layout], image)
    assert np.abs(arr.astype(int) - expected.astype(int)).max() <= 1
    assert arr.std() > 0.5  # not a flat image


def test_tiled_matches_untiled_away_from_tile_borders(run: Any, x4: Any) -> None:
    image = _picture(64, 48)
    _, whole = _one(
        run, "spandrel_image_to_image", image=image, image_to_image_model=x4, tile_size=0
    )
    _, tiled = _one(
        run, "spandrel_image_to_image", image=image, image_to_image_model=x4, tile_size=32
    )
    assert tiled.shape == whole.shape == (192, 256, 3)
    # the tiny net sees a few pixels around each output pixel: inside a tile they agree
    assert np.abs(tiled[:40, :40].astype(int) - whole[:40, :40].astype(int)).max() <= 1
    assert np.abs(tiled.astype(int) - whole.astype(int)).mean() < 2


def test_autoscale_repeats_then_resizes(run: Any, x2: Any) -> None:
    image = _picture(20, 16)
    out, _arr = _one(
        run,
        "spandrel_image_to_image_autoscale",
        image=image,
        image_to_image_model=x2,
        scale=3.0,
        tile_size=0,
    )
    assert (out.width, out.height) == (60, 48)  # two x2 passes (80x64), then resized down
    out, _ = _one(
        run,
        "spandrel_image_to_image_autoscale",
        image=image,
        image_to_image_model=x2,
        scale=3.0,
        fit_to_multiple_of_8=True,
    )
    assert (out.width, out.height) == (56, 48)


def test_esrgan_uses_the_installed_file_and_names_a_missing_one(
    run: Any, upscale_files: dict
) -> None:
    image = _picture()
    out, arr = _one(run, "esrgan", image=image, model_name="RealESRGAN_x4plus.pth", tile_size=0)
    assert (out.width, out.height) == (160, 128) and arr.shape[2] == 4
    expected = _direct(upscale_files["realesrgan"], image)
    assert np.abs(arr[..., :3].astype(int) - expected.astype(int)).max() <= 1
    with pytest.raises(Exception, match=r"node 'n'.*RealESRGAN_x2plus.pth.*not installed"):
        _one(run, "esrgan", image=image, model_name="RealESRGAN_x2plus.pth")


def test_the_record_decides_the_model_type(run: Any, manager: Any) -> None:
    from invoke_nb.models.local import identifier

    rec = manager.list(name="esrgan-x2")[0]
    fake = identifier(rec).model_copy(update={"type": "main"})
    # the record decides, not what the identifier claims
    _, arr = _one(run, "spandrel_image_to_image", image=_picture(), image_to_image_model=fake)
    assert arr.shape == (64, 80, 3)
