"""CogView4 generation graphs, shaped as InvokeAI 6.11's linear UI builds them.

``cogview4_model_loader`` -> two ``cogview4_text_encoder`` (positive from a ``string``
node, negative) -> ``cogview4_denoise`` (seed from an ``integer`` node) -> ``cogview4_l2i``,
plus ``cogview4_i2l`` for img2img and a ``core_metadata`` node feeding the decoder, so
saved PNGs recall and re-run. Node ids match :mod:`invoke_nb.graph.standard`'s
(``l2i`` is the output, ``denoise_latents`` the denoiser).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PIL import Image

from invoke_nb.graph.model import Graph

__all__ = ["img2img", "txt2img"]

OUTPUT = "l2i"
DENOISE = "denoise_latents"


def _unsupported(base: str, **given: Any) -> None:
    """Options the family has no node input for fail, naming the option."""
    for name, value in given.items():
        if value not in (None, (), [], 0, 0.0, ""):
            raise ValueError(f"{name}={value!r} is not available for {base} models")


def build(
    model: Any,
    prompt: str,
    *,
    negative: str = "",
    width: int = 1024,
    height: int = 1024,
    steps: int = 25,
    cfg_scale: float = 3.5,
    seed: int = 0,
    seeding: str = "invokeai",
    generation_mode: str = "txt2img",
    loras: Sequence[tuple[Any, float]] = (),
    **other: Any,
) -> Graph:
    """The txt2img graph (``generation_mode`` only labels the metadata)."""
    from invoke_nb.graph.standard import _ident

    other.pop("scheduler", None)  # CogView4 has one sampler; the Studio passes its default
    _unsupported("cogview4", loras=list(loras), **other)
    ident = _ident(model)
    g = Graph()
    g.add("cogview4_model_loader", id="model_loader", model=ident)
    g.add("string", id="positive_prompt", value=prompt)
    g.add("string", id="negative_prompt", value=negative)
    g.add("integer", id="seed", value=seed)
    for src, cond in (("positive_prompt", "pos_cond"), ("negative_prompt", "neg_cond")):
        g.add("cogview4_text_encoder", id=cond)
        g.connect(src, "value", cond, "prompt")
        g.connect("model_loader", "glm_encoder", cond, "glm_encoder")
    g.add(
        "cogview4_denoise",
        id=DENOISE,
        width=width,
        height=height,
        steps=steps,
        cfg_scale=cfg_scale,
        seeding=seeding,
    )
    g.connect("model_loader", "transformer", DENOISE, "transformer")
    g.connect("pos_cond", "conditioning", DENOISE, "positive_conditioning")
    g.connect("neg_cond", "conditioning", DENOISE, "negative_conditioning")
    g.connect("seed", "value", DENOISE, "seed")
    g.add(
        "core_metadata",
        id="core_metadata",
        generation_mode=f"cogview4_{generation_mode}",
        width=width,
        height=height,
        cfg_scale=cfg_scale,
        steps=steps,
        model=ident,
    )
    g.connect("positive_prompt", "value", "core_metadata", "positive_prompt")
    g.connect("negative_prompt", "value", "core_metadata", "negative_prompt")
    g.connect("seed", "value", "core_metadata", "seed")
    g.add("cogview4_l2i", id=OUTPUT)
    g.connect(DENOISE, "latents", OUTPUT, "latents")
    g.connect("model_loader", "vae", OUTPUT, "vae")
    g.connect("core_metadata", "metadata", OUTPUT, "metadata")
    return g


def txt2img(model: Any, prompt: str, **kw: Any) -> Graph:
    """Text to image with a CogView4 model (InvokeAI's defaults: 1024 px, 25 steps, CFG 3.5)."""
    return build(model, prompt, **kw)


def img2img(
    model: Any, image: Image.Image | Any, prompt: str, *, strength: float = 0.75, **kw: Any
) -> Graph:
    """Encode ``image``, noise it to ``strength``, denoise the rest of the way."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be within [0, 1], got {strength}")
    if isinstance(image, Image.Image):
        kw["width"], kw["height"] = image.width - image.width % 32, image.height - image.height % 32
        if (kw["width"], kw["height"]) != image.size:
            image = image.crop((0, 0, kw["width"], kw["height"]))
    g = build(model, prompt, generation_mode="img2img", **kw)
    g.add("cogview4_i2l", id="i2l", image=image)
    g.connect("model_loader", "vae", "i2l", "vae")
    g.connect("i2l", "latents", DENOISE, "latents")
    g.set(DENOISE, denoising_start=1.0 - strength)
    g.set("core_metadata", strength=strength)
    return g
