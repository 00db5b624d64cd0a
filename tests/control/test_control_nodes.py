"""FreeU, Heuristic Resize, control-model probing and step windows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import invoke_nb as inb
from invoke_nb.graph.standard import OUTPUT, txt2img
from invoke_nb.models.probe import probe
from invoke_nb.nodes.control.resize import heuristic_resize, resize_to_mode
from invoke_nb.nodes.diffusion.sd.control import step_active

from .conftest import cident


def test_freeu_matches_diffusers_enable_freeu(crunner, cmodels, tiny_sd1) -> None:
    import diffusers

    g = txt2img(
        cident(cmodels, "tiny-sd1"), "a cat", width=64, height=64, steps=3,
        scheduler="euler", seed=3, seeding="diffusers",
    )  # fmt: skip
    fu = g.add("freeu", b1=1.3, b2=1.4, s1=0.9, s2=0.2)
    g.disconnect("model_loader", "unet", "denoise_latents", "unet")
    g.connect("model_loader", "unet", fu, "unet")
    g.connect(fu, "unet", "denoise_latents", "unet")
    ours = np.asarray(crunner.run(g).image(OUTPUT)).astype(np.int16)

    pipe = diffusers.StableDiffusionPipeline.from_pretrained(tiny_sd1)
    pipe.scheduler = diffusers.EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    plain = np.asarray(
        pipe("a cat", num_inference_steps=3, height=64, width=64, negative_prompt="",
             generator=torch.Generator("cpu").manual_seed(3)).images[0]
    ).astype(np.int16)  # fmt: skip
    pipe.enable_freeu(b1=1.3, b2=1.4, s1=0.9, s2=0.2)
    ref = np.asarray(
        pipe("a cat", num_inference_steps=3, height=64, width=64, negative_prompt="",
             generator=torch.Generator("cpu").manual_seed(3)).images[0]
    ).astype(np.int16)  # fmt: skip
    assert np.abs(ref - plain).max() > 2  # FreeU changes this picture
    assert np.abs(ours - ref).max() <= 2


def test_heuristic_resize_keeps_an_edge_map_binary_and_thin() -> None:
    arr = np.zeros((40, 40, 3), np.uint8)
    arr[5:35, 20] = 255  # a one-pixel vertical line
    arr[10, 5:35] = 255
    out = heuristic_resize(arr, (80, 80))
    assert out.shape == (80, 80, 3)
    assert set(np.unique(out)) <= {0, 255}
    col = (out[:, :, 0] > 0).sum(axis=1)  # the vertical line stays about one pixel wide
    assert np.median(col[col > 0]) <= 2


def test_heuristic_resize_node_and_colour_maps(control_image) -> None:
    seg = np.zeros((30, 30, 3), np.uint8)
    seg[:, 10:] = (10, 200, 30)
    seg[15:, :] = (90, 20, 160)
    g = inb.Graph()
    n = g.add("heuristic_resize", image=Image.fromarray(seg), width=61, height=45)
    r = inb.run(g)
    img = np.asarray(r.image(n))
    assert img.shape == (45, 61, 3) and (r.outputs[n].width, r.outputs[n].height) == (61, 45)
    colours = {tuple(c) for c in img.reshape(-1, 3)}
    assert colours == {(0, 0, 0), (10, 200, 30), (90, 20, 160)}  # nearest: no new colours


def test_resize_modes_fit_and_fill() -> None:
    arr = np.full((20, 40, 3), 255, np.uint8)
    filled = resize_to_mode(Image.fromarray(arr), 32, 32, "fill_resize")
    cropped = resize_to_mode(Image.fromarray(arr), 32, 32, "crop_resize")
    assert filled.shape == cropped.shape == (32, 32, 3)
    assert cropped.min() == 255  # cover: all image
    simple = resize_to_mode(Image.fromarray(arr), 16, 8, "just_resize_simple")
    assert simple.shape == (8, 16, 3)


def test_step_window_is_invokeai_rule() -> None:
    active = [i for i in range(10) if step_active(i, 10, 0.25, 0.5)]
    assert active == [2, 3, 4, 5]  # floor(2.5) .. ceil(5.0)


def test_probe_identifies_control_models(cmodels) -> None:
    def rec(name: str):
        return cmodels.store.list(name=name)[0]

    for name, kind, base in (
        ("cn-sd1-a", "controlnet", "sd-1"),
        ("cn-sdxl", "controlnet", "sdxl"),
        ("t2i-sd1", "t2i_adapter", "sd-1"),
        ("t2i-sdxl", "t2i_adapter", "sdxl"),
        ("ip-sd1-plus", "ip_adapter", "sd-1"),
        ("ip_adapter_sd_image_encoder", "clip_vision", "any"),
    ):
        found = probe(rec(name).path)
        assert (found.type, found.base) == (kind, base), name
    found = probe(rec("ip-sd1-plain").path)
    assert found.extra["image_encoder_model_id"] == "InvokeAI/ip_adapter_sd_image_encoder"


def test_step_window_equals_zero_weights_outside_it(crunner, cmodels, control_image) -> None:
    """begin/end and per-step weight lists agree: a window [0.5, 1] is weights [0, 0, 1, 1]."""

    def run(**fields) -> np.ndarray:
        g = txt2img(
            cident(cmodels, "tiny-sd1"), "a cat", width=64, height=64, steps=4,
            scheduler="euler", seed=3,
        )  # fmt: skip
        cn = g.add(
            "controlnet", control_model=cident(cmodels, "cn-sd1-a"), image=control_image, **fields
        )
        g.connect(cn, "control", "denoise_latents", "control")
        return np.asarray(crunner.run(g).image(OUTPUT)).astype(np.int16)

    windowed = run(begin_step_percent=0.5, end_step_percent=1.0)
    listed = run(control_weight=[0.0, 0.0, 1.0, 1.0])
    full = run()
    assert np.abs(windowed - listed).max() == 0
    assert np.abs(windowed - full).max() > 2


def test_a_short_weight_list_is_refused_naming_the_problem(crunner, cmodels, control_image) -> None:
    from invoke_nb.graph.errors import NodeError

    g = txt2img(
        cident(cmodels, "tiny-sd1"), "a cat", width=64, height=64, steps=4,
        scheduler="euler", seed=3,
    )  # fmt: skip
    cn = g.add(
        "controlnet",
        control_model=cident(cmodels, "cn-sd1-a"),
        image=control_image,
        control_weight=[1.0, 0.5],
    )
    g.connect(cn, "control", "denoise_latents", "control")
    with pytest.raises(NodeError, match="weight list has 2 values"):
        crunner.run(g)
