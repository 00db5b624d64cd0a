"""Z-Image generation graphs, shaped as InvokeAI 6.11's linear UI builds them.

``z_image_model_loader`` -> (``z_image_lora_loader`` chain) -> ``z_image_text_encoder``
(positive from a ``string`` node; negative only when CFG is on), each through a
``collect`` node -> ``z_image_denoise``
(seed from an ``integer`` node) -> ``z_image_l2i``, plus ``z_image_i2l`` for img2img and a
``core_metadata`` node feeding the decoder. Ids match :mod:`invoke_nb.graph.standard`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PIL import Image

from invoke_nb.graph.model import Graph
from invoke_nb.graph.standard_cogview4 import _unsupported

__all__ = ["img2img", "txt2img"]

OUTPUT = "l2i"
DENOISE = "denoise_latents"


def build(
    model: Any,
    prompt: str,
    *,
    negative: str = "",
    width: int = 1024,
    height: int = 1024,
    steps: int = 8,
    cfg_scale: float = 1.0,
    scheduler: str = "euler",
    seed: int = 0,
    seeding: str = "invokeai",
    loras: Sequence[tuple[Any, float]] = (),
    generation_mode: str = "txt2img",
    qwen3_encoder: Any = None,
    vae: Any = None,
    **other: Any,
) -> Graph:
    """The txt2img graph; ``cfg_scale`` is Z-Image's ``guidance_scale`` (1 = off)."""
    from invoke_nb.graph.standard import _ident

    _unsupported("z-image", **other)
    if scheduler not in ("euler", "heun", "lcm"):
        scheduler = "euler"  # the Studio's SD default names another family's sampler
    ident = _ident(model)
    g = Graph()
    loader_values: dict[str, Any] = {"model": ident}
    if qwen3_encoder is not None:
        loader_values["qwen3_encoder_model"] = _ident(qwen3_encoder)
    if vae is not None:
        loader_values["vae_model"] = _ident(vae)
    g.add("z_image_model_loader", id="model_loader", **loader_values)
    transformer, encoder = ("model_loader", "transformer"), ("model_loader", "qwen3_encoder")
    for i, (lora, weight) in enumerate(loras):
        lid = g.add("z_image_lora_loader", id=f"lora_{i}", lora=_ident(lora), weight=weight)
        g.connect(*transformer, lid, "transformer")
        g.connect(*encoder, lid, "qwen3_encoder")
        transformer, encoder = (lid, "transformer"), (lid, "qwen3_encoder")
    g.add("string", id="positive_prompt", value=prompt)
    g.add("string", id="negative_prompt", value=negative)
    g.add("integer", id="seed", value=seed)
    g.add(
        "z_image_denoise",
        id=DENOISE,
        width=width,
        height=height,
        steps=steps,
        guidance_scale=cfg_scale,
        scheduler=scheduler,
        seeding=seeding,
    )
    conds = [("positive_prompt", "pos_cond", "positive_conditioning")]
    if cfg_scale > 1.0:
        conds.append(("negative_prompt", "neg_cond", "negative_conditioning"))
    for src, cond, field in conds:
        g.add("z_image_text_encoder", id=cond)
        g.add("collect", id=f"{cond}_collect")
        g.connect(src, "value", cond, "prompt")
        g.connect(*encoder, cond, "qwen3_encoder")
        g.connect(cond, "conditioning", f"{cond}_collect", "item")
        g.connect(f"{cond}_collect", "collection", DENOISE, field)
    g.connect(*transformer, DENOISE, "transformer")
    g.connect("model_loader", "vae", DENOISE, "vae")
    g.connect("seed", "value", DENOISE, "seed")
    g.add(
        "core_metadata",
        id="core_metadata",
        generation_mode=f"z_image_{generation_mode}",
        width=width,
        height=height,
        cfg_scale=cfg_scale,
        steps=steps,
        scheduler=scheduler,
        model=ident,
        loras=[{"model": _ident(lo).model_dump(), "weight": w} for lo, w in loras],
    )
    g.connect("positive_prompt", "value", "core_metadata", "positive_prompt")
    g.connect("negative_prompt", "value", "core_metadata", "negative_prompt")
    g.connect("seed", "value", "core_metadata", "seed")
    g.add("z_image_l2i", id=OUTPUT)
    g.connect(DENOISE, "latents", OUTPUT, "latents")
    g.connect("model_loader", "vae", OUTPUT, "vae")
    g.connect("core_metadata", "metadata", OUTPUT, "metadata")
    return g


def txt2img(model: Any, prompt: str, **kw: Any) -> Graph:
    """Text to image with a Z-Image model (InvokeAI's defaults: 1024 px, 8 steps, no CFG)."""
    return build(model, prompt, **kw)


def img2img(
    model: Any, image: Image.Image | Any, prompt: str, *, strength: float = 0.75, **kw: Any
) -> Graph:
    """Encode ``image``, noise it to ``strength``, denoise the rest of the way."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be within [0, 1], got {strength}")
    if isinstance(image, Image.Image):
        kw["width"], kw["height"] = image.width - image.width % 16, image.height - image.height % 16
        if (kw["width"], kw["height"]) != image.size:
            image = image.crop((0, 0, kw["width"], kw["height"]))
    g = build(model, prompt, generation_mode="img2img", **kw)
    g.add("z_image_i2l", id="i2l", image=image)
    g.connect("model_loader", "vae", "i2l", "vae")
    g.connect("i2l", "latents", DENOISE, "latents")
    g.set(DENOISE, denoising_start=1.0 - strength)
    g.set("core_metadata", strength=strength)
    return g
