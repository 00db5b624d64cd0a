"""Infill nodes: PatchMatch copies the picture's own patches into the hole, LaMa equals its
network called directly, cv_inpaint equals OpenCV's Telea inpainting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import invoke_nb as inb
from invoke_nb.models.load_lama import lama_from_state_dict

SRC = Path(__file__).parents[1] / "fixtures" / "invokeai" / "invokeai-euler-seed42.png"


def _holed(w: int = 64, h: int = 64) -> Image.Image:
    img = Image.open(SRC).convert("RGBA").resize((w, h))
    a = np.asarray(img).copy()
    a[20:36, 24:44, 3] = 0
    return Image.fromarray(a, "RGBA")


def _one(run: Any, type_id: str, **values: Any) -> tuple[Any, np.ndarray]:
    g = inb.Graph()
    g.add(type_id, id="n", **values)
    r = run(g)
    out = r.outputs["n"]
    return out, np.asarray(r.value(out.image))


def test_patchmatch_fills_the_hole_from_the_picture(run: Any) -> None:
    stripes = np.zeros((48, 48, 4), np.uint8)
    stripes[..., 3] = 255
    stripes[:, ::4, :3] = (250, 10, 10)  # red columns every 4 px on black
    stripes[16:32, 16:32, 3] = 0
    stripes[16:32, 16:32, :3] = (0, 255, 0)  # the hidden colour must not come back
    img = Image.fromarray(stripes, "RGBA")
    _, arr = _one(run, "infill_patchmatch", image=img, downscale=1.0)
    hole = arr[16:32, 16:32, :3].reshape(-1, 3).astype(int)
    assert arr.shape == (48, 48, 3)  # RGB, as InvokeAI returns it
    assert np.array_equal(arr[:16, :, :3], stripes[:16, :, :3])  # opaque part kept
    assert hole[:, 1].max() < 60  # no green: every fill pixel is red or black
    assert (hole[:, 0] > 128).mean() > 0.1 and (hole[:, 0] < 60).mean() > 0.3
    _, small = _one(run, "infill_patchmatch", image=img)  # downscale 2, then enlarged
    assert small.shape == arr.shape


def test_infill_passes_an_image_without_alpha_through(run: Any) -> None:
    rgb = Image.open(SRC).convert("RGB")
    _out, arr = _one(run, "infill_patchmatch", image=rgb)
    assert np.array_equal(arr, np.asarray(rgb))


def test_lama_equals_the_network_called_directly(run: Any, upscale_files: dict) -> None:
    img = _holed(60, 44)  # not a multiple of 8: padded, then cropped
    _, arr = _one(run, "infill_lama", image=img)
    net = lama_from_state_dict(load_file(str(upscale_files["lama"])))
    a = np.asarray(img)
    rgb = np.pad(a[..., :3], ((0, 4), (0, 4), (0, 0)), mode="reflect")
    hole = np.pad(a[..., 3] < 255, ((0, 4), (0, 4)), mode="reflect")
    x = torch.from_numpy(rgb.astype(np.float32) / 255).permute(2, 0, 1)[None]
    with torch.no_grad():
        y = net(x, torch.from_numpy(hole.astype(np.float32))[None, None])[0, :, :44, :60]
    expected = (y.permute(1, 2, 0).numpy() * 255).clip(0, 255).astype(np.uint8)
    assert arr.shape == (44, 60, 3)
    assert np.abs(arr.astype(int) - expected.astype(int)).max() <= 1
    keep = a[..., 3] == 255
    assert np.abs(arr[keep].astype(int) - a[..., :3][keep].astype(int)).max() <= 1


def test_lama_missing_model_is_named(tmp_path: Path) -> None:
    from invoke_nb.models.manager import ModelManager
    from invoke_nb.models.records import MemoryModelRecordStore

    empty = inb.Runner(
        services=inb.Services(models=ModelManager(tmp_path, MemoryModelRecordStore()))
    ).run
    with pytest.raises(Exception, match="node 'n': infill_lama needs a LaMa model"):
        _one(empty, "infill_lama", image=_holed())


def test_cv_inpaint_equals_opencv(run: Any) -> None:
    img = Image.open(SRC).convert("RGB")
    mask = Image.new("L", img.size, 255)
    mask.paste(0, (10, 10, 30, 26))  # black = inpaint
    _, arr = _one(run, "cv_inpaint", image=img, mask=mask)
    holes = np.zeros((64, 64), np.uint8)
    holes[10:26, 10:30] = 255
    assert np.array_equal(arr, cv2.inpaint(np.asarray(img), holes, 3, cv2.INPAINT_TELEA))
    assert not np.array_equal(arr[10:26, 10:30], np.asarray(img)[10:26, 10:30])
    with pytest.raises(Exception, match="mask is 32x32, image 64x64"):
        _one(run, "cv_inpaint", image=img, mask=mask.resize((32, 32)))
