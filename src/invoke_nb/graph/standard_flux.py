"""Standard FLUX.1 graphs (txt2img, img2img, inpaint, outpaint), shaped as InvokeAI's linear
UI builds them (``buildFLUXGraph.ts``): ``flux_model_loader`` (transformer + T5 + CLIP-L +
VAE) -> ``flux_text_encoder`` -> ``collect`` -> ``flux_denoise`` -> ``flux_vae_decode``, with
the prompt and seed as primitive nodes feeding both their consumers and ``core_metadata``,
``flux_vae_encode`` for img2img, a gradient denoise mask for inpaint and outpaint.

InvokeAI's UI sends no negative prompt for FLUX; here a non-empty ``negative`` adds one more
``flux_text_encoder`` and turns on true CFG at ``cfg_scale`` (its ``negative_text_conditioning``).
Node ids are fixed: the decode node is ``l2i`` (:data:`invoke_nb.graph.standard.OUTPUT`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PIL import Image

from invoke_nb.graph.model import Graph

__all__ = ["fill_flux_models", "img2img", "inpaint", "outpaint", "txt2img"]

OUTPUT = "l2i"


def _ident(model: Any) -> Any:
    from invoke_nb.graph.standard import _ident as ident

    return ident(model)


def fill_flux_models(model: Any, models: Any, kw: dict[str, Any]) -> dict[str, Any]:
    """``kw`` with ``t5_encoder``/``clip_embed``/``vae`` filled from ``models`` (a model
    manager) when ``model`` is a FLUX model and they were not given: the first installed of
    each kind (a FLUX VAE), as InvokeAI's UI preselects them."""
    if getattr(model, "base", None) != "flux":
        return kw
    kw = dict(kw)
    wanted = {
        "t5_encoder": ("t5_encoder", None),
        "clip_embed": ("clip_embed", None),
        "vae": ("vae", "flux"),
    }
    for key, (mtype, base) in wanted.items():
        if kw.get(key) is not None:
            kw[key] = _ident(models.get(kw[key]) if isinstance(kw[key], str) else kw[key])
            continue
        found = [r for r in models.list(type=mtype) if base is None or r.base == base]
        if not found:
            raise LookupError(f"a FLUX model needs a {mtype} model ({key}=...): install one first")
        kw[key] = _ident(found[0])
    return kw


def _base(
    g: Graph,
    model: Any,
    prompt: str,
    *,
    negative: str,
    width: int,
    height: int,
    steps: int,
    cfg_scale: float,
    scheduler: str,
    seed: int,
    loras: Sequence[tuple[Any, float]],
    t5_encoder: Any,
    clip_embed: Any,
    vae: Any,
    guidance: float,
    seeding: str,
    generation_mode: str,
) -> str:
    ident = _ident(model)
    if t5_encoder is None or clip_embed is None or vae is None:
        raise ValueError("a FLUX graph needs t5_encoder=, clip_embed= and vae= models")
    if width % 16 or height % 16:
        raise ValueError(f"FLUX needs a width and height divisible by 16, got {width}x{height}")
    loader = g.add(
        "flux_model_loader",
        id="flux_model_loader",
        model=ident,
        t5_encoder_model=_ident(t5_encoder),
        clip_embed_model=_ident(clip_embed),
        vae_model=_ident(vae),
    )
    transformer, clip, t5 = (loader, "transformer"), (loader, "clip"), (loader, "t5_encoder")
    if loras:
        coll = g.add(
            "flux_lora_collection_loader",
            id="lora_collection_loader",
            loras=[{"lora": _ident(lo).model_dump(), "weight": w} for lo, w in loras],
        )
        g.connect(*transformer, coll, "transformer")
        g.connect(*clip, coll, "clip")
        g.connect(*t5, coll, "t5_encoder")
        transformer, clip, t5 = (coll, "transformer"), (coll, "clip"), (coll, "t5_encoder")
    g.add("string", id="positive_prompt", value=prompt)
    g.add("integer", id="seed", value=seed)
    enc = g.add("flux_text_encoder", id="flux_text_encoder")
    g.connect(*clip, enc, "clip")
    g.connect(*t5, enc, "t5_encoder")
    g.connect(loader, "max_seq_len", enc, "t5_max_seq_len")
    g.connect("positive_prompt", "value", enc, "prompt")
    collect = g.add("collect", id="pos_cond_collect")
    g.connect(enc, "conditioning", collect, "item")
    den = g.add(
        "flux_denoise",
        id="flux_denoise",
        guidance=guidance,
        num_steps=steps,
        scheduler=scheduler,
        width=width,
        height=height,
        denoising_start=0.0,
        denoising_end=1.0,
        seeding=seeding,
    )
    g.connect(collect, "collection", den, "positive_text_conditioning")
    g.connect(*transformer, den, "transformer")
    g.connect(loader, "vae", den, "controlnet_vae")
    g.connect("seed", "value", den, "seed")
    meta_fields: dict[str, Any] = {}
    if negative:
        g.add("string", id="negative_prompt", value=negative)
        neg = g.add("flux_text_encoder", id="flux_text_encoder_negative")
        g.connect(*clip, neg, "clip")
        g.connect(*t5, neg, "t5_encoder")
        g.connect(loader, "max_seq_len", neg, "t5_max_seq_len")
        g.connect("negative_prompt", "value", neg, "prompt")
        g.connect(neg, "conditioning", den, "negative_text_conditioning")
        g.set(den, cfg_scale=cfg_scale)
        meta_fields["cfg_scale"] = cfg_scale
    meta = g.add(
        "core_metadata",
        id="core_metadata",
        generation_mode=generation_mode,
        width=width,
        height=height,
        steps=steps,
        scheduler=scheduler,
        guidance=guidance,
        model=ident,
        vae=_ident(vae),
        t5_encoder=_ident(t5_encoder).model_dump(),
        clip_embed_model=_ident(clip_embed).model_dump(),
        loras=[{"model": _ident(lo).model_dump(), "weight": w} for lo, w in loras],
        **meta_fields,
    )
    g.connect("positive_prompt", "value", meta, "positive_prompt")
    g.connect("seed", "value", meta, "seed")
    if negative:
        g.connect("negative_prompt", "value", meta, "negative_prompt")
    out = g.add("flux_vae_decode", id=OUTPUT)
    g.connect(den, "latents", out, "latents")
    g.connect(loader, "vae", out, "vae")
    g.connect(meta, "metadata", out, "metadata")
    return den


