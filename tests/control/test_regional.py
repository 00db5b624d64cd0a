"""Regional prompts: a masked prompt changes (mostly) its own region."""

from __future__ import annotations

import numpy as np
import pytest

from invoke_nb.graph.standard import OUTPUT, txt2img

from .conftest import cident

S = 128  # px; the tiny UNet's global self-attention spreads any change over small images


def _graph(model, region_prompt: str | None, *, sdxl: bool = False, width: int = S // 2):
    g = txt2img(
        model, "a cat", negative="", width=S, height=S, steps=4, cfg_scale=7.5,
        scheduler="euler", seed=9, seeding="diffusers",
    )  # fmt: skip
    if region_prompt is None:
        return g
    mask = g.add(
        "rectangle_mask", width=S, height=S, x_left=0, y_top=0,
        rectangle_width=width, rectangle_height=S,
    )  # fmt: skip
    col = g.add("collect")
    g.connect("pos_cond", "conditioning", col, "item")
    if sdxl:
        reg = g.add("sdxl_compel_prompt", prompt=region_prompt, style=region_prompt)
        g.connect("model_loader", "clip2", reg, "clip2")
    else:
        reg = g.add("compel", prompt=region_prompt)
    g.connect("model_loader", "clip", reg, "clip")
    g.connect(mask, "mask", reg, "mask")
    g.connect(reg, "conditioning", col, "item")
    g.disconnect("pos_cond", "conditioning", "denoise_latents", "positive_conditioning")
    g.connect(col, "collection", "denoise_latents", "positive_conditioning")
    return g


@pytest.mark.parametrize("main", ["tiny-sd1", "tiny-sdxl"])
def test_a_regional_prompt_changes_mostly_its_region(crunner, cmodels, main: str) -> None:
    model = cident(cmodels, main)
    sdxl = main == "tiny-sdxl"
    plain = np.asarray(crunner.run(_graph(model, None)).image(OUTPUT)).astype(np.int16)
    region = np.asarray(crunner.run(_graph(model, "a red car", sdxl=sdxl)).image(OUTPUT)).astype(
        np.int16
    )
    whole = np.asarray(
        crunner.run(_graph(model, "a red car", sdxl=sdxl, width=S)).image(OUTPUT)
    ).astype(np.int16)

    def sides(img: np.ndarray) -> tuple[float, float]:
        d = np.abs(img - plain).mean(axis=2)
        return d[:, : S * 7 // 16].mean(), d[:, S * 9 // 16 :].mean()

    left, right = sides(region)
    _, right_unmasked = sides(whole)
    assert left > 2.0  # the region prompt does something where it applies
    assert left > 1.5 * right, (left, right)  # ... more than outside its mask,
    assert right < 0.7 * right_unmasked, (right, right_unmasked)  # where the mask holds it back
    # a region covering nothing leaves the picture as the global prompt makes it
    g = _graph(model, "a red car", sdxl=sdxl)
    mask = next(n for n, s in g.nodes.items() if s.type == "rectangle_mask")
    g.set(mask, rectangle_width=0)
    empty = np.asarray(crunner.run(g).image(OUTPUT)).astype(np.int16)
    assert np.abs(empty - plain).max() <= 1


def test_a_masked_ip_adapter_acts_mostly_in_its_region(crunner, cmodels, reference_image) -> None:
    model = cident(cmodels, "tiny-sd1")
    plain = np.asarray(crunner.run(_graph(model, None)).image(OUTPUT)).astype(np.int16)

    def with_ip(width: int) -> np.ndarray:
        g = _graph(model, None)
        mask = g.add(
            "rectangle_mask", width=S, height=S, x_left=0, y_top=0,
            rectangle_width=width, rectangle_height=S,
        )  # fmt: skip
        ip = g.add(
            "ip_adapter", ip_adapter_model=cident(cmodels, "ip-sd1-plain"), image=reference_image
        )
        g.connect(mask, "mask", ip, "mask")
        g.connect(ip, "ip_adapter", "denoise_latents", "ip_adapter")
        return np.asarray(crunner.run(g).image(OUTPUT)).astype(np.int16)

    half, whole = with_ip(S // 2), with_ip(S)
    d_half = np.abs(half - plain).mean(axis=2)
    d_whole = np.abs(whole - plain).mean(axis=2)
    left, right = d_half[:, : S * 7 // 16].mean(), d_half[:, S * 9 // 16 :].mean()
    assert left > 2.0 and left > 1.5 * right, (left, right)
    assert right < 0.7 * d_whole[:, S * 9 // 16 :].mean()


def test_conditioning_primitives_pass_masked_prompts_through(crunner, cmodels) -> None:
    """``conditioning`` and ``conditioning_collection`` hand on what they get: a regional
    graph routed through them gives the same image as the direct one."""

    def graph(primitives: bool):
        g = txt2img(
            cident(cmodels, "tiny-sd1"), "a cat", negative="", width=64, height=64, steps=2,
            scheduler="euler", seed=9,
        )  # fmt: skip
        mask = g.add("rectangle_mask", width=64, height=64, x_left=0, y_top=0,
                     rectangle_width=32, rectangle_height=64)  # fmt: skip
        reg = g.add("compel", prompt="a red car")
        g.connect("model_loader", "clip", reg, "clip")
        g.connect(mask, "mask", reg, "mask")
        col = g.add("collect")
        g.disconnect("pos_cond", "conditioning", "denoise_latents", "positive_conditioning")
        if primitives:
            prim = g.add("conditioning", id="prim")
            g.connect("pos_cond", "conditioning", prim, "conditioning")
            g.connect(prim, "conditioning", col, "item")
        else:
            g.connect("pos_cond", "conditioning", col, "item")
        g.connect(reg, "conditioning", col, "item")
        if primitives:
            cc = g.add("conditioning_collection", id="cc")
            g.connect(col, "collection", cc, "collection")
            g.connect(cc, "collection", "denoise_latents", "positive_conditioning")
        else:
            g.connect(col, "collection", "denoise_latents", "positive_conditioning")
        return g

    direct = crunner.run(graph(False))
    routed = crunner.run(graph(True))
    items = routed.outputs["cc"].collection
    assert len(items) == 2 and items[0].mask is None and items[1].mask is not None
    assert routed.outputs["prim"].conditioning.conditioning_name == items[0].conditioning_name
    a = np.asarray(direct.image(OUTPUT)).astype(np.int16)
    b = np.asarray(routed.image(OUTPUT)).astype(np.int16)
    assert np.abs(a - b).max() <= 1
