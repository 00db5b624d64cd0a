"""XLabs FLUX IP-Adapter: identified, bundled by flux_ip_adapter with the ViT-L encoder from
the model manager, and applied by flux_denoise in the double blocks."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
import torch
from PIL import Image

from invoke_nb.graph import standard_flux
from invoke_nb.graph.errors import NodeError
from invoke_nb.models.local import identifier
from invoke_nb.models.probe import probe
from invoke_nb.models.records import ModelRecord
from invoke_nb.nodes.control.fields import IPAdapterField
from invoke_nb.nodes.diffusion.flux_extras.ip_adapter import step_weight
from invoke_nb.testing.tiny_control import VISION_PROJECTION, make_clip_vision
from invoke_nb.testing.tiny_flux_extras import make_flux_ip_adapter


@pytest.fixture(scope="module")
def ip(tmp_path_factory: pytest.TempPathFactory, extras_models) -> dict[str, object]:
    root = tmp_path_factory.mktemp("flux-ip")
    path = make_flux_ip_adapter(root / "ip.safetensors", clip_dim=VISION_PROJECTION)
    found = probe(path)
    assert (found.type, found.base, found.format) == ("ip_adapter", "flux", "checkpoint")
    adapter = extras_models.store.add(
        ModelRecord(
            key=uuid.uuid4().hex, hash="local:flux-ip", path=str(path), name="flux-ip-adapter",
            base=found.base, type=found.type, format=found.format, source=str(path), owned=False,
        )
    )  # fmt: skip
    encoder = extras_models.register(
        make_clip_vision(root / "clip-vit-large-patch14"), name="clip-vit-large-patch14"
    )
    assert encoder.type == "clip_vision"
    return {"adapter": identifier(adapter), "encoder": identifier(encoder)}


def _image(kind: int) -> Image.Image:
    y, x = np.mgrid[0:96, 0:96]
    rgb = [x * 2, y * 2, (x + y)] if kind == 0 else [255 - y * 2, (x * y) % 255, x]
    return Image.fromarray(np.stack(rgb, axis=-1).astype(np.uint8))


def _graph(extras, ip, image=None, weight=1.0, cfg=None, **window):
    more = {"negative": "blurry", "cfg_scale": cfg} if cfg else {}
    g = standard_flux.txt2img(
        extras["dev"], "a bowl of fruit", width=64, height=64, steps=3, seed=4,
        t5_encoder=extras["t5"], clip_embed=extras["clip"], vae=extras["vae"], **more,
    )  # fmt: skip
    if image is not None:
        g.add("flux_ip_adapter", id="ip", image=image, ip_adapter_model=ip["adapter"],
              weight=weight, **window)  # fmt: skip
        g.connect("ip", "ip_adapter", "flux_denoise", "ip_adapter")
    return g


def _latents(runner, g) -> torch.Tensor:
    r = runner.run(g)
    return r.value(r.outputs["flux_denoise"].latents)


def test_node_bundles_adapter_and_vit_l_encoder(extras_runner, extras, ip) -> None:
    out = extras_runner.run(_graph(extras, ip, _image(0), weight=0.6)).outputs["ip"].ip_adapter
    assert isinstance(out, IPAdapterField)
    assert out.image_encoder_model.name == "clip-vit-large-patch14"
    assert out.ip_adapter_model.name == "flux-ip-adapter" and out.weight == 0.6


def test_weight_zero_equals_no_adapter_and_the_image_steers(
    extras_runner, extras_models, extras, ip
) -> None:
    with extras_models.load(extras["dev"], "transformer") as model:
        before = {k: v.clone() for k, v in model.state_dict().items()}
    plain = _latents(extras_runner, _graph(extras, ip))
    zero = _latents(extras_runner, _graph(extras, ip, _image(0), weight=0.0))
    assert torch.allclose(plain, zero, atol=1e-6)
    a = _latents(extras_runner, _graph(extras, ip, _image(0)))
    b = _latents(extras_runner, _graph(extras, ip, _image(1)))
    assert (a - plain).abs().max() > 1e-3
    assert (a - b).abs().max() > 1e-4
    # the cached transformer is as before: same weights, no hooks left, same plain output
    with extras_models.load(extras["dev"], "transformer") as model:
        after = model.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)
        for block in model.transformer_blocks:
            assert not block._forward_hooks and not block.attn.norm_q._forward_hooks
    assert torch.allclose(_latents(extras_runner, _graph(extras, ip)), plain, atol=1e-6)


def test_true_cfg_runs_the_negative_with_a_black_image(extras_runner, extras, ip) -> None:
    plain = _latents(extras_runner, _graph(extras, ip, cfg=2.0))
    zero = _latents(extras_runner, _graph(extras, ip, _image(0), weight=0.0, cfg=2.0))
    both = _latents(extras_runner, _graph(extras, ip, _image(0), cfg=2.0))
    assert torch.allclose(plain, zero, atol=1e-6)
    assert (both - plain).abs().max() > 1e-3


def test_step_window_follows_invokeai_rule(extras_runner, extras, ip) -> None:
    f = IPAdapterField(
        image={"image_name": "x"}, ip_adapter_model=ip["adapter"],
        image_encoder_model=ip["encoder"], weight=[0.1, 0.2, 0.3, 0.4],
        begin_step_percent=0.25, end_step_percent=0.5,
    )  # fmt: skip
    assert [step_weight(f, s, 4) for s in range(4)] == [0.0, 0.2, 0.3, 0.0]
    # a window that ends before the last step: a different result than the whole run
    full = _latents(extras_runner, _graph(extras, ip, _image(0)))
    early = _latents(extras_runner, _graph(extras, ip, _image(0), end_step_percent=0.3))
    assert (full - early).abs().max() > 1e-5


def test_sd_ip_adapter_refused_by_base(extras_runner, extras, ip) -> None:
    g = _graph(extras, ip)
    g.add("flux_ip_adapter", id="ip", image=_image(0), ip_adapter_model=extras["vae"])
    with pytest.raises(NodeError) as err:
        extras_runner.run(g)
    assert "'ip'" in str(err.value) and "ip_adapter_model" in str(err.value)


def test_ip_adapter_on_a_partly_loaded_transformer(
    extras_runner, budgeted_runner, extras, ip
) -> None:
    want = _latents(extras_runner, _graph(extras, ip, _image(1), cfg=2.0))
    got = _latents(budgeted_runner, _graph(extras, ip, _image(1), cfg=2.0))
    assert budgeted_runner.services.models.cache.stats().partial_loads >= 1
    assert torch.allclose(got, want, atol=1e-5)
