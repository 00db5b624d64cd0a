"""Standard generation graphs (txt2img, img2img, inpaint, outpaint) for SD1/SD2 and SDXL.

They have the shape InvokeAI's UI builds: model loader -> (LoRA chain) -> (clip skip) ->
prompts; noise -> denoise_latents -> l2i, with ``i2l`` and a denoise mask for img2img and
inpaint, and a ``core_metadata`` node feeding ``l2i`` so saved PNGs carry InvokeAI-style
metadata. Node ids are fixed and readable (:data:`OUTPUT` is the image-producing node), so
callers can tweak a field with ``graph.set("denoise_latents", steps=...)`` and re-run: the
output cache then recomputes only what changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PIL import Image

from invoke_nb.graph.model import Graph

__all__ = ["OUTPUT", "img2img", "inpaint", "outpaint", "output_node", "txt2img"]

OUTPUT = "l2i"

_SDXL_BASES = ("sdxl", "sdxl-refiner")

# base -> module with that family's txt2img/img2img/inpaint/outpaint (same signatures)
FAMILY_GRAPHS = {
    "sd-3": "invoke_nb.graph.standard_sd3",
    "flux": "invoke_nb.graph.standard_flux",
    "cogview4": "invoke_nb.graph.standard_cogview4",
    "z-image": "invoke_nb.graph.standard_z_image",
    "flux2": "invoke_nb.graph.standard_flux2",
}


def _family(model: Any) -> Any:
    """The graph module of ``model``'s family when it is not SD1/SD2/SDXL, else None."""
    import importlib

    name = FAMILY_GRAPHS.get(getattr(_ident(model), "base", ""))
    return importlib.import_module(name) if name else None


def fill_models(model: Any, models: Any, kw: dict[str, Any]) -> dict[str, Any]:
    """``kw`` with the separate models ``model``'s family needs (encoders, VAE) filled from
    the model manager ``models`` where the caller named none (the family's ``fill_models``)."""
    fill = getattr(_family(model), "fill_models", None)
    return fill(model, models, kw) if fill is not None else kw


def output_node(g: Graph) -> str:
    """The id of the node whose ``image`` is the graph's result (paste-back when present)."""
    return "paste_back" if "paste_back" in g else OUTPUT


def _ident(model: Any) -> Any:
    """Accept a ModelIdentifierField, a ModelRecord or a dict."""
    from invoke_nb.nodes.types import ModelIdentifierField

    if isinstance(model, ModelIdentifierField):
        return model
    if isinstance(model, dict):
        return ModelIdentifierField(**model)
    fields = ("key", "hash", "name", "base", "type")
    return ModelIdentifierField(**{f: getattr(model, f) for f in fields})


