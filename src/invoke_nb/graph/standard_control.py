"""Control layers of the standard graphs: ControlNets, T2I-Adapters, IP-Adapters, regions.

The nodes and collectors are the ones InvokeAI's linear UI adds for control layers,
reference images and regional guidance layers: one ``controlnet``/``t2i_adapter``/
``ip_adapter`` node each, gathered by ``control_net_collector``/``t2i_adapter_collector``/
``ip_adapter_collector`` into ``denoise_latents``; a region's mask goes through
``alpha_mask_to_tensor`` to its own prompt nodes, gathered with the global prompt by
``pos_cond_collect``/``neg_cond_collect``, and to its IP-Adapters' ``mask``. Their
settings also go to ``core_metadata`` (``controlnets``, ``t2iAdapters``, ``ipAdapters``)
so a saved image recalls them.

Entries are dicts: ``control=[dict(model=..., image=..., weight=1.0, begin=0.0, end=1.0,
mode="balanced", resize_mode="just_resize")]`` (a ControlNet or a T2I-Adapter, the
model's type decides), ``ip_adapter=[dict(model=..., image=..., weight=1.0, begin=0.0,
end=1.0, method="full", clip_vision_model="ViT-H")]`` and ``regions=[dict(mask=...,
prompt=..., negative=..., ip_adapter=[...])]``; a region mask is an image whose white (or,
for RGBA, opaque) pixels are the region.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PIL import Image

from invoke_nb.graph.model import Graph

__all__ = ["add_control_layers", "resolve_control_models"]

_CONTROL_KEYS = {"model", "image", "weight", "begin", "end", "mode", "resize_mode"}
_IP_KEYS = {
    "model", "image", "weight", "begin", "end", "method", "clip_vision_model", "image_encoder",
}  # fmt: skip
_REGION_KEYS = {"mask", "prompt", "negative", "ip_adapter"}


def _check(entry: Any, allowed: set[str], what: str, i: int) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise TypeError(f"{what}[{i}] must be a dict, got {type(entry).__name__}")
    unknown = set(entry) - allowed
    if unknown:
        raise TypeError(f"{what}[{i}]: unknown keys {sorted(unknown)}; allowed {sorted(allowed)}")
    if what != "regions" and "model" not in entry:
        raise TypeError(f"{what}[{i}] needs a 'model'")
    if "image" not in entry and what != "regions":
        raise TypeError(f"{what}[{i}] needs an 'image'")
    return entry


def resolve_control_models(kw: dict[str, Any], resolve: Callable[[Any], Any]) -> dict[str, Any]:
    """``kw`` with the model names of ``control``/``ip_adapter``/``regions`` entries turned
    into identifiers by ``resolve`` (the studio's name -> identifier lookup)."""
    out = dict(kw)

    def fix(entries: Any, allowed: set[str], what: str) -> list[dict[str, Any]]:
        return [
            {**_check(e, allowed, what, i), "model": resolve(e["model"])}
            for i, e in enumerate(entries or [])
        ]

    if kw.get("control"):
        out["control"] = fix(kw["control"], _CONTROL_KEYS, "control")
    if kw.get("ip_adapter"):
        out["ip_adapter"] = fix(kw["ip_adapter"], _IP_KEYS, "ip_adapter")
    if kw.get("regions"):
        out["regions"] = [
            {**_check(r, _REGION_KEYS, "regions", i), "ip_adapter": fix(r.get("ip_adapter"), _IP_KEYS, f"regions[{i}].ip_adapter")}
            for i, r in enumerate(kw["regions"])
        ]  # fmt: skip
    return out


def _image(image: Any) -> Any:
    """An ``ImageField`` for a PIL image (kept in kernel memory), a catalog image or a name."""
    from invoke_nb.nodes.types import ImageField

    return ImageField.model_validate(image)


def _collector(g: Graph, cid: str, dest: str, field: str) -> str:
    if cid not in g:
        g.add("collect", id=cid)
        g.connect(cid, "collection", dest, field)
    return cid


def _region_mask(mask: Any) -> Any:
    if isinstance(mask, Image.Image) and mask.mode != "RGBA":
        alpha = mask.convert("L")
        rgba = Image.new("RGBA", mask.size, (255, 255, 255, 255))
        rgba.putalpha(alpha)
        return rgba
    return mask


def _add_ip(
    g: Graph, den: str, i: str, e: dict[str, Any], meta: list[dict[str, Any]], mask: str | None
) -> None:
    image = _image(e["image"])
    fields = dict(
        ip_adapter_model=e["model"],
        image=image,
        weight=e.get("weight", 1.0),
        begin_step_percent=e.get("begin", 0.0),
        end_step_percent=e.get("end", 1.0),
        method=e.get("method", "full"),
        clip_vision_model=e.get("clip_vision_model", "ViT-H"),
    )
    node = g.add("ip_adapter", id=f"ip_adapter_{i}", **fields)
    if e.get("image_encoder") is not None:
        raise TypeError(
            "ip_adapter image_encoder: the encoder is the one the IP-Adapter's record names "
            "(or clip_vision_model's); install it under that name"
        )
    if mask is not None:
        g.connect(mask, "mask", node, "mask")
    g.connect(node, "ip_adapter", _collector(g, "ip_adapter_collector", den, "ip_adapter"), "item")
    meta.append(
        {
            "image": image.model_dump(),
            "ip_adapter_model": e["model"].model_dump(),
            "clip_vision_model": fields["clip_vision_model"],
            "method": fields["method"],
            "weight": fields["weight"],
            "begin_step_percent": fields["begin_step_percent"],
            "end_step_percent": fields["end_step_percent"],
        }
    )  # fmt: skip


def add_control_layers(
    g: Graph,
    *,
    sdxl: bool,
    control: Sequence[dict[str, Any]] | None,
    ip_adapter: Sequence[dict[str, Any]] | None,
    regions: Sequence[dict[str, Any]] | None,
    clip: tuple[str, str],
    clip2: tuple[str, str],
) -> None:
    """Add the control layers' nodes to a standard graph built by ``standard._base``."""
    den = "denoise_latents"
    controlnets: list[dict[str, Any]] = []
    adapters: list[dict[str, Any]] = []
    ips: list[dict[str, Any]] = []
    for i, e in enumerate(control or []):
        model = e["model"]
        image = _image(e["image"])
        common = dict(
            image=image,
            begin_step_percent=e.get("begin", 0.0),
            end_step_percent=e.get("end", 1.0),
            resize_mode=e.get("resize_mode", "just_resize"),
        )
        image_meta = image.model_dump()
        if model.type == "t2i_adapter":
            node = g.add(
                "t2i_adapter",
                id=f"t2i_adapter_{i}",
                t2i_adapter_model=model,
                weight=e.get("weight", 1.0),
                **common,
            )
            col = _collector(g, "t2i_adapter_collector", den, "t2i_adapter")
            g.connect(node, "t2i_adapter", col, "item")
            adapters.append(
                {"image": image_meta, "t2i_adapter_model": model.model_dump(),
                 "weight": e.get("weight", 1.0), **{k: v for k, v in common.items() if k != "image"}}
            )  # fmt: skip
        elif model.type == "controlnet":
            node = g.add(
                "controlnet",
                id=f"control_net_{i}",
                control_model=model,
                control_weight=e.get("weight", 1.0),
                control_mode=e.get("mode", "balanced"),
                **common,
            )
            col = _collector(g, "control_net_collector", den, "control")
            g.connect(node, "control", col, "item")
            controlnets.append(
                {"image": image_meta, "control_model": model.model_dump(),
                 "control_weight": e.get("weight", 1.0), "control_mode": e.get("mode", "balanced"),
                 **{k: v for k, v in common.items() if k != "image"}}
            )  # fmt: skip
        else:
            raise TypeError(
                f"control[{i}]: model {model.name!r} is a {model.type}, "
                "not a ControlNet or T2I-Adapter"
            )
    for i, e in enumerate(ip_adapter or []):
        _add_ip(g, den, str(i), e, ips, None)
    for r, region in enumerate(regions or []):
        if region.get("mask") is None:
            raise TypeError(f"regions[{r}] needs a 'mask'")
        mask = g.add(
            "alpha_mask_to_tensor",
            id=f"prompt_region_mask_to_tensor_{r}",
            image=_region_mask(region["mask"]),
        )
        for side, key, collect in (
            ("positive", "prompt", "pos_cond_collect"),
            ("negative", "negative", "neg_cond_collect"),
        ):
            text = region.get(key)
            if not text:
                continue
            if collect not in g:
                _cond_collector(
                    g,
                    collect,
                    den,
                    f"{side}_conditioning",
                    "pos_cond" if side == "positive" else "neg_cond",
                )
            cond = f"prompt_region_{side}_cond_{r}"
            if sdxl:
                g.add("sdxl_compel_prompt", id=cond, prompt=text, style=text)
                g.connect(*clip2, cond, "clip2")
            else:
                g.add("compel", id=cond, prompt=text)
            g.connect(*clip, cond, "clip")
            g.connect(mask, "mask", cond, "mask")
            g.connect(cond, "conditioning", collect, "item")
        for k, e in enumerate(region.get("ip_adapter") or []):
            _add_ip(g, den, f"region_{r}_{k}", e, ips, mask)  # fmt: skip
    meta = {"controlnets": controlnets, "t2iAdapters": adapters, "ipAdapters": ips}
    meta = {k: v for k, v in meta.items() if v}
    if meta:
        g.set("core_metadata", **meta)


def _cond_collector(g: Graph, cid: str, den: str, field: str, global_cond: str) -> None:
    """Gather the global prompt and the regions' prompts for ``denoise_latents``."""
    g.add("collect", id=cid)
    g.disconnect(global_cond, "conditioning", den, field)
    g.connect(global_cond, "conditioning", cid, "item")
    g.connect(cid, "collection", den, field)
