"""ControlNet and T2I-Adapter in denoise_latents reproduce diffusers' pipelines (seeding
"diffusers") within 2/255 on tiny random weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from invoke_nb.graph.standard import OUTPUT, txt2img

from .conftest import cident

PROMPT, NEG = "a cute tiger cub", "blurry"


def pixels(result) -> np.ndarray:
    return np.asarray(result.image(OUTPUT).convert("RGB")).astype(np.int16)


def _pipe(cls_name: str, folder: Path, **parts):
    import diffusers

    pipe = getattr(diffusers, cls_name).from_pretrained(folder, **parts)
    pipe.scheduler = diffusers.EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _graph(model, **kw):
    return txt2img(
        model,
        PROMPT,
        negative=kw.pop("negative", NEG),
        width=64,
        height=64,
        steps=3,
        cfg_scale=kw.pop("cfg_scale", 7.5),
        scheduler="euler",
        seed=kw.pop("seed", 42),
        seeding="diffusers",
    )


def _add_control(g, kind: str, model, image, **fields) -> str:
    if kind == "controlnet":
        return g.add("controlnet", control_model=model, image=image, **fields)
    return g.add("t2i_adapter", t2i_adapter_model=model, image=image, **fields)


def _close(ours: np.ndarray, ref, tol: int = 2) -> None:
    ref = np.asarray(ref).astype(np.int16)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= tol, np.abs(ours - ref).max()


def test_sd1_controlnet_matches_diffusers(crunner, cmodels, tiny_sd1, control_image) -> None:
    from diffusers import ControlNetModel

    g = _graph(cident(cmodels, "tiny-sd1"))
    cn = _add_control(
        g, "controlnet", cident(cmodels, "cn-sd1-a"), control_image, control_weight=0.8
    )
    g.connect(cn, "control", "denoise_latents", "control")
    ours = pixels(crunner.run(g))
    plain = pixels(crunner.run(_graph(cident(cmodels, "tiny-sd1"))))
    assert np.abs(ours - plain).max() > 10  # the ControlNet does something

    net = ControlNetModel.from_pretrained(cmodels.store.list(name="cn-sd1-a")[0].path)
    pipe = _pipe("StableDiffusionControlNetPipeline", tiny_sd1, controlnet=net)
    ref = pipe(
        PROMPT,
        image=control_image,
        negative_prompt=NEG,
        num_inference_steps=3,
        height=64,
        width=64,
        guidance_scale=7.5,
        controlnet_conditioning_scale=0.8,
        generator=torch.Generator("cpu").manual_seed(42),
    ).images[0]
    _close(ours, ref)


def test_multi_controlnet_matches_diffusers(crunner, cmodels, tiny_sd1, control_image) -> None:
    from diffusers import ControlNetModel

    g = _graph(cident(cmodels, "tiny-sd1"))
    other = control_image.transpose(0)  # a different control image for the second net
    a = _add_control(g, "controlnet", cident(cmodels, "cn-sd1-a"), control_image)
    b = _add_control(g, "controlnet", cident(cmodels, "cn-sd1-b"), other, control_weight=0.5)
    col = g.add("collect")
    g.connect(a, "control", col, "item")
    g.connect(b, "control", col, "item")
    g.connect(col, "collection", "denoise_latents", "control")
    ours = pixels(crunner.run(g))

    nets = [
        ControlNetModel.from_pretrained(cmodels.store.list(name=n)[0].path)
        for n in ("cn-sd1-a", "cn-sd1-b")
    ]
    pipe = _pipe("StableDiffusionControlNetPipeline", tiny_sd1, controlnet=nets)
    ref = pipe(
        PROMPT,
        image=[control_image, other],
        negative_prompt=NEG,
        num_inference_steps=3,
        height=64,
        width=64,
        guidance_scale=7.5,
        controlnet_conditioning_scale=[1.0, 0.5],
        generator=torch.Generator("cpu").manual_seed(42),
    ).images[0]
    _close(ours, ref)


def test_sdxl_controlnet_matches_diffusers(crunner, cmodels, tiny_sdxl, control_image) -> None:
    from diffusers import ControlNetModel

    g = _graph(cident(cmodels, "tiny-sdxl"), negative="", cfg_scale=5.0, seed=7)
    cn = _add_control(g, "controlnet", cident(cmodels, "cn-sdxl"), control_image)
    g.connect(cn, "control", "denoise_latents", "control")
    ours = pixels(crunner.run(g))

    net = ControlNetModel.from_pretrained(cmodels.store.list(name="cn-sdxl")[0].path)
    pipe = _pipe("StableDiffusionXLControlNetPipeline", tiny_sdxl, controlnet=net)
    ref = pipe(
        PROMPT,
        image=control_image,
        negative_prompt=None,
        num_inference_steps=3,
        height=64,
        width=64,
        guidance_scale=5.0,
        generator=torch.Generator("cpu").manual_seed(7),
    ).images[0]
    _close(ours, ref)


@pytest.mark.parametrize("base", ["sd-1", "sdxl"])
def test_t2i_adapter_matches_diffusers(
    crunner, cmodels, tiny_sd1, tiny_sdxl_xl_blocks, control_image, base: str
) -> None:
    from diffusers import T2IAdapter

    main, folder, name = (
        ("tiny-sd1", tiny_sd1, "t2i-sd1")
        if base == "sd-1"
        else ("tiny-sdxl-xl-blocks", tiny_sdxl_xl_blocks, "t2i-sdxl")
    )
    neg = NEG if base == "sd-1" else ""
    g = _graph(cident(cmodels, main), negative=neg)
    ad = _add_control(g, "t2i", cident(cmodels, name), control_image, weight=0.9)
    g.connect(ad, "t2i_adapter", "denoise_latents", "t2i_adapter")
    ours = pixels(crunner.run(g))
    plain = pixels(crunner.run(_graph(cident(cmodels, main), negative=neg)))
    assert np.abs(ours - plain).max() > 10

    adapter = T2IAdapter.from_pretrained(cmodels.store.list(name=name)[0].path)
    cls = "StableDiffusionAdapterPipeline" if base == "sd-1" else "StableDiffusionXLAdapterPipeline"
    pipe = _pipe(cls, folder, adapter=adapter)
    ref = pipe(
        PROMPT,
        image=control_image,
        negative_prompt=NEG if base == "sd-1" else None,
        num_inference_steps=3,
        height=64,
        width=64,
        guidance_scale=7.5,
        adapter_conditioning_scale=0.9,
        generator=torch.Generator("cpu").manual_seed(42),
    ).images[0]
    _close(ours, ref)


def test_more_control_mode_is_diffusers_guess_mode(
    crunner, cmodels, tiny_sd1, control_image
) -> None:
    """ "more_control" = soft injection + ControlNet on the positive half only, which is
    what diffusers calls guess mode."""
    from diffusers import ControlNetModel

    g = _graph(cident(cmodels, "tiny-sd1"))
    cn = _add_control(
        g, "controlnet", cident(cmodels, "cn-sd1-a"), control_image, control_mode="more_control"
    )
    g.connect(cn, "control", "denoise_latents", "control")
    ours = pixels(crunner.run(g))
    net = ControlNetModel.from_pretrained(cmodels.store.list(name="cn-sd1-a")[0].path)
    pipe = _pipe("StableDiffusionControlNetPipeline", tiny_sd1, controlnet=net)
    ref = pipe(
        PROMPT,
        image=control_image,
        negative_prompt=NEG,
        num_inference_steps=3,
        height=64,
        width=64,
        guidance_scale=7.5,
        guess_mode=True,
        generator=torch.Generator("cpu").manual_seed(42),
    ).images[0]
    _close(ours, ref)
