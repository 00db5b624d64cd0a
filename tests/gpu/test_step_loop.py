"""The denoise loop on a stand-in device: no host read and no cross-device copy per step.

The UNet and every device tensor live on ``meta`` under :class:`DeviceTraffic`, which counts
what a CUDA run would sync on: a step that reads a device value on the host or copies a
host tensor to the device shows up in the counts (and a mixed-device op fails, as on CUDA).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from diffusers import UNet2DConditionModel

from invoke_nb.nodes.diffusion.preview import LatentPreviews
from invoke_nb.nodes.diffusion.schedulers import make_scheduler
from invoke_nb.nodes.diffusion.sd.denoise import DenoiseInputs, denoise
from invoke_nb.nodes.diffusion.sd.vae import encode_image

from .traffic import DeviceTraffic

STEPS = 4


@pytest.fixture(scope="module")
def meta_unet(tiny_sd1: Path) -> UNet2DConditionModel:
    with torch.device("meta"):
        return UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(tiny_sd1 / "unet"))


def _run(unet, tiny_sd1: Path, scheduler: str, previews: LatentPreviews | None) -> DeviceTraffic:
    cfg = json.loads((tiny_sd1 / "scheduler" / "scheduler_config.json").read_text())
    sched = make_scheduler(scheduler, cfg, seed=1)
    width = unet.config.cross_attention_dim
    gen = torch.Generator().manual_seed(0)
    inp = DenoiseInputs(
        latents=torch.zeros((1, 4, 8, 8)),
        noise=torch.randn((1, 4, 8, 8), generator=gen),
        seed=1,
        cond=torch.randn((1, 77, width), generator=gen),
        uncond=torch.randn((1, 77, width), generator=gen),
        cfg_scale=7.5,
        steps=STEPS,
        txt2img=True,
    )
    traffic = DeviceTraffic()
    with torch.inference_mode(), traffic:
        out = denoise(
            unet,
            sched,
            inp,
            device="meta",
            before_step=traffic.mark,
            on_step=lambda *_: traffic.close(),
            previews=previews,
        )
    assert out.device.type == "cpu" and out.shape == (1, 4, 8, 8)
    assert len(traffic.windows) >= STEPS  # second-order solvers call the UNet twice a step
    return traffic


@pytest.mark.parametrize("scheduler", ["euler", "dpmpp_2m", "heun", "er_sde"])
def test_no_host_read_or_copy_per_step_without_previews(meta_unet, tiny_sd1, scheduler) -> None:
    traffic = _run(meta_unet, tiny_sd1, scheduler, previews=None)
    assert set(traffic.windows) == {(0, 0)}


def test_previews_cost_one_copy_every_n_steps(meta_unet, tiny_sd1) -> None:
    previews = LatentPreviews("sd-1", "meta", every=2)
    traffic = _run(meta_unet, tiny_sd1, "euler", previews=previews)
    reads = [r for r, _ in traffic.windows]
    copies = [c for _, c in traffic.windows]
    assert reads == [0] * STEPS
    assert copies[0] == copies[2] == 0  # steps 1 and 3: no preview
    assert 1 <= copies[1] <= 3 and copies[3] == 1  # the factors move once, then one copy each
    image = previews.take(wait=True)
    assert image is not None and image.size == (8, 8)


def test_vae_encoding_draws_its_sample_on_the_cpu(tiny_sd1: Path) -> None:
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(tiny_sd1 / "vae").eval()
    image = torch.rand((1, 3, 64, 64), generator=torch.Generator().manual_seed(2)) * 2 - 1
    latents = encode_image(vae, image)
    with torch.inference_mode():
        dist = vae.encode(image).latent_dist
    eps = torch.randn(tuple(dist.mean.shape), generator=torch.Generator("cpu").manual_seed(0))
    expected = (dist.mean + dist.std * eps) * vae.config.scaling_factor
    torch.testing.assert_close(latents, expected, rtol=1e-5, atol=1e-5)
    # on the stand-in device the sample is still drawn on the CPU (a device generator fails)
    meta_vae = vae.to("meta")
    traffic = DeviceTraffic()
    with traffic:
        out = encode_image(meta_vae, image, device="meta")
    assert out.device.type == "cpu" and out.shape == latents.shape


def test_studio_sends_previews_only_while_someone_asks(tmp_path: Path, tiny_sd1: Path) -> None:
    import invoke_nb as inb

    studio = inb.Studio(tmp_path / "studio")
    try:
        studio.models.install(str(tiny_sd1), name="tiny", in_place=True)
        plain: list[dict] = []
        off = studio.events.on("progress", lambda _k, p: plain.append(p))
        args = dict(model="tiny", width=64, height=64, steps=3, progress=False)
        studio.txt2img("a cat", seed=1, **args)
        denoise_steps = [p for p in plain if p.get("node_type") == "denoise_latents"]
        assert [p["step"] for p in denoise_steps] == [1, 2, 3]
        assert all(p["image"] is None for p in plain)
        shown: list[dict] = []
        off_previews = studio.events.on("progress", lambda _k, p: shown.append(p), previews=True)
        studio.txt2img("a cat", seed=2, **args)
        images = [p["image"] for p in shown if p.get("image") is not None]
        assert len(images) == 3 and images[0].size == (8, 8)
        assert all(not hasattr(v, "device") for p in shown for v in p.values())  # no tensors
        off_previews()
        off()
        assert not studio.events.wants_previews()
    finally:
        studio.close()