def _base(
    g: Graph,
    model: Any,
    prompt: str,
    negative: str,
    *,
    width: int,
    height: int,
    steps: int,
    cfg_scale: float,
    scheduler: str,
    seed: int,
    loras: Sequence[tuple[Any, float]],
    vae: Any | None,
    clip_skip: int,
    seamless: Sequence[str],
    cfg_rescale_multiplier: float,
    seeding: str,
    generation_mode: str,
    control: Sequence[dict[str, Any]] | None = None,
    ip_adapter: Sequence[dict[str, Any]] | None = None,
    regions: Sequence[dict[str, Any]] | None = None,
) -> dict[str, str]:
    """Add the shared nodes; returns ids of the outputs to connect (unet, vae, denoise, ...)."""
    ident = _ident(model)
    sdxl = ident.base in _SDXL_BASES
    loader = g.add(
        "sdxl_model_loader" if sdxl else "main_model_loader", id="model_loader", model=ident
    )
    unet_src, clip_src, clip2_src, vae_src = (
        (loader, "unet"),
        (loader, "clip"),
        (loader, "clip2"),
        (loader, "vae"),
    )
    for i, (lora, weight) in enumerate(loras):
        lid = g.add(
            "sdxl_lora_loader" if sdxl else "lora_loader",
            id=f"lora_{i}",
            lora=_ident(lora),
            weight=weight,
        )
        g.connect(*unet_src, lid, "unet")
        g.connect(*clip_src, lid, "clip")
        unet_src, clip_src = (lid, "unet"), (lid, "clip")
        if sdxl:
            g.connect(*clip2_src, lid, "clip2")
            clip2_src = (lid, "clip2")
    if clip_skip:
        cs = g.add("clip_skip", id="clip_skip", skipped_layers=clip_skip)
        g.connect(*clip_src, cs, "clip")
        clip_src = (cs, "clip")
    if vae is not None:
        vl = g.add("vae_loader", id="vae_loader", vae_model=_ident(vae))
        vae_src = (vl, "vae")
    if seamless:
        sm = g.add(
            "seamless", id="seamless", seamless_x="x" in seamless, seamless_y="y" in seamless
        )
        g.connect(*unet_src, sm, "unet")
        g.connect(*vae_src, sm, "vae")
        unet_src, vae_src = (sm, "unet"), (sm, "vae")
    # Prompts and seed are primitive nodes feeding both their consumers and the metadata (as
    # InvokeAI's UI builds them), so a batch over `positive_prompt.value` or `seed.value`
    # keeps the saved metadata true.
    g.add("string", id="positive_prompt", value=prompt)
    g.add("string", id="negative_prompt", value=negative)
    g.add("integer", id="seed", value=seed)
    for pid, cond in (("positive_prompt", "pos_cond"), ("negative_prompt", "neg_cond")):
        if sdxl:
            g.add(
                "sdxl_compel_prompt",
                id=cond,
                original_width=width,
                original_height=height,
                target_width=width,
                target_height=height,
            )
            g.connect(pid, "value", cond, "prompt")
            g.connect(pid, "value", cond, "style")
            g.connect(*clip_src, cond, "clip")
            g.connect(*clip2_src, cond, "clip2")
        else:
            g.add("compel", id=cond)
            g.connect(pid, "value", cond, "prompt")
            g.connect(*clip_src, cond, "clip")
    noise = g.add("noise", id="noise", width=width, height=height, use_cpu=True)
    g.connect("seed", "value", noise, "seed")
    den = g.add(
        "denoise_latents",
        id="denoise_latents",
        steps=steps,
        cfg_scale=cfg_scale,
        scheduler=scheduler,
        cfg_rescale_multiplier=cfg_rescale_multiplier,
        denoising_start=0.0,
        denoising_end=1.0,
        seeding=seeding,
    )
    g.connect("pos_cond", "conditioning", den, "positive_conditioning")
    g.connect("neg_cond", "conditioning", den, "negative_conditioning")
    g.connect(noise, "noise", den, "noise")
    g.connect(*unet_src, den, "unet")
    meta = g.add(
        "core_metadata",
        id="core_metadata",
        generation_mode=("sdxl_" if sdxl else "") + generation_mode,
        width=width,
        height=height,
        rand_device="cpu",
        cfg_scale=cfg_scale,
        cfg_rescale_multiplier=cfg_rescale_multiplier,
        steps=steps,
        scheduler=scheduler,
        clip_skip=clip_skip,
        model=ident,
        loras=[{"model": _ident(lo).model_dump(), "weight": w} for lo, w in loras],
        seamless_x="x" in seamless or None,
        seamless_y="y" in seamless or None,
    )
    g.connect("positive_prompt", "value", meta, "positive_prompt")
    g.connect("negative_prompt", "value", meta, "negative_prompt")
    g.connect("seed", "value", meta, "seed")
    out = g.add(OUTPUT, id=OUTPUT, fp32=True)
    g.connect(den, "latents", out, "latents")
    g.connect(*vae_src, out, "vae")
    g.connect(meta, "metadata", out, "metadata")
    if control or ip_adapter or regions:
        from invoke_nb.graph.standard_control import add_control_layers

        add_control_layers(
            g, sdxl=sdxl, control=control, ip_adapter=ip_adapter, regions=regions,
            clip=clip_src, clip2=clip2_src,
        )  # fmt: skip
    return {
        "denoise": den,
        "vae_node": vae_src[0],
        "vae_field": vae_src[1],
        "unet_node": unet_src[0],
        "unet_field": unet_src[1],
    }


