"""flux_denoise's schedulers and true CFG on the tiny dev model."""

from __future__ import annotations

from typing import Any

import torch
from flux_support import parts

from invoke_nb.graph import standard_flux


def _latents(runner: Any, flux: dict, calls: list[int] | None = None, **kw: Any) -> torch.Tensor:
    g = standard_flux.txt2img(flux["dev"], "a cat", width=32, height=32, seed=1, **{
        "steps": 3, **kw}, **parts(flux))  # fmt: skip
    r = runner.run(g)
    return r.value(r.outputs["flux_denoise"].latents)


def _count_calls(flux_models: Any, flux: dict) -> Any:
    with flux_models.load(flux["dev"], "transformer") as model:
        calls: list[int] = []
        handle = model.register_forward_hook(lambda *_: calls.append(1))
    return calls, handle


def test_heun_and_lcm_run_and_differ_from_euler(flux_runner, flux_models, flux) -> None:
    calls, handle = _count_calls(flux_models, flux)
    try:
        euler = _latents(flux_runner, flux, scheduler="euler")
        n_euler = len(calls)
        heun = _latents(flux_runner, flux, scheduler="heun")
        n_heun = len(calls) - n_euler
        lcm = _latents(flux_runner, flux, scheduler="lcm")
    finally:
        handle.remove()
    assert n_euler == 3 and n_heun > n_euler  # Heun evaluates twice per step
    for other in (heun, lcm):
        assert torch.isfinite(other).all() and (other - euler).abs().max() > 1e-3


def test_true_cfg_steps(flux_runner, flux) -> None:
    plain = _latents(flux_runner, flux)
    neutral = _latents(flux_runner, flux, negative="blurry", cfg_scale=1.0)
    assert torch.allclose(plain, neutral, atol=1e-6)  # scale 1: the negative is not run
    full = _latents(flux_runner, flux, negative="blurry", cfg_scale=3.0)
    assert (full - plain).abs().max() > 1e-2
    g = standard_flux.txt2img(flux["dev"], "a cat", negative="blurry", cfg_scale=3.0, width=32,
                              height=32, seed=1, steps=3, **parts(flux))  # fmt: skip
    g.set("flux_denoise", cfg_scale_start_step=1, cfg_scale_end_step=1)
    r = flux_runner.run(g)
    middle = r.value(r.outputs["flux_denoise"].latents)
    assert (middle - plain).abs().max() > 1e-3 and (middle - full).abs().max() > 1e-3


def test_img2img_keeps_more_of_the_image_at_lower_strength(flux_runner, flux) -> None:
    from PIL import Image

    src = Image.new("RGB", (32, 32), (200, 60, 30))
    out = {}
    for strength in (0.0, 0.3, 0.9):
        g = standard_flux.img2img(flux["dev"], src, "a cat", strength=strength, steps=4, seed=3,
                                  **parts(flux))  # fmt: skip
        r = flux_runner.run(g)
        out[strength] = r.value(r.outputs["flux_denoise"].latents)
        init = r.value(r.outputs["flux_vae_encode"].latents)
    assert torch.allclose(out[0.0], init, atol=1e-6)  # strength 0: the encoded image itself
    assert (out[0.3] - init).abs().mean() < (out[0.9] - init).abs().mean()


def test_progress_every_step_with_a_preview(flux_models, flux) -> None:
    import invoke_nb as inb

    events: list[dict] = []
    services = inb.Services(
        models=flux_models, emit=lambda kind, p: events.append({"kind": kind, **p}), preview_every=1
    )
    for scheduler in ("euler", "heun"):
        events.clear()
        g = standard_flux.txt2img(flux["dev"], "a cat", width=32, height=48, steps=3, seed=1,
                                  scheduler=scheduler, **parts(flux))  # fmt: skip
        inb.Runner(services=services).run(g)
        steps = [
            e for e in events
            if e["kind"] == "progress" and e.get("node_type") == "flux_denoise" and e.get("step")
        ]  # fmt: skip
        assert [e["step"] for e in steps] == [1, 2, 3], scheduler
        assert all(e["image"] is not None and e["image"].size == (4, 6) for e in steps)