_DEFAULTS: dict[str, Any] = {
    "negative": "",
    "width": 1024,
    "height": 1024,
    "steps": 30,
    "cfg_scale": 1.0,
    "scheduler": "euler",
    "seed": 0,
    "loras": (),
    "t5_encoder": None,
    "clip_embed": None,
    "vae": None,
    "guidance": 4.0,
    "seeding": "invokeai",
}


def _kw(kw: dict[str, Any]) -> dict[str, Any]:
    unknown = set(kw) - set(_DEFAULTS)
    if unknown:
        raise TypeError(f"FLUX graphs take no {', '.join(sorted(unknown))} argument")
    if kw.get("scheduler") not in (None, "euler", "heun", "lcm"):
        raise ValueError(
            f"FLUX schedulers are euler, heun and lcm; got scheduler={kw['scheduler']!r}"
        )
    return {**_DEFAULTS, **kw}


def txt2img(model: Any, prompt: str, **kw: Any) -> Graph:
    """FLUX text to image (keywords as :data:`_DEFAULTS`)."""
    g = Graph()
    _base(g, model, prompt, generation_mode="flux_txt2img", **_kw(kw))
    return g


def _image_graph(
    mode: str, model: Any, image: Any, prompt: str, strength: float, kw: dict[str, Any]
) -> tuple[Graph, str]:
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be within [0, 1], got {strength}")
    kw = _kw(kw)
    if isinstance(image, Image.Image):
        kw["width"], kw["height"] = image.width - image.width % 16, image.height - image.height % 16
    g = Graph()
    den = _base(g, model, prompt, generation_mode=mode, **kw)
    i2l = g.add("flux_vae_encode", id="flux_vae_encode", image=image)
    g.connect("flux_model_loader", "vae", i2l, "vae")
    g.connect(i2l, "latents", den, "latents")
    g.set(den, denoising_start=1.0 - strength)
    g.set("core_metadata", strength=strength)
    return g, den


def img2img(model: Any, image: Any, prompt: str, *, strength: float = 0.75, **kw: Any) -> Graph:
    """FLUX image to image: encode, noise to ``strength``, denoise the rest of the way."""
    return _image_graph("flux_img2img", model, image, prompt, strength, kw)[0]


def _mask_and_paste(
    g: Graph, den: str, mask: Any, image: Any, edge_radius: int, base_from: Any = None
) -> None:
    from invoke_nb.graph.standard import _paste_back

    gm = g.add(
        "create_gradient_mask",
        id="gradient_mask",
        mask=mask,
        edge_radius=edge_radius,
        coherence_mode="Gaussian Blur",
        fp32=True,
    )
    g.connect(gm, "denoise_mask", den, "denoise_mask")
    _paste_back(g, image, gm, base_from=base_from)


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
    """Repaint where ``mask`` is black (white = keep, InvokeAI's convention)."""
    g, den = _image_graph("flux_inpaint", model, image, prompt, strength, kw)
    if paste_back:
        _mask_and_paste(g, den, mask, image, edge_radius)
    else:
        gm = g.add(
            "create_gradient_mask",
            id="gradient_mask",
            mask=mask,
            edge_radius=edge_radius,
            coherence_mode="Gaussian Blur",
            fp32=True,
        )
        g.connect(gm, "denoise_mask", den, "denoise_mask")
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
    """Fill the transparent pixels of an RGBA ``image`` (infill, then inpaint)."""
    if image.mode != "RGBA":
        raise ValueError(
            f"outpaint needs an RGBA image whose transparent pixels are filled; got mode {image.mode}"
        )
    mask = image.getchannel("A").point(lambda a: 255 if a > 0 else 0)
    g, den = _image_graph("flux_outpaint", model, image, prompt, strength, kw)
    infill = g.add("infill_tile", id="infill", image=image, tile_size=32, seed=kw.get("seed", 0))
    g.connect(infill, "image", "flux_vae_encode", "image")
    _mask_and_paste(g, den, mask, image.convert("RGB"), edge_radius, base_from=(infill, "image"))
    return g