def txt2img(
    model: Any,
    prompt: str,
    *,
    negative: str = "",
    width: int = 512,
    height: int = 512,
    steps: int = 30,
    cfg_scale: float = 7.5,
    scheduler: str = "euler",
    seed: int = 0,
    loras: Sequence[tuple[Any, float]] = (),
    vae: Any | None = None,
    clip_skip: int = 0,
    seamless: Sequence[str] = (),
    cfg_rescale_multiplier: float = 0.0,
    seeding: str = "invokeai",
    control: Sequence[dict[str, Any]] | None = None,
    ip_adapter: Sequence[dict[str, Any]] | None = None,
    regions: Sequence[dict[str, Any]] | None = None,
    **family_kw: Any,
) -> Graph:
    """Text to image. ``model`` is a record or identifier; its ``base`` picks the family
    (SD1/SD2/SDXL here; FLUX, SD3 ... in their own modules, which get only the arguments the
    caller changed, so each family keeps its own defaults, plus its own keywords such as
    FLUX's ``guidance``, ``t5_encoder``, ``clip_embed``).

    ``control``, ``ip_adapter`` and ``regions`` add control layers
    (:mod:`invoke_nb.graph.standard_control`)."""
    if (family := _family(model)) is not None:
        return family.txt2img(model, prompt, **_given(txt2img, locals()))
    if family_kw:
        raise TypeError(f"txt2img() got unexpected keywords {sorted(family_kw)}")
    g = Graph()
    _base(
        g,
        model,
        prompt,
        negative,
        width=width,
        height=height,
        steps=steps,
        cfg_scale=cfg_scale,
        scheduler=scheduler,
        seed=seed,
        loras=loras,
        vae=vae,
        clip_skip=clip_skip,
        seamless=seamless,
        cfg_rescale_multiplier=cfg_rescale_multiplier,
        seeding=seeding,
        generation_mode="txt2img",
        control=control,
        ip_adapter=ip_adapter,
        regions=regions,
    )
    return g


def _image_graph(
    mode: str,
    model: Any,
    image: Image.Image | Any,
    prompt: str,
    strength: float,
    kw: dict[str, Any],
) -> tuple[Graph, dict[str, str]]:
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be within [0, 1], got {strength}")
    g = Graph()
    width, height = (
        (image.width, image.height)
        if isinstance(image, Image.Image)
        else (kw["width"], kw["height"])
    )
    kw = {**kw, "width": width - width % 8, "height": height - height % 8}
    ids = _base(g, model, prompt, generation_mode=mode, **kw)
    i2l = g.add("i2l", id="i2l", image=image, fp32=True)
    g.connect(ids["vae_node"], ids["vae_field"], i2l, "vae")
    g.connect(i2l, "latents", ids["denoise"], "latents")
    g.set(ids["denoise"], denoising_start=1.0 - strength)
    g.set("core_metadata", strength=strength)
    return g, ids


_DEFAULTS: dict[str, Any] = {
    "negative": "",
    "width": 512,
    "height": 512,
    "steps": 30,
    "cfg_scale": 7.5,
    "scheduler": "euler",
    "seed": 0,
    "loras": (),
    "vae": None,
    "clip_skip": 0,
    "seamless": (),
    "cfg_rescale_multiplier": 0.0,
    "seeding": "invokeai",
    "control": None,
    "ip_adapter": None,
    "regions": None,
}