def test_gradient_mask_frees_partly_kept_cells_late(flux_runner, flux) -> None:
    """A cell kept at 0.5 follows the noised original until t falls below its repaint weight
    (InvokeAI's promotion of gradient masks), then is denoised freely."""
    import numpy as np
    from PIL import Image

    src = Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8))

    def run(mask: Image.Image) -> tuple[torch.Tensor, torch.Tensor]:
        g = standard_flux.img2img(flux["schnell"], src, "a cat", strength=1.0, steps=4, seed=5,
                                  **parts(flux))  # fmt: skip
        m = g.add("create_denoise_mask", id="mask", mask=mask)
        g.connect("flux_model_loader", "vae", m, "vae")
        g.connect(m, "denoise_mask", "flux_denoise", "denoise_mask")
        r = flux_runner.run(g)
        return r.value(r.outputs["flux_denoise"].latents), r.value(
            r.outputs["flux_vae_encode"].latents
        )

    keep = np.zeros((64, 64), np.uint8)
    keep[:, :16] = 255  # kept
    keep[:, 16:48] = 128  # half kept
    out, init = run(Image.fromarray(keep))
    free, _ = run(Image.fromarray(np.zeros((64, 64), np.uint8)))  # everything repainted
    diff = (out - init).abs()[0].mean(0)  # per latent cell
    assert diff[:, :2].max() < 1e-5
    assert diff[:, 2:6].min() > 1e-3
    late = (out - free).abs()[0].mean(0)
    assert late[:, 2:6].min() > 1e-3  # held back early, so not the freely repainted result


def _regional_graph(flux: dict, regions: list[tuple[str, Any]]) -> Any:
    """txt2img whose positive conditioning is several prompts, each with a mask image (black
    = inside) or None; they meet in a collect node as InvokeAI's UI connects them."""
    g = standard_flux.txt2img(flux["dev"], "a cat", width=32, height=32, steps=2, seed=4,
                              **parts(flux))  # fmt: skip
    for i, (prompt, mask) in enumerate(regions):
        enc = g.add("flux_text_encoder", id=f"region_{i}", prompt=prompt)
        g.connect("flux_model_loader", "clip", enc, "clip")
        g.connect("flux_model_loader", "t5_encoder", enc, "t5_encoder")
        g.connect("flux_model_loader", "max_seq_len", enc, "t5_max_seq_len")
        if mask is not None:
            m = g.add("image_mask_to_tensor", id=f"mask_{i}", image=mask)
            g.connect(m, "mask", enc, "mask")
        g.connect(enc, "conditioning", "pos_cond_collect", "item")
    return g


def test_regional_prompts(flux_runner, flux) -> None:
    from PIL import Image

    g0 = _regional_graph(flux, [])
    r0 = flux_runner.run(g0)
    plain = r0.value(r0.outputs["flux_denoise"].latents)
    # the UI's global prompt plus a region covering everything: every token sees everything
    # except the two prompts' tokens each other, so the result moves but stays finite
    left = Image.new("L", (32, 32), 255)
    left.paste(0, (0, 0, 16, 32))
    g = _regional_graph(flux, [("a red dog", left)])
    r = flux_runner.run(g)
    two = r.value(r.outputs["flux_denoise"].latents)
    assert torch.isfinite(two).all() and (two - plain).abs().max() > 1e-3
    # no masks: the prompts' T5 sequences are joined and nothing is masked
    g = _regional_graph(flux, [("a red dog", None)])
    r = flux_runner.run(g)
    joined = r.value(r.outputs["flux_denoise"].latents)
    assert (joined - plain).abs().max() > 1e-3 and (joined - two).abs().max() > 1e-3


def test_regional_attention_mask_as_invokeai_builds_it() -> None:
    from invoke_nb.nodes.diffusion.flux.fields import FluxConditioning
    from invoke_nb.nodes.diffusion.flux.regional import combine

    def cond(n: int) -> FluxConditioning:
        return FluxConditioning(t5_embeds=torch.zeros(1, n, 4), clip_embeds=torch.ones(1, 3) * n)

    left = torch.tensor([1.0, 1.0, 0.0, 0.0])
    r = combine([(cond(2), None), (cond(3), left)], img_len=4)
    assert r.t5_embeds.shape == (1, 5, 4) and r.clip_embeds[0, 0] == 2  # the unmasked prompt's
    a = r.attn_mask
    assert a.shape == (9, 9) and a.dtype == torch.bool
    assert a[0:2, 0:2].all() and not a[0:2, 2:5].any()  # prompts do not see each other
    assert a[2:5, 5:7].all() and not a[2:5, 7:9].any()  # masked prompt <-> its region only
    assert a[0:2, 7:9].all() and not a[0:2, 5:7].any()  # global prompt <-> the background
    assert a[5:9, 7:9].all() and a[7:9, 5:9].all()  # background tokens see and are seen
    two = combine(
        [(cond(1), torch.tensor([1.0, 0, 0, 0])), (cond(1), torch.tensor([0, 1.0, 0, 0]))], 4
    ).attn_mask
    assert two[2, 2] and two[3, 3] and not two[2, 3] and not two[3, 2]  # regions apart
    assert combine([(cond(2), None), (cond(3), None)], img_len=4).attn_mask is None
