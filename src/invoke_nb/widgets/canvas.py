"""The canvas widget: raster and control layers, an inpaint mask, regional guidance layers,
reference images and a bounding box, generating into the box.

The browser (konva) draws and edits; the kernel keeps what generation needs. Layer pixels
live here (images from the catalog, files the browser sends as binary buffers, accepted
results), and the browser syncs layer positions, the box and the mask (a PNG buffer of the
box region) after every change, so ``canvas.layers``, ``canvas.mask`` and
``canvas.composite`` are always the picture on screen. Generate picks the mode from the
box's content as InvokeAI's canvas does (:func:`generation_mode`), runs
``studio.txt2img/img2img/inpaint/outpaint`` on a worker thread, and puts the result in a
staging area; accepting it makes it a layer. Control layers, regional guidance layers and
reference images become the one-liners' ``control=``, ``regions=`` and ``ip_adapter=``
arguments (:mod:`invoke_nb.widgets.canvas_layers`), so the graph is InvokeAI's canvas graph.
Region masks cross as PNG buffers of the box, reference images as file or PNG buffers.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import traitlets
from PIL import Image, ImageChops, ImageOps, UnidentifiedImageError
from pydantic import Field

from invoke_nb.queue.events import call_on_main
from invoke_nb.widgets.api import is_catalogued
from invoke_nb.widgets.canvas_layers import (
    CanvasReference,
    CanvasRegion,
    CLIPVision,
    ControlSettings,
    ControlState,
    IPMethod,
    ReferenceState,
    RegionState,
    layer_arguments,
)
from invoke_nb.widgets.imaging import encode_image, recent_images
from invoke_nb.widgets.messages import MessageWidget, Params, Reply, handler

if TYPE_CHECKING:
    from invoke_nb.widgets.api import CataloguedImage as StudioImage
    from invoke_nb.widgets.api import StudioAPI

__all__ = [
    "Canvas",
    "CanvasLayer",
    "CanvasReference",
    "CanvasRegion",
    "ControlSettings",
    "GenerationMode",
    "composite_layers",
    "generation_mode",
]

GenerationMode = Literal["txt2img", "img2img", "inpaint", "outpaint"]
LayerKind = Literal["raster", "control"]
MAX_SIDE = 4096


def generation_mode(composite: Image.Image, mask: Image.Image | None) -> GenerationMode:
    """What to generate for a box, from its pixels (as InvokeAI's canvas decides).

    Fully transparent: txt2img. Partly transparent: outpaint (fill the transparent part).
    Opaque with an empty mask: img2img. Opaque with a painted mask: inpaint.
    """
    alpha = composite.getchannel("A") if composite.mode == "RGBA" else None
    if alpha is not None:
        lo, hi = alpha.getextrema()
        if hi == 0:
            return "txt2img"
        if lo < 255:
            return "outpaint"
    if mask is None or mask.convert("L").getextrema()[1] == 0:
        return "img2img"
    return "inpaint"


@dataclass(frozen=True)
class CanvasLayer:
    """A raster or control layer: its image and where it sits (top-left ``x, y``, scale) on
    the canvas. A control layer (``kind="control"``) guides generation through its adapter
    (``control``) instead of being part of the picture."""

    id: str
    name: str
    image: Image.Image
    x: float = 0.0
    y: float = 0.0
    scale_x: float = 1.0
    scale_y: float = 1.0
    visible: bool = True
    opacity: float = 1.0
    kind: LayerKind = "raster"
    control: ControlSettings | None = None

    def describe(self) -> dict[str, Any]:
        """The JSON the browser gets (the pixels travel as a PNG buffer beside it)."""
        return {
            "id": self.id,
            "name": self.name,
            "width": self.image.width,
            "height": self.image.height,
            "x": self.x,
            "y": self.y,
            "scale_x": self.scale_x,
            "scale_y": self.scale_y,
            "visible": self.visible,
            "opacity": self.opacity,
            "kind": self.kind,
            "control": None if self.control is None else self.control.describe(),
        }


def composite_layers(layers: list[CanvasLayer], box: tuple[int, int, int, int]) -> Image.Image:
    """The visible layers, bottom to top, flattened into the region ``box`` (x, y, w, h)."""
    bx, by, bw, bh = box
    out = Image.new("RGBA", (bw, bh), (0, 0, 0, 0))
    for layer in layers:
        if not layer.visible or layer.opacity <= 0:
            continue
        img = layer.image.convert("RGBA")
        size = (max(1, round(img.width * layer.scale_x)), max(1, round(img.height * layer.scale_y)))
        if size != img.size:
            img = img.resize(size, Image.Resampling.LANCZOS)
        if layer.opacity < 1:
            a = img.getchannel("A").point(lambda v, k=layer.opacity: round(v * k))
            img.putalpha(a)
        # the part of the layer inside the box (PIL wants non-negative offsets)
        left, top = round(layer.x) - bx, round(layer.y) - by
        sx, sy = max(0, -left), max(0, -top)
        dx, dy = max(0, left), max(0, top)
        w, h = min(img.width - sx, bw - dx), min(img.height - sy, bh - dy)
        if w <= 0 or h <= 0:
            continue
        out.alpha_composite(img, dest=(dx, dy), source=(sx, sy, sx + w, sy + h))
    return out


# -- request parameters -------------------------------------------------------------------------
class Box(Params):
    x: int
    y: int
    width: int = Field(ge=8, le=MAX_SIDE)
    height: int = Field(ge=8, le=MAX_SIDE)


class LayerState(Params):
    id: str
    x: float
    y: float
    scale_x: float = Field(1.0, gt=0)
    scale_y: float = Field(1.0, gt=0)
    visible: bool = True
    opacity: float = Field(1.0, ge=0, le=1)
    name: str | None = None
    kind: LayerKind = "raster"
    control: ControlState | None = None


class Sync(Params):
    bbox: Box
    layers: list[LayerState]
    mask_empty: bool = True
    regions: list[RegionState] = []
    references: list[ReferenceState] = []


class AddImage(Params):
    image_name: str
    x: float | None = None
    y: float | None = None
    kind: LayerKind = "raster"


class AddFile(Params):
    name: str = "file"
    x: float | None = None
    y: float | None = None
    kind: LayerKind = "raster"


class AddReference(Params):
    image_name: str | None = None
    name: str = "reference"
    region: str | None = None


class Settings(Params):
    prompt: str = ""
    negative: str = ""
    model: str | None = None
    steps: int = Field(30, ge=1, le=500)
    cfg_scale: float = Field(7.5, ge=1, le=200)
    scheduler: str = "euler"
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    strength: float = Field(0.75, ge=0, le=1)


class Index(Params):
    index: int | None = None


class Limit(Params):
    limit: int = Field(24, ge=1, le=200)


def _open_image(data: bytes | memoryview, what: str) -> Image.Image:
    try:
        with Image.open(io.BytesIO(bytes(data))) as im:
            im.load()
            return im.copy()
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"{what} is not an image file PIL can read: {e}") from None


def _read_mask(data: bytes | memoryview, what: str, box: tuple[int, int, int, int]) -> Image.Image:
    img = _open_image(data, what)
    if img.size != box[2:]:
        raise ValueError(f"{what} is {img.size}, the box {box[2]}x{box[3]}")
    return img.getchannel("A") if img.mode in ("RGBA", "LA") else img.convert("L")


class Canvas(MessageWidget):
    """``studio.canvas(image=None)``: layers, inpaint mask and box; generate into the box.

    ``canvas.layers`` (bottom to top, raster and control layers), ``canvas.mask`` (L,
    box-sized, 255 where painted: the area to repaint), ``canvas.composite`` (RGBA, the
    visible raster layers in the box), ``canvas.regions`` (regional guidance layers),
    ``canvas.references`` (reference images, global or a region's), ``canvas.bbox`` (x, y,
    width, height), ``canvas.staged`` (results waiting to be accepted or discarded).
    """

    _bundle = "canvas"

    status = traitlets.Unicode("").tag(sync=True)
    busy = traitlets.Bool(False).tag(sync=True)
    progress = traitlets.Float(0.0).tag(sync=True)
    last_mode = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self,
        studio: StudioAPI,
        image: Any = None,
        *,
        width: int = 512,
        height: int = 512,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.studio = studio
        self._layers: dict[str, CanvasLayer] = {}
        self._order: list[str] = []
        self._bbox = (0, 0, width - width % 8, height - height % 8)
        self._mask: Image.Image = Image.new("L", self._bbox[2:], 0)
        self._regions: list[CanvasRegion] = []
        # every reference image ever added (the browser's undo may bring one back); the
        # canvas's own are those in _ref_order, as layers are in _order
        self._references: dict[str, CanvasReference] = {}
        self._ref_order: list[str] = []
        self.staged: list[StudioImage] = []
        self.job: Future[tuple[StudioImage, GenerationMode]] | None = None
        self._unsubscribe: Callable[[], None] | None = studio.events.on(
            "progress", self._on_progress, main_thread=True
        )
        if image is not None:
            layer = self.add_layer(image)
            w, h = layer.image.size
            self._bbox = (0, 0, max(8, w - w % 8), max(8, h - h % 8))
            self._mask = Image.new("L", self._bbox[2:], 0)

    # -- the Python side ----------------------------------------------------------------------
    @property
    def layers(self) -> list[CanvasLayer]:
        """The raster layers, bottom to top."""
        return [self._layers[i] for i in self._order]

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        """The generation box: x, y, width, height (multiples of 8 for width and height)."""
        return self._bbox

    @property
    def mask(self) -> Image.Image:
        """The inpaint mask over the box: L mode, 255 where painted (to repaint), else 0."""
        return self._mask.copy()

    @property
    def composite(self) -> Image.Image:
        """The visible raster layers flattened into the box (RGBA; transparent where empty)."""
        return composite_layers([la for la in self.layers if la.kind == "raster"], self._bbox)

    @property
    def regions(self) -> list[CanvasRegion]:
        """The regional guidance layers (masks over the box), bottom to top."""
        return list(self._regions)

    @property
    def references(self) -> list[CanvasReference]:
        """The reference images: global ones (``region`` None) and the regions' own."""
        return [self._references[i] for i in self._ref_order]

    def layer_arguments(self) -> dict[str, Any]:
        """The ``control=``, ``ip_adapter=`` and ``regions=`` Generate passes to the studio."""
        return layer_arguments(self.layers, self._regions, self.references, self._bbox)

    def mode(self) -> GenerationMode:
        """What Generate would do now."""
        return generation_mode(self.composite, self._mask)

    def add_layer(
        self,
        image: Any,
        *,
        x: float | None = None,
        y: float | None = None,
        name: str | None = None,
        kind: LayerKind = "raster",
        control: ControlSettings | dict[str, Any] | None = None,
    ) -> CanvasLayer:
        """Add a layer on top (a PIL image, a StudioImage, a catalog image name or a file
        path); placed at the box's corner unless ``x, y`` are given. ``kind="control"`` makes
        it a control layer with ``control=dict(model=..., weight=1.0, begin=0.0, end=1.0,
        mode="balanced")`` (a ControlNet or T2I-Adapter name or key)."""
        if kind not in ("raster", "control"):
            raise ValueError(f"layer kind must be 'raster' or 'control', not {kind!r}")
        settings = ControlSettings.of(control) if kind == "control" else None
        pil, default_name = self._resolve(image)
        bx, by = self._bbox[:2]
        layer = CanvasLayer(
            id=uuid.uuid4().hex[:12],
            name=name or default_name,
            image=pil,
            x=bx if x is None else x,
            y=by if y is None else y,
            kind=kind,
            control=settings,
        )
        self._layers[layer.id] = layer
        self._order.append(layer.id)
        self.send_event("layer_added", layer.describe(), [encode_image(pil)])
        return layer

    def add_region(
        self,
        mask: Image.Image | None = None,
        *,
        prompt: str = "",
        negative: str = "",
        name: str | None = None,
    ) -> CanvasRegion:
        """Add a regional guidance layer: ``mask`` (box-sized; white, or opaque for RGBA, is
        the region; None: empty, to paint in the browser) with its prompts."""
        w, h = self._bbox[2:]
        if mask is None:
            m = Image.new("L", (w, h), 0)
        else:
            if mask.size != (w, h):
                raise ValueError(f"the region mask is {mask.size}, the box {w}x{h}")
            m = mask.getchannel("A") if mask.mode in ("RGBA", "LA") else mask.convert("L")
        region = CanvasRegion(
            id=uuid.uuid4().hex[:12],
            name=name or f"region {len(self._regions) + 1}",
            mask=m,
            prompt=prompt,
            negative=negative,
        )
        self._regions.append(region)
        x, y = self._bbox[:2]
        rect = {"x": x, "y": y, "width": w, "height": h}
        self.send_event("region_added", {**region.describe(), "rect": rect}, [encode_image(m)])
        return region

    def add_reference(
        self,
        image: Any,
        *,
        model: str | None = None,
        weight: float = 1.0,
        begin: float = 0.0,
        end: float = 1.0,
        method: IPMethod = "full",
        clip_vision_model: CLIPVision = "ViT-H",
        region: str | None = None,
        name: str | None = None,
    ) -> CanvasReference:
        """Add a reference image for an IP-Adapter (``model``, a name or key): global, or for
        the regional layer with id ``region`` (a masked IP-Adapter)."""
        if region is not None and region not in {r.id for r in self._regions}:
            raise KeyError(f"canvas has no region {region!r}")
        s = ReferenceState(
            id="new", model=model, weight=weight, begin=begin, end=end, method=method,
            clip_vision_model=clip_vision_model, region=region,
        )  # fmt: skip
        pil, default_name = self._resolve(image)
        ref = CanvasReference(id=uuid.uuid4().hex[:12], name=name or default_name, image=pil)
        ref = ref.updated(s)
        self._references[ref.id] = ref
        self._ref_order.append(ref.id)
        self.send_event("reference_added", ref.describe(), [encode_image(pil)])
        return ref

    def remove_layer(self, layer_id: str) -> None:
        """Remove a layer (the browser's undo can bring it back)."""
        if layer_id not in self._order:
            raise KeyError(f"canvas has no layer {layer_id!r}; layers: {self._order}")
        self._order.remove(layer_id)
        self.send_event("layer_removed", {"id": layer_id})

    def generate(self, prompt: str | None = None, **settings: Any) -> StudioImage:
        """Generate into the box now (blocking) and stage the result; returns the image."""
        s = Settings(prompt=prompt or "", **settings)
        item, mode = self._queue(s, self.composite, self.mask)
        img = self._result_image(self.studio.wait(item))
        self._stage(img, mode)
        return img

    def accept(self, index: int = 0) -> CanvasLayer:
        """Make a staged result a layer at the box; the rest of the staging area is cleared."""
        if not 0 <= index < len(self.staged):
            raise IndexError(f"no staged image {index}; {len(self.staged)} staged")
        img = self.staged[index]
        bx, by = self._bbox[:2]
        name = f"{self.last_mode or 'generated'} {img.image_name[:8]}"
        layer = self.add_layer(img, x=bx, y=by, name=name)
        self.staged = []
        self.send_event("staging_cleared")
        return layer

    def discard(self, index: int | None = None) -> None:
        """Drop one staged result, or all of them."""
        if index is None:
            self.staged = []
        else:
            if not 0 <= index < len(self.staged):
                raise IndexError(f"no staged image {index}; {len(self.staged)} staged")
            del self.staged[index]
        self._send_staging()

    def close(self) -> None:
        """Close the widget and stop listening to the studio's events."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        super().close()

    # -- internals ----------------------------------------------------------------------------
    def _resolve(self, image: Any) -> tuple[Image.Image, str]:
        if isinstance(image, Image.Image):
            return image.copy(), "image"
        if is_catalogued(image):
            return image.pil, image.image_name
        if isinstance(image, (str, Path)):
            text = str(image)
            if Path(text).expanduser().is_file():
                return _open_image(Path(text).expanduser().read_bytes(), text), Path(text).name
            return self.studio.image_pil(text), text
        raise TypeError(
            "canvas layers take a PIL image, a StudioImage, a catalog image name or a file "
            f"path, not {type(image).__name__}"
        )

    def _queue(
        self, s: Settings, composite: Image.Image, mask: Image.Image
    ) -> tuple[int, GenerationMode]:
        """Queue the generation for the box, ahead of other items, as the editor queues its
        graphs; returns the queue item and the mode. Touches no widget state."""
        mode = generation_mode(composite, mask)
        params: dict[str, Any] = {
            "steps": s.steps,
            "cfg_scale": s.cfg_scale,
            "scheduler": s.scheduler,
        }
        images: tuple[Image.Image, ...]
        if mode == "txt2img":
            images = ()
            params.update(width=composite.width, height=composite.height)
        elif mode == "outpaint":
            # painted pixels are regenerated too: they become transparent
            keep = ImageChops.multiply(composite.getchannel("A"), ImageOps.invert(mask))
            src = composite.copy()
            src.putalpha(keep)
            images = (src,)
        elif mode == "img2img":
            images = (composite.convert("RGB"),)
            params["strength"] = s.strength
        else:  # inpaint: our mask is white where painted, InvokeAI repaints where black
            images = (composite.convert("RGB"), ImageOps.invert(mask.convert("L")))
            params["strength"] = s.strength
        params.update(self.layer_arguments())
        graph = self.studio.generation_graph(
            mode, images, prompt=s.prompt, model=s.model, negative=s.negative, seed=s.seed, **params
        )
        (item,) = self.studio.enqueue(graph, prepend=True)
        return item, mode

    def _result_image(self, result: Any) -> StudioImage:
        images = self.studio.images_of(result)
        if not images:
            raise LookupError("the generation catalogued no image")
        return images[-1]

    def _stage(self, img: StudioImage, mode: str) -> None:
        self.last_mode = mode
        self.staged.append(img)
        self.status = f"{mode} done"
        self._send_staging()

    def _send_staging(self) -> None:
        items, buffers = [], []
        for im in self.staged:
            pil = im.pil
            items.append({"image_name": im.image_name, "width": pil.width, "height": pil.height})
            buffers.append(encode_image(pil))
        self.send_event("staging", {"items": items}, buffers)

    def _on_progress(self, _kind: str, payload: dict[str, Any]) -> None:
        if self.busy and isinstance(payload.get("fraction"), (int, float)):
            self.progress = float(payload["fraction"])

    def _job_done(self, fut: Future[tuple[StudioImage, GenerationMode]]) -> None:
        exc = fut.exception()
        if exc is not None:
            self.status = f"{type(exc).__name__}: {exc}"
            self.send_event("generation_error", {"message": self.status})
        else:
            self._stage(*fut.result())
        self.progress = 0.0
        self.busy = False

    # -- browser requests -----------------------------------------------------------------------
    @handler("init")
    def _init(self, _p: Params, _b: list[bytes]) -> Reply:
        """Buffers: each layer's PNG, the mask's if painted, each region's mask, each
        reference image."""
        layers = self.layers
        buffers = [encode_image(la.image) for la in layers]
        mask_empty = self._mask.getextrema()[1] == 0
        if not mask_empty:
            buffers.append(encode_image(self._mask))
        buffers += [encode_image(r.mask) for r in self._regions]
        buffers += [encode_image(r.image) for r in self.references]
        x, y, w, h = self._bbox
        return Reply(
            {
                "layers": [la.describe() for la in layers],
                "bbox": {"x": x, "y": y, "width": w, "height": h},
                "mask": not mask_empty,
                "regions": [r.describe() for r in self._regions],
                "references": [r.describe() for r in self.references],
            },
            buffers,
        )

    @handler("models")
    def _models(self, _p: Params, _b: list[bytes]) -> dict[str, Any]:
        """Main models, control models (ControlNets, T2I-Adapters) and IP-Adapters."""

        def rows(*types: str) -> list[dict[str, Any]]:
            recs = [r for t in types for r in self.studio.models.list(type=t)]
            return [{"key": r.key, "name": r.name, "base": r.base, "type": r.type} for r in recs]

        return {
            "models": rows("main"),
            "control": rows("controlnet", "t2i_adapter"),
            "ip_adapters": rows("ip_adapter"),
        }

    @handler("add_reference", AddReference)
    def _add_reference(self, p: AddReference, buffers: list[bytes]) -> dict[str, Any]:
        if (p.image_name is None) == (len(buffers) != 1):
            raise ValueError("add_reference takes an image_name or the file's bytes as one buffer")
        image = (
            _open_image(buffers[0], p.name)
            if p.image_name is None
            else self.studio.image(p.image_name)
        )
        ref = self.add_reference(image, region=p.region, name=p.name if buffers else None)
        return {"id": ref.id}

    @handler("recent_images", Limit)
    def _recent(self, p: Limit, _b: list[bytes]) -> Reply:
        return recent_images(self.studio, p.limit)

    @handler("add_image", AddImage)
    def _add_image(self, p: AddImage, _b: list[bytes]) -> dict[str, Any]:
        # a catalog image, never a file path: the name is checked and its row must exist
        image = self.studio.image(p.image_name)
        return {"id": self.add_layer(image, x=p.x, y=p.y, kind=p.kind).id}

    @handler("add_file", AddFile)
    def _add_file(self, p: AddFile, buffers: list[bytes]) -> dict[str, Any]:
        if len(buffers) != 1:
            raise ValueError(f"add_file needs the file's bytes as one buffer, got {len(buffers)}")
        pil = _open_image(buffers[0], p.name)
        return {"id": self.add_layer(pil, x=p.x, y=p.y, name=p.name, kind=p.kind).id}

    @handler("sync", Sync)
    def _sync(self, p: Sync, buffers: list[bytes]) -> dict[str, Any]:
        unknown = [la.id for la in p.layers if la.id not in self._layers]
        if unknown:
            raise KeyError(f"canvas has no layer(s) {unknown}")
        box = (p.bbox.x, p.bbox.y, p.bbox.width, p.bbox.height)
        if box[2] % 8 or box[3] % 8:
            raise ValueError(f"the box size must be a multiple of 8, got {box[2]}x{box[3]}")
        unknown = [r.id for r in p.references if r.id not in self._references]
        if unknown:
            raise KeyError(f"canvas has no reference image(s) {unknown}")
        region_ids = {r.id for r in p.regions}
        orphans = [
            r.id for r in p.references if r.region is not None and r.region not in region_ids
        ]
        if orphans:
            raise KeyError(f"reference image(s) {orphans} name a region the sync does not have")
        wanted = (0 if p.mask_empty else 1) + sum(not r.mask_empty for r in p.regions)
        if len(buffers) != wanted:
            raise ValueError(
                f"sync needs {wanted} mask PNG buffer(s) (the painted inpaint mask, then each "
                f"painted region's), got {len(buffers)}"
            )
        masks = iter(buffers)
        mask = (
            Image.new("L", box[2:], 0) if p.mask_empty else _read_mask(next(masks), "the mask", box)
        )
        regions = [
            CanvasRegion(
                id=r.id, name=r.name, prompt=r.prompt, negative=r.negative, visible=r.visible,
                mask=Image.new("L", box[2:], 0)
                if r.mask_empty else _read_mask(next(masks), f"region {r.name!r}'s mask", box),
            )
            for r in p.regions
        ]  # fmt: skip
        # all checked: apply
        for la in p.layers:
            control = None
            if la.kind == "control":
                control = ControlSettings.of(la.control)
            self._layers[la.id] = replace(
                self._layers[la.id],
                x=la.x,
                y=la.y,
                scale_x=la.scale_x,
                scale_y=la.scale_y,
                visible=la.visible,
                opacity=la.opacity,
                name=la.name or self._layers[la.id].name,
                kind=la.kind,
                control=control,
            )
        self._order = [la.id for la in p.layers]
        self._bbox = box
        self._mask = mask
        self._regions = regions
        for r in p.references:
            self._references[r.id] = self._references[r.id].updated(r)
        self._ref_order = [r.id for r in p.references]
        return {"mode": self.mode()}

    @handler("generate", Settings)
    def _generate_request(self, p: Settings, _b: list[bytes]) -> dict[str, Any]:
        if self.busy:
            raise RuntimeError("the canvas is already generating; wait for it to finish")
        composite, mask = self.composite, self.mask
        mode = generation_mode(composite, mask)
        self.busy = True
        self.progress = 0.0
        self.status = f"{mode}…"
        fut: Future[tuple[StudioImage, GenerationMode]] = Future()
        self.job = fut
        fut.add_done_callback(lambda f: call_on_main(self._job_done, f))
        try:
            item, _ = self._queue(p, composite, mask)
        except Exception as e:  # reported to the browser as the run's errors are
            fut.set_exception(e)
            return {"mode": mode}

        def settle(done: Future[Any]) -> None:  # on the queue's thread: no widget state
            try:
                fut.set_result((self._result_image(done.result()), mode))
            except BaseException as e:
                fut.set_exception(e)

        self.studio.future(item).add_done_callback(settle)
        return {"mode": mode}

    @handler("accept", Index)
    def _accept(self, p: Index, _b: list[bytes]) -> dict[str, Any]:
        return {"id": self.accept(p.index or 0).id}

    @handler("discard", Index)
    def _discard(self, p: Index, _b: list[bytes]) -> dict[str, Any]:
        self.discard(p.index)
        return {"staged": len(self.staged)}