def img2img(
    model: Any, image: Image.Image | Any, prompt: str, *, strength: float = 0.75, **kw: Any
) -> Graph:
    """Image to image: encode ``image``, noise it to ``strength``, denoise the rest of the way."""
    if (family := _family(model)) is not None:
        kw = _given(txt2img, {"model": model, **kw})
        return family.img2img(model, image, prompt, strength=strength, **kw)
    g, _ = _image_graph("img2img", model, image, prompt, strength, {**_DEFAULTS, **kw})
    return g


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
    """Repaint where ``mask`` is black (white = keep, InvokeAI's mask convention).

    A gradient mask softens the seam; with ``paste_back`` the generated pixels are pasted
    onto the original through the expanded mask area, so unmasked pixels stay exactly.
    """
    if (family := _family(model)) is not None:
        kw = _given(txt2img, {"model": model, **kw})
        return family.inpaint(
            model,
            image,
            mask,
            prompt,
            strength=strength,
            edge_radius=edge_radius,
            paste_back=paste_back,
            **kw,
        )
    g, ids = _image_graph("inpaint", model, image, prompt, strength, {**_DEFAULTS, **kw})
    gm = g.add(
        "create_gradient_mask",
        id="gradient_mask",
        mask=mask,
        edge_radius=edge_radius,
        coherence_mode="Gaussian Blur",
        fp32=True,
    )
    g.connect(ids["unet_node"], ids["unet_field"], gm, "unet")
    g.connect(ids["vae_node"], ids["vae_field"], gm, "vae")
    g.set(gm, image=image)
    g.connect(gm, "denoise_mask", ids["denoise"], "denoise_mask")
    if paste_back:
        _paste_back(g, image, gm)
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
    """Fill the transparent pixels of an RGBA ``image`` (the canvas outside the old picture).

    The transparent area is filled first by ``infill_tile`` (so the model starts from
    plausible colours), then inpainted; the alpha channel is the mask.
    """
    if (family := _family(model)) is not None:
        kw = _given(txt2img, {"model": model, **kw})
        return family.outpaint(
            model, image, prompt, strength=strength, edge_radius=edge_radius, **kw
        )
    if image.mode != "RGBA":
        raise ValueError(
            f"outpaint needs an RGBA image whose transparent pixels are filled; got mode {image.mode}"
        )
    mask = image.getchannel("A").point(lambda a: 255 if a > 0 else 0)
    g, ids = _image_graph("outpaint", model, image, prompt, strength, {**_DEFAULTS, **kw})
    infill = g.add("infill_tile", id="infill", image=image, tile_size=32, seed=kw.get("seed", 0))
    g.connect(infill, "image", "i2l", "image")
    gm = g.add(
        "create_gradient_mask",
        id="gradient_mask",
        mask=mask,
        edge_radius=edge_radius,
        coherence_mode="Gaussian Blur",
        fp32=True,
    )
    g.connect(gm, "denoise_mask", ids["denoise"], "denoise_mask")
    _paste_back(g, image.convert("RGB"), gm, base_from=(infill, "image"))
    return g


def _given(fn: Any, args: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``fn`` whose values differ from its defaults, plus the family
    keywords: what a family's builder gets, so its own defaults hold for the rest."""
    import inspect

    params = inspect.signature(fn).parameters
    given = {
        k: v
        for k, v in args.items()
        if k in params
        and params[k].kind is inspect.Parameter.KEYWORD_ONLY
        and v != params[k].default
    }
    # keywords the SD signature lacks (a family's own, e.g. FLUX's ``guidance``) pass through
    given.update({k: v for k, v in args.items() if k not in params and k not in _NOT_KW})
    sd_only = sorted(_SD_ONLY & set(given))
    if sd_only:
        base = _ident(args["model"]).base
        raise FamilyArgumentError(
            f"{base} graphs take no {', '.join(sd_only)} argument (SD1/SD2/SDXL only)"
        )
    return {**given, **args.get("family_kw", {})}


_SD_ONLY = {"clip_skip", "seamless", "cfg_rescale_multiplier"}
_NOT_KW = {"model", "prompt", "family", "family_kw"}


class FamilyArgumentError(TypeError, ValueError):
    """A one-liner argument the model's family does not take (a TypeError like any unknown
    keyword, and a ValueError because the value, not the call, is what does not fit)."""


def _paste_back(g: Graph, image: Any, gm: str, base_from: tuple[str, str] | None = None) -> None:
    """Paste the decoded pixels onto the original through the mask's expanded area.

    ``expanded_mask_area`` is black where the denoise could change anything; ``img_paste``
    pastes where its mask is black, so every other pixel is the original's, exactly.
    """
    g.set(OUTPUT, is_intermediate=True)
    paste = g.add("img_paste", id="paste_back", crop=True)
    g.connect(OUTPUT, "image", paste, "image")
    g.connect(gm, "expanded_mask_area", paste, "mask")
    if base_from is not None:
        g.connect(*base_from, paste, "base_image")
    else:
        g.set(paste, base_image=image)
