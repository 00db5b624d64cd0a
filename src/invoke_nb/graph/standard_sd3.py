"""Standard SD3 / SD3.5 graphs (txt2img, img2img, inpaint, outpaint), shaped as InvokeAI's.

As InvokeAI 6.11's linear UI builds them (``buildSD3Graph``): ``sd3_model_loader`` ->
two ``sd3_text_encoder`` (CLIP-L, CLIP-G and T5 each) -> ``sd3_denoise`` -> ``sd3_l2i``,
with ``string``/``integer`` primitives for prompt and seed feeding both their consumers and
a ``core_metadata`` node (``generation_mode`` ``sd3_txt2img``...), so saved PNGs recall and
re-run. Image modes add ``sd3_i2l`` (and a gradient mask with paste-back for inpaint and
outpaint). Node ids match :mod:`invoke_nb.graph.standard`'s where the role is the same
(``model_loader``, ``positive_prompt``, ``seed``, ``core_metadata``, ``l2i``), the denoiser
is ``sd3_denoise``.

SD3 takes no scheduler choice, LoRAs, clip skip or seamless in InvokeAI 6.11: ``scheduler``
is accepted and ignored (every one-liner passes one), the others raise ValueError.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PIL import Image

from invoke_nb.graph.model import Graph

__all__ = ["DENOISE", "img2img", "inpaint", "outpaint", "txt2img"]

OUTPUT = "l2i"
DENOISE = "sd3_denoise"


def _ident(model: Any) -> Any:
    from invoke_nb.graph.standard import _ident as ident

    return ident(model) if model is not None else None


def _base(
    g: Graph,
    model: Any,
    prompt: str,
    *,
    negative: str = "",
    width: int = 1024,
    height: int = 1024,
    steps: int = 30,
    cfg_scale: float = 3.5,
    seed: int = 0,
    vae: Any | None = None,
    t5_encoder: Any | None = None,
    clip_l: Any | None = None,
    clip_g: Any | None = None,
    seeding: str = "invokeai",
    generation_mode: str = "txt2img",
    scheduler: str | None = None,
    loras: Sequence[Any] = (),
    clip_skip: int = 0,
    seamless: Sequence[str] = (),
    cfg_rescale_multiplier: float = 0.0,
) -> None:
    del scheduler  # SD3 has one sampler (flow-matching Euler)
    for name, value in (
        ("loras", loras),
        ("clip_skip", clip_skip),
        ("seamless", seamless),
        ("cfg_rescale_multiplier", cfg_rescale_multiplier),
    ):
        if value:
            raise ValueError(f"SD3 graphs take no {name} (InvokeAI 6.11 has none for SD3)")
    ident = _ident(model)
    width, height = width - width % 16, height - height % 16
    loader = g.add(
        "sd3_model_loader",
        id="model_loader",
        model=ident,
        t5_encoder_model=_ident(t5_encoder),
        clip_l_model=_ident(clip_l),
        clip_g_model=_ident(clip_g),
        vae_model=_ident(vae),
    )
    g.add("string", id="positive_prompt", value=prompt)
    g.add("string", id="negative_prompt", value=negative)
    g.add("integer", id="seed", value=seed)
    for pid, cond in (("positive_prompt", "pos_cond"), ("negative_prompt", "neg_cond")):
        g.add("sd3_text_encoder", id=cond)
        g.connect(pid, "value", cond, "prompt")
        for part in ("clip_l", "clip_g", "t5_encoder"):
            g.connect(loader, part, cond, part)
    den = g.add(
        "sd3_denoise",
        id=DENOISE,
        width=width,
        height=height,
        steps=steps,
        cfg_scale=cfg_scale,
        denoising_start=0.0,
        denoising_end=1.0,
        seeding=seeding,
    )
    g.connect(loader, "transformer", den, "transformer")
    g.connect("pos_cond", "conditioning", den, "positive_conditioning")
    g.connect("neg_cond", "conditioning", den, "negative_conditioning")
    g.connect("seed", "value", den, "seed")
    meta = g.add(
        "core_metadata",
        id="core_metadata",
        generation_mode="sd3_" + generation_mode,
        width=width,
        height=height,
        cfg_scale=cfg_scale,
        steps=steps,
        model=ident,
        vae=_ident(vae),
    )
    g.connect("positive_prompt", "value", meta, "positive_prompt")
    g.connect("negative_prompt", "value", meta, "negative_prompt")
    g.connect("seed", "value", meta, "seed")
    out = g.add("sd3_l2i", id=OUTPUT)
    g.connect(den, "latents", out, "latents")
    g.connect(loader, "vae", out, "vae")
    g.connect(meta, "metadata", out, "metadata")


def txt2img(model: Any, prompt: str, **kw: Any) -> Graph:
    """Text to image with an SD3 model (``width``/``height`` rounded down to 16)."""
    g = Graph()
    _base(g, model, prompt, **kw)
    return g


def _image_graph(
    mode: str, model: Any, image: Any, prompt: str, strength: float, kw: dict
) -> Graph:
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be within [0, 1], got {strength}")
    if isinstance(image, Image.Image):
        kw = {**kw, "width": image.width, "height": image.height}
    g = Graph()
    _base(g, model, prompt, generation_mode=mode, **kw)
    i2l = g.add("sd3_i2l", id="i2l", image=image)
    g.connect("model_loader", "vae", i2l, "vae")
    g.connect(i2l, "latents", DENOISE, "latents")
    g.set(DENOISE, denoising_start=1.0 - strength)
    g.set("core_metadata", strength=strength)
    return g


def img2img(model: Any, image: Any, prompt: str, *, strength: float = 0.75, **kw: Any) -> Graph:
    """Image to image: encode ``image``, noise it to ``strength``, denoise the rest."""
    return _image_graph("img2img", model, image, prompt, strength, kw)


def _mask(g: Graph, mask: Any, edge_radius: int) -> str:
    gm = g.add(
        "create_gradient_mask",
        id="gradient_mask",
        mask=mask,
        edge_radius=edge_radius,
        coherence_mode="Gaussian Blur",
        fp32=True,
    )
    g.connect(gm, "denoise_mask", DENOISE, "denoise_mask")
    return gm


def inpaint(
    model: Any,
    image: Any,
    mask: Any,
    prompt: str,
    *,
    strength: float = 1.0,
    edge_radius: int = 16,
    paste_back: bool = True,
    **kw: Any,
) -> Graph:
    """Repaint where ``mask`` is black (white = keep); paste-back keeps the rest exactly."""
    from invoke_nb.graph.standard import _paste_back

    g = _image_graph("inpaint", model, image, prompt, strength, kw)
    gm = _mask(g, mask, edge_radius)
    if paste_back:
        _paste_back(g, image, gm)
        g.connect("core_metadata", "metadata", "paste_back", "metadata")  # the saved image
    return g


def outpaint(
    model: Any,
    image: Image.Image,
    prompt: str,
    *,
    strength: float = 1.0,
    edge_radius: int = 16,
    **kw: Any,
) -> Graph:
    """Fill the transparent pixels of an RGBA ``image`` (infilled first, then inpainted)."""
    from invoke_nb.graph.standard import _paste_back

    if image.mode != "RGBA":
        raise ValueError(
            f"outpaint needs an RGBA image whose transparent pixels are filled; got mode {image.mode}"
        )
    alpha = image.getchannel("A").point(lambda a: 255 if a > 0 else 0)
    g = _image_graph("outpaint", model, image, prompt, strength, kw)
    infill = g.add("infill_tile", id="infill", image=image, tile_size=32, seed=kw.get("seed", 0))
    g.connect(infill, "image", "i2l", "image")
    gm = _mask(g, alpha, edge_radius)
    _paste_back(g, image.convert("RGB"), gm, base_from=(infill, "image"))
    g.connect("core_metadata", "metadata", "paste_back", "metadata")  # the saved image
    return g
