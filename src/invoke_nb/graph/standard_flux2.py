"""Standard FLUX.2 Klein graphs (txt2img, img2img, inpaint, outpaint), shaped as InvokeAI's linear UI builds them.

flux2_klein_model_loader -> flux2_klein_text_encoder (its max_seq_len from the loader) ->
flux2_denoise -> flux2_vae_decode, with the prompt and seed as primitive nodes feeding a
``core_metadata`` node (``generation_mode`` ``flux2_txt2img``/``flux2_img2img``), so PNGs carry
InvokeAI's FLUX.2 metadata. Node ids are fixed: the image comes from ``l2i`` (the same id the
SD graphs use) and the denoiser is ``flux2_denoise``. A ``cfg_scale`` other than 1 adds a
negative prompt encoder (Klein base models; distilled Klein models want 1 and 4 steps).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PIL import Image

from invoke_nb.graph.model import Graph

__all__ = ["DENOISE", "OUTPUT", "img2img", "inpaint", "outpaint", "txt2img"]

OUTPUT = "l2i"
DENOISE = "flux2_denoise"


def _ident(model: Any) -> Any:
    from invoke_nb.nodes.types import ModelIdentifierField

    if isinstance(model, ModelIdentifierField):
        return model
    if isinstance(model, dict):
        return ModelIdentifierField(**model)
    fields = ("key", "hash", "name", "base", "type")
    return ModelIdentifierField(**{f: getattr(model, f) for f in fields})


def txt2img(
    model: Any,
    prompt: str,
    *,
    negative: str = "",
    width: int = 1024,
    height: int = 1024,
    steps: int = 4,
    cfg_scale: float = 1.0,
    scheduler: str = "euler",
    seed: int = 0,
    loras: Sequence[tuple[Any, float]] = (),
    vae: Any | None = None,
    seeding: str = "invokeai",
    max_seq_len: int = 512,
    generation_mode: str = "flux2_txt2img",
    qwen3_encoder: Any | None = None,
    qwen3_source: Any | None = None,
    **other: Any,
) -> Graph:
    """Text to image with a FLUX.2 Klein model (a record or identifier of base ``flux2``).

    A single-file Klein transformer brings no encoder or VAE: name ``vae`` and a standalone
    ``qwen3_encoder`` (as InvokeAI's UI does) or a diffusers Klein as ``qwen3_source``."""
    if other:
        raise TypeError(f"FLUX.2 graphs take no {', '.join(sorted(other))} argument")
    ident = _ident(model)
    g = Graph()
    loader = g.add(
        "flux2_klein_model_loader",
        id="model_loader",
        model=ident,
        vae_model=_ident(vae) if vae is not None else None,
        qwen3_encoder_model=_ident(qwen3_encoder) if qwen3_encoder is not None else None,
        qwen3_source_model=_ident(qwen3_source) if qwen3_source is not None else None,
        max_seq_len=max_seq_len,
    )
    transformer, qwen3 = (loader, "transformer"), (loader, "qwen3_encoder")
    if loras:  # InvokeAI 6.14's Klein LoRA collection loader, on both bundles
        coll = g.add(
            "flux2_klein_lora_collection_loader",
            id="lora_collection_loader",
            loras=[{"lora": _ident(lo).model_dump(), "weight": w} for lo, w in loras],
        )
        g.connect(*transformer, coll, "transformer")
        g.connect(*qwen3, coll, "qwen3_encoder")
        transformer, qwen3 = (coll, "transformer"), (coll, "qwen3_encoder")
    g.add("string", id="positive_prompt", value=prompt)
    g.add("integer", id="seed", value=seed)
    pos = g.add("flux2_klein_text_encoder", id="pos_cond")
    g.connect("positive_prompt", "value", pos, "prompt")
    g.connect(*qwen3, pos, "qwen3_encoder")
    g.connect(loader, "max_seq_len", pos, "max_seq_len")
    den = g.add(
        "flux2_denoise",
        id=DENOISE,
        num_steps=steps,
        width=width,
        height=height,
        cfg_scale=cfg_scale,
        scheduler=scheduler,
        seeding=seeding,
    )
    g.connect("seed", "value", den, "seed")
    g.connect(*transformer, den, "transformer")
    g.connect(loader, "vae", den, "vae")
    g.connect(pos, "conditioning", den, "positive_text_conditioning")
    meta_extra: dict[str, Any] = {}
    if cfg_scale != 1.0:
        g.add("string", id="negative_prompt", value=negative)
        neg = g.add("flux2_klein_text_encoder", id="neg_cond")
        g.connect("negative_prompt", "value", neg, "prompt")
        g.connect(*qwen3, neg, "qwen3_encoder")
        g.connect(loader, "max_seq_len", neg, "max_seq_len")
        g.connect(neg, "conditioning", den, "negative_text_conditioning")
        meta_extra["cfg_scale"] = cfg_scale
    meta = g.add(
        "core_metadata",
        id="core_metadata",
        generation_mode=generation_mode,
        width=width,
        height=height,
        steps=steps,
        scheduler=scheduler,
        model=ident,
        vae=_ident(vae) if vae is not None else None,
        rand_device="cpu",
        loras=[{"model": _ident(lo).model_dump(), "weight": w} for lo, w in loras],
        **({"qwen3_encoder": _ident(qwen3_encoder)} if qwen3_encoder is not None else {}),
        **meta_extra,
    )
    g.connect("positive_prompt", "value", meta, "positive_prompt")
    if cfg_scale != 1.0:
        g.connect("negative_prompt", "value", meta, "negative_prompt")
    g.connect("seed", "value", meta, "seed")
    out = g.add("flux2_vae_decode", id=OUTPUT)
    g.connect(den, "latents", out, "latents")
    g.connect(loader, "vae", out, "vae")
    g.connect(meta, "metadata", out, "metadata")
    return g


def img2img(
    model: Any, image: Image.Image | Any, prompt: str, *, strength: float = 0.75, **kw: Any
) -> Graph:
    """Image to image: encode ``image`` and denoise from ``1 - strength`` of the schedule."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be within [0, 1], got {strength}")
    if isinstance(image, Image.Image):
        kw["width"], kw["height"] = image.width - image.width % 16, image.height - image.height % 16
        if (kw["width"], kw["height"]) != image.size:
            image = image.crop((0, 0, kw["width"], kw["height"]))
    g = txt2img(model, prompt, generation_mode="flux2_img2img", **kw)
    i2l = g.add("flux2_vae_encode", id="i2l", image=image)
    g.connect("model_loader", "vae", i2l, "vae")
    g.connect(i2l, "latents", DENOISE, "latents")
    g.set(DENOISE, denoising_start=1.0 - strength)
    g.set("core_metadata", strength=strength)
    return g


def _mask_and_paste(
    g: Graph, mask: Any, image: Any, edge_radius: int, base_from: Any = None
) -> None:
    """A gradient denoise mask into the denoiser and the paste-back onto the original."""
    from invoke_nb.graph.standard import _paste_back

    gm = g.add(
        "create_gradient_mask",
        id="gradient_mask",
        mask=mask,
        edge_radius=edge_radius,
        coherence_mode="Gaussian Blur",
        fp32=True,
    )
    g.connect(gm, "denoise_mask", DENOISE, "denoise_mask")
    _paste_back(g, image, gm, base_from=base_from)
    g.connect("core_metadata", "metadata", "paste_back", "metadata")  # the saved image's


def inpaint(
    model: Any,
    image: Image.Image | Any,
    mask: Image.Image | Any,
    prompt: str,
    *,
    strength: float = 1.0,
    edge_radius: int = 16,
    paste_back: bool = True,
    **kw: Any,
) -> Graph:
    """Repaint where ``mask`` is black (white = keep, InvokeAI's convention)."""
    g = img2img(model, image, prompt, strength=strength, **kw)
    g.set("core_metadata", generation_mode="flux2_inpaint")
    if paste_back:
        _mask_and_paste(g, mask, image, edge_radius)
    else:
        gm = g.add("create_gradient_mask", id="gradient_mask", mask=mask,
                   edge_radius=edge_radius, coherence_mode="Gaussian Blur", fp32=True)  # fmt: skip
        g.connect(gm, "denoise_mask", DENOISE, "denoise_mask")
    return g


def outpaint(
    model: Any, image: Image.Image, prompt: str, *, strength: float = 1.0, edge_radius: int = 16,
    **kw: Any,
) -> Graph:  # fmt: skip
    """Fill the transparent pixels of an RGBA ``image`` (infill, then inpaint)."""
    if image.mode != "RGBA":
        raise ValueError(
            f"outpaint needs an RGBA image whose transparent pixels are filled; got mode {image.mode}"
        )
    mask = image.getchannel("A").point(lambda a: 255 if a > 0 else 0)
    g = img2img(model, image.convert("RGB"), prompt, strength=strength, **kw)
    g.set("core_metadata", generation_mode="flux2_outpaint")
    infill = g.add("infill_tile", id="infill", image=image, tile_size=32, seed=kw.get("seed", 0))
    g.connect(infill, "image", "i2l", "image")
    _mask_and_paste(g, mask, image.convert("RGB"), edge_radius, base_from=(infill, "image"))
    return g
