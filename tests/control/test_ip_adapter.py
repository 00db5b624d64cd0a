"""IP-Adapter (plain, plus, full-face) in denoise_latents reproduces diffusers'
``load_ip_adapter`` pipelines within 2/255; bad control inputs name node and field."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from invoke_nb.graph.errors import NodeError
from invoke_nb.graph.standard import OUTPUT, txt2img

from .conftest import cident

PROMPT, NEG = "a cute tiger cub", "blurry"


def pixels(result) -> np.ndarray:
    return np.asarray(result.image(OUTPUT).convert("RGB")).astype(np.int16)


def _graph(model, negative: str = NEG):
    return txt2img(
        model, PROMPT, negative=negative, width=64, height=64, steps=3, cfg_scale=7.5,
        scheduler="euler", seed=42, seeding="diffusers",
    )  # fmt: skip


@pytest.mark.parametrize(
    "main,variant",
    [("sd1", "plain"), ("sd1", "plus"), ("sd1", "full"), ("sdxl", "plus")],
)
def test_ip_adapter_matches_diffusers(
    crunner, cmodels, tiny_sd1, tiny_sdxl, reference_image, main: str, variant: str
) -> None:
    import diffusers
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    sdxl = main == "sdxl"
    model = cident(cmodels, "tiny-sdxl" if sdxl else "tiny-sd1")
    neg = "" if sdxl else NEG
    g = _graph(model, neg)
    ip = g.add(
        "ip_adapter",
        ip_adapter_model=cident(cmodels, f"ip-{main}-{variant}"),
        image=reference_image,
        weight=0.6,
    )
    g.connect(ip, "ip_adapter", "denoise_latents", "ip_adapter")
    ours = pixels(crunner.run(g))
    plain = pixels(crunner.run(_graph(model, neg)))
    assert np.abs(ours - plain).max() > 10  # the adapter does something
    # ... and the cached UNet is itself again afterwards
    assert np.abs(pixels(crunner.run(_graph(model, neg))) - plain).max() == 0

    enc = cmodels.store.list(name="ip_adapter_sd_image_encoder")[0].path
    cls = diffusers.StableDiffusionXLPipeline if sdxl else diffusers.StableDiffusionPipeline
    pipe = cls.from_pretrained(
        tiny_sdxl if sdxl else tiny_sd1,
        image_encoder=CLIPVisionModelWithProjection.from_pretrained(enc),
        feature_extractor=CLIPImageProcessor(),
    )
    pipe.scheduler = diffusers.EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    folder = cmodels.store.list(name=f"ip-{main}-{variant}")[0].path
    pipe.load_ip_adapter(
        folder, subfolder="", weight_name="ip_adapter.safetensors", image_encoder_folder=None
    )
    pipe.set_ip_adapter_scale(0.6)
    ref = pipe(
        PROMPT,
        negative_prompt=None if sdxl else NEG,
        ip_adapter_image=reference_image,
        num_inference_steps=3,
        height=64,
        width=64,
        guidance_scale=7.5,
        generator=torch.Generator("cpu").manual_seed(42),
    ).images[0]
    ref = np.asarray(ref).astype(np.int16)
    assert np.abs(ours - ref).max() <= 2, np.abs(ours - ref).max()


def test_ip_adapter_without_its_image_encoder_names_node_and_field(
    crunner, cmodels, reference_image
) -> None:
    g = _graph(cident(cmodels, "tiny-sd1"))
    ip = g.add(
        "ip_adapter",
        id="ipa",
        ip_adapter_model=cident(cmodels, "ip-sd1-no-encoder"),
        image=reference_image,
    )
    g.connect(ip, "ip_adapter", "denoise_latents", "ip_adapter")
    with pytest.raises(Exception) as err:
        crunner.run(g)
    text = str(err.value)
    assert "'ipa'" in text and "ip_adapter_model" in text and "missing_encoder" in text


def test_control_model_of_the_wrong_base_names_node_and_field(
    crunner, cmodels, control_image
) -> None:
    g = _graph(cident(cmodels, "tiny-sd1"))
    cn = g.add("controlnet", id="cn", control_model=cident(cmodels, "cn-sdxl"), image=control_image)
    g.connect(cn, "control", "denoise_latents", "control")
    with pytest.raises(Exception) as err:
        crunner.run(g)
    text = str(err.value)
    assert "'denoise_latents'" in text and "'control'" in text and "sdxl" in text


def test_a_main_model_given_as_control_model_is_refused(crunner, cmodels, control_image) -> None:
    g = _graph(cident(cmodels, "tiny-sd1"))
    cn = g.add(
        "controlnet", id="cn", control_model=cident(cmodels, "tiny-sd1"), image=control_image
    )
    g.connect(cn, "control", "denoise_latents", "control")
    with pytest.raises(Exception) as err:
        crunner.run(g)
    assert "'cn'" in str(err.value) and "control_model" in str(err.value)


def test_begin_after_end_is_refused_naming_the_node(crunner, cmodels, control_image) -> None:
    g = _graph(cident(cmodels, "tiny-sd1"))
    cn = g.add(
        "controlnet",
        id="cn",
        control_model=cident(cmodels, "cn-sd1-a"),
        image=control_image,
        begin_step_percent=0.8,
        end_step_percent=0.2,
    )
    g.connect(cn, "control", "denoise_latents", "control")
    with pytest.raises(NodeError) as err:
        crunner.run(g)
    assert "'cn'" in str(err.value) and "begin_step_percent" in str(err.value)


def test_two_ip_adapters_and_two_images_match_diffusers(
    crunner, cmodels, tiny_sd1, reference_image, control_image
) -> None:
    """Several IP-Adapters at once (through collect), one of them with two images."""
    import diffusers
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    g = _graph(cident(cmodels, "tiny-sd1"))
    col = g.add("collect")
    a = g.add(
        "ip_adapter",
        ip_adapter_model=cident(cmodels, "ip-sd1-plain"),
        image=[reference_image, control_image],
        weight=0.5,
    )
    b = g.add(
        "ip_adapter",
        ip_adapter_model=cident(cmodels, "ip-sd1-plus"),
        image=reference_image,
        weight=0.3,
    )
    g.connect(a, "ip_adapter", col, "item")
    g.connect(b, "ip_adapter", col, "item")
    g.connect(col, "collection", "denoise_latents", "ip_adapter")
    ours = pixels(crunner.run(g))

    enc = cmodels.store.list(name="ip_adapter_sd_image_encoder")[0].path
    pipe = diffusers.StableDiffusionPipeline.from_pretrained(
        tiny_sd1,
        image_encoder=CLIPVisionModelWithProjection.from_pretrained(enc),
        feature_extractor=CLIPImageProcessor(),
    )
    pipe.scheduler = diffusers.EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    folders = [cmodels.store.list(name=n)[0].path for n in ("ip-sd1-plain", "ip-sd1-plus")]
    pipe.load_ip_adapter(
        folders,
        subfolder=["", ""],
        weight_name=["ip_adapter.safetensors"] * 2,
        image_encoder_folder=None,
    )
    pipe.set_ip_adapter_scale([0.5, 0.3])
    ref = pipe(
        PROMPT,
        negative_prompt=NEG,
        ip_adapter_image=[[reference_image, control_image], reference_image],
        num_inference_steps=3,
        height=64,
        width=64,
        guidance_scale=7.5,
        generator=torch.Generator("cpu").manual_seed(42),
    ).images[0]
    ref = np.asarray(ref).astype(np.int16)
    assert np.abs(ours - ref).max() <= 2, np.abs(ours - ref).max()


def test_style_method_acts_in_its_target_blocks_only(
    crunner, cmodels, tiny_sd1, reference_image
) -> None:
    """method="style" on SD1 is the IP-Adapter in up_blocks.1 only: diffusers' per-block
    scale {"up": {"block_1": w}} gives the same picture."""
    import diffusers
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    g = _graph(cident(cmodels, "tiny-sd1"))
    ip = g.add(
        "ip_adapter",
        ip_adapter_model=cident(cmodels, "ip-sd1-plain"),
        image=reference_image,
        weight=0.9,
        method="style",
    )
    g.connect(ip, "ip_adapter", "denoise_latents", "ip_adapter")
    ours = pixels(crunner.run(g))

    enc = cmodels.store.list(name="ip_adapter_sd_image_encoder")[0].path
    pipe = diffusers.StableDiffusionPipeline.from_pretrained(
        tiny_sd1,
        image_encoder=CLIPVisionModelWithProjection.from_pretrained(enc),
        feature_extractor=CLIPImageProcessor(),
    )
    pipe.scheduler = diffusers.EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    folder = cmodels.store.list(name="ip-sd1-plain")[0].path
    pipe.load_ip_adapter(
        folder, subfolder="", weight_name="ip_adapter.safetensors", image_encoder_folder=None
    )

    def ref(scale):
        pipe.set_ip_adapter_scale(scale)
        img = pipe(
            PROMPT, negative_prompt=NEG, ip_adapter_image=reference_image,
            num_inference_steps=3, height=64, width=64, guidance_scale=7.5,
            generator=torch.Generator("cpu").manual_seed(42),
        ).images[0]  # fmt: skip
        return np.asarray(img).astype(np.int16)

    assert np.abs(ours - ref({"up": {"block_1": 0.9}})).max() <= 2
    assert np.abs(ours - ref(0.9)).max() > 2  # not the full adapter
