"""The Studio's one-liners: ``txt2img``, ``img2img``, ``inpaint`` and ``outpaint``.

Each one-liner only names its own inputs; what they share (the model lookup, the style
preset, LoRA pairs, the seed draw, the output board, running with a progress bar) is done
once, in :meth:`Generation.generation_graph`. The graph itself comes from
:mod:`invoke_nb.graph.standard`, which picks the builder by the model's base.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from invoke_nb.graph.model import Graph
from invoke_nb.nodes.types import ModelIdentifierField, identifier
from invoke_nb.studio_results import StudioImage

if TYPE_CHECKING:
    from invoke_nb.studio import Studio

__all__ = ["Generation"]


class Generation:
    """Mixed into :class:`~invoke_nb.studio.Studio`: the four generation one-liners."""

    def model_field(self: Studio, model: Any = None) -> ModelIdentifierField:
        """The identifier graphs use for ``model`` (a name, key or record; default: the
        first main model installed)."""
        if model is None:
            mains = self.models.list(type="main")
            if not mains:
                raise LookupError(
                    "no main model installed: studio.models.install('path | url | org/repo') first"
                )
            rec = mains[0]
        elif isinstance(model, str):
            rec = self.models.get(model)
        else:
            rec = self.models.find(model)
        return identifier(rec)

    _model = model_field  # the name benchmarks and older notebooks use

    def _style(self: Studio, style: Any, prompt: str, negative: str) -> tuple[str, str]:
        if style is None:
            return prompt, negative
        from invoke_nb.presets import apply_style

        preset = self.presets.find(style) if isinstance(style, str) else style
        return apply_style(preset, prompt, negative)

    def _board_id(self: Studio, board: str) -> str:
        for b in self.catalog.boards.list(include_archived=True):
            if board in (b.board_id, b.board_name):
                return b.board_id
        return self.catalog.boards.create(board).board_id

    def generation_graph(
        self: Studio,
        builder: str,
        images: tuple[Any, ...] = (),
        *,
        prompt: str,
        model: Any = None,
        negative: str = "",
        style: Any = None,
        board: str | None = None,
        loras: Sequence[Any] = (),
        seed: int | None = None,
        **params: Any,
    ) -> Graph:
        """The graph a one-liner runs (``builder``: "txt2img", "img2img", "inpaint" or
        "outpaint"), to queue it instead (the canvas does). ``images`` are the builder's
        image inputs; ``params`` its own settings (size, steps, strength, ...)."""
        from invoke_nb.graph import standard

        prompt, negative = self._style(style, prompt, negative)
        lora_pairs = [
            (self.model_field(x[0]), float(x[1]))
            if isinstance(x, (tuple, list))
            else (self.model_field(x), 1.0)
            for x in loras
        ]
        ident = self.model_field(model)
        params = standard.fill_models(ident, self.models, params)  # e.g. FLUX's T5/CLIP/VAE
        from invoke_nb.graph.standard_control import resolve_control_models

        params = resolve_control_models(params, self.model_field)  # control=, ip_adapter=, ...
        g = getattr(standard, builder)(
            ident,
            *images,
            prompt,
            negative=negative,
            loras=lora_pairs,
            seed=random.randint(0, 2**32 - 1) if seed is None else int(seed),
            **params,
        )
        if board is not None:
            g.set(standard.OUTPUT, board={"board_id": self._board_id(board)})
        return g

    def _generate(
        self: Studio, builder: str, images: tuple[Any, ...], args: dict[str, Any]
    ) -> StudioImage:
        """Run a one-liner: ``args`` are its ``locals()`` (its own parameters and ``**kw``)."""
        params = {k: v for k, v in args.items() if k not in ("self", "kw", "image", "mask")}
        progress = params.pop("progress")
        g = self.generation_graph(builder, images, **params, **args["kw"])
        return self.run(g, progress=progress).image

    def txt2img(
        self,
        prompt: str,
        *,
        model: Any = None,
        negative: str = "",
        width: int = 512,
        height: int = 512,
        steps: int = 30,
        cfg_scale: float = 7.5,
        scheduler: str = "euler",
        seed: int | None = None,
        board: str | None = None,
        loras: Sequence[Any] = (),
        style: Any = None,
        progress: bool = True,
        **kw: Any,
    ) -> StudioImage:
        """Text to image with InvokeAI's standard graph; returns the catalogued image.

        ``model`` is a name, key or record (default: the first main model installed);
        ``loras`` are names or ``(name, weight)`` pairs; ``style`` a style preset name;
        ``board`` a board name or id (created when new). ``seed=None`` draws one.
        """
        return self._generate("txt2img", (), locals())

    def img2img(
        self,
        image: Any,
        prompt: str,
        *,
        strength: float = 0.75,
        model: Any = None,
        negative: str = "",
        seed: int | None = None,
        board: str | None = None,
        loras: Sequence[Any] = (),
        style: Any = None,
        progress: bool = True,
        **kw: Any,
    ) -> StudioImage:
        """Image to image: ``strength`` 0 keeps the input, 1 ignores it."""
        return self._generate("img2img", (_pil_or_field(image),), locals())

    def inpaint(
        self,
        image: Any,
        mask: Any,
        prompt: str,
        *,
        strength: float = 1.0,
        model: Any = None,
        negative: str = "",
        seed: int | None = None,
        board: str | None = None,
        loras: Sequence[Any] = (),
        style: Any = None,
        progress: bool = True,
        **kw: Any,
    ) -> StudioImage:
        """Repaint where ``mask`` is black (white keeps; InvokeAI's convention)."""
        return self._generate("inpaint", (_pil_or_field(image), _pil_or_field(mask)), locals())

    def outpaint(
        self,
        image: Any,
        prompt: str,
        *,
        model: Any = None,
        negative: str = "",
        seed: int | None = None,
        board: str | None = None,
        loras: Sequence[Any] = (),
        style: Any = None,
        progress: bool = True,
        **kw: Any,
    ) -> StudioImage:
        """Fill the transparent pixels of an RGBA image."""
        return self._generate("outpaint", (_pil_or_field(image),), locals())

    def upscale(
        self: Studio,
        image: Any,
        *,
        model: Any = None,
        scale: float = 4.0,
        tile_size: int = 512,
        board: str | None = None,
        progress: bool = True,
    ) -> StudioImage:
        """Upscale with an image-to-image (spandrel) model to ``scale`` times the size.

        ``model`` is a name, key or record (default: the first image-to-image model
        installed); the model runs as often as needed, then the result is resized.
        """
        from invoke_nb.graph.standard_upscale import UPSCALE_OUTPUT
        from invoke_nb.graph.standard_upscale import upscale as build

        if model is None:
            found = self.models.list(type="spandrel_image_to_image")
            if not found:
                raise LookupError(
                    "no image-to-image model installed: studio.models.install(...) an "
                    "ESRGAN/Real-ESRGAN file first"
                )
            model = found[0]
        g = build(self.model_field(model), _pil_or_field(image), scale=scale, tile_size=tile_size)
        if board is not None:
            g.set(UPSCALE_OUTPUT, board={"board_id": self._board_id(board)})
        return self.run(g, progress=progress).image


def _pil_or_field(image: Any) -> Any:
    """PIL images stay PIL (the graph keeps them in memory); catalog images pass by name."""
    if isinstance(image, StudioImage):
        return image.pil
    if isinstance(image, (str, Path)) and Path(image).exists():
        return Image.open(image)
    return image
