"""What a running node may touch: ``ctx``.

The interface is small on purpose: values behind references (images, tensors,
conditioning), a logger, progress, cancellation, and the services a host wires in (models,
an image sink that catalogues images). A node never imports storage or widget code; the
runner builds a :class:`Context` per node and the host (``Studio`` or plain ``inb.run``)
supplies :class:`Services`.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from PIL import Image

from invoke_nb.nodes.types import ConditioningField, ImageField, LatentsField, TensorField

__all__ = [
    "Cancelled",
    "Context",
    "ImageSink",
    "MissingValueError",
    "ModelProvider",
    "Services",
    "register_image",
]

log = logging.getLogger("invoke_nb.nodes")


class Cancelled(Exception):
    """The run was cancelled; raised by :meth:`Context.check_cancelled` between steps."""


class MissingValueError(LookupError):
    """A reference names a value that is neither in this run, the cache nor the catalog."""


class ModelProvider(Protocol):
    """How nodes get models (the model manager implements it; ``ctx.models``)."""

    def load(self, model: Any, submodel: str | None = None) -> Any:
        """A context manager yielding the loaded model (or submodel), locked while held.

        ``model`` is a :class:`~invoke_nb.nodes.types.ModelIdentifierField`.
        """
        ...

    def record(self, model: Any) -> Any:
        """The model's record (path, base, type, format, variant, ...)."""
        ...


class ImageSink(Protocol):
    """Where non-intermediate images go (the Studio puts them in the catalog)."""

    def save(
        self,
        image: Image.Image,
        *,
        node_id: str,
        node_type: str,
        metadata: dict[str, Any] | None,
        board_id: str | None,
        session_id: str,
        graph: dict[str, Any] | None,
    ) -> str:
        """Persist the image and return its name."""
        ...

    def get(self, name: str) -> Image.Image | None:
        """The image with this name, or ``None`` when the sink does not know it."""
        ...


# Images handed to a graph as Python literals (``g.add("image", image=pil)``) live here,
# named by content so that the output cache keys stay stable across runs.
_MEMORY_IMAGES: dict[str, Image.Image] = {}
_MEMORY_LOCK = threading.Lock()


def register_image(image: Image.Image) -> ImageField:
    """Keep ``image`` in kernel memory and return a reference to it, named by its content."""
    h = hashlib.sha256()
    h.update(f"{image.mode}:{image.size}".encode())
    h.update(image.tobytes())
    name = f"mem-{h.hexdigest()[:32]}"
    with _MEMORY_LOCK:
        _MEMORY_IMAGES.setdefault(name, image.copy())
    return ImageField(image_name=name)


def memory_image(name: str) -> Image.Image | None:
    """An image registered with :func:`register_image`, or ``None``."""
    return _MEMORY_IMAGES.get(name)


@dataclass
class Services:
    """What the host provides to nodes. Every member is optional."""

    image_sink: ImageSink | None = None
    models: ModelProvider | None = None
    emit: Callable[[str, dict[str, Any]], None] | None = None
    # progress previews every N denoise steps (0 = none): a host sets it when something
    # shows them, since each costs device work and a copy to the host
    preview_every: int = 0
    cancel: threading.Event = field(default_factory=threading.Event)
    extra: dict[str, Any] = field(default_factory=dict)


def _value_size(value: Any) -> int:
    """Approximate bytes held by a stored value, for the cache's memory budget."""
    if isinstance(value, Image.Image):
        return value.width * value.height * max(1, len(value.getbands()))
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    numel = getattr(value, "numel", None)
    if callable(numel):
        try:
            return int(numel()) * int(value.element_size())
        except Exception:
            return 1024
    if isinstance(value, (list, tuple)):
        return sum(_value_size(v) for v in value) + 64
    if isinstance(value, dict):
        return sum(_value_size(v) for v in value.values()) + 64
    return 256


class _Values:
    """Typed access to referenced values of one kind (images, latents, ...)."""

    def __init__(self, ctx: Context, prefix: str) -> None:
        self._ctx = ctx
        self._prefix = prefix

    def _put(self, value: Any) -> str:
        return self._ctx._put(self._prefix, value)

    def _get(self, name: str) -> Any:
        return self._ctx._get(name)


class ImagesAPI(_Values):
    """``ctx.images``: save and load images."""

    def save(
        self,
        image: Image.Image,
        *,
        metadata: dict[str, Any] | None = None,
        board_id: str | None = None,
        intermediate: bool | None = None,
    ) -> ImageField:
        """Store an image produced by the node.

        Non-intermediate images go to the host's image sink (the catalog) when there is one;
        intermediates and sink-less runs keep them in memory only.
        """
        ctx = self._ctx
        inter = ctx.node.is_intermediate if intermediate is None else intermediate
        sink = ctx.services.image_sink
        if not inter and sink is not None:
            name = sink.save(
                image,
                node_id=ctx.node_id,
                node_type=ctx.node_type,
                metadata=metadata,
                board_id=board_id,
                session_id=ctx.session_id,
                graph=ctx.graph_json,
            )
            ctx._produced[name] = image
            return ImageField(image_name=name)
        return ImageField(image_name=self._put(image))

    def get_pil(self, ref: ImageField | str, mode: str | None = None) -> Image.Image:
        """The PIL image behind a reference, optionally converted to ``mode``."""
        name = ref.image_name if isinstance(ref, ImageField) else ref
        img = self._get(name)
        if not isinstance(img, Image.Image):
            raise MissingValueError(f"{name!r} is not an image")
        return img.convert(mode) if mode and img.mode != mode else img


class TensorsAPI(_Values):
    """``ctx.tensors``: latents, masks and other tensors."""

    def save(self, tensor: Any) -> str:
        """Keep a tensor and return its name."""
        return self._put(tensor)

    def load(self, ref: LatentsField | TensorField | str) -> Any:
        """The tensor behind a name or a reference."""
        if isinstance(ref, LatentsField):
            ref = ref.latents_name
        elif isinstance(ref, TensorField):
            ref = ref.tensor_name
        return self._get(ref)


class ConditioningAPI(_Values):
    """``ctx.conditioning``: encoded prompts."""

    def save(self, data: Any) -> str:
        """Keep conditioning data and return its name."""
        return self._put(data)

    def load(self, ref: ConditioningField | str) -> Any:
        """The conditioning behind a name or a reference."""
        return self._get(ref.conditioning_name if isinstance(ref, ConditioningField) else ref)


class Context:
    """Passed to ``Node.invoke``. One per node execution."""

    def __init__(
        self,
        *,
        node: Any,
        key: str,
        session_id: str,
        services: Services,
        lookup: Callable[[str], Any],
        graph_json: dict[str, Any] | Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.node = node
        self.node_id: str = node.id
        self.node_type: str = node.type_id
        self.key = key
        self.session_id = session_id
        self.services = services
        self._graph_json = graph_json
        self.log = log.getChild(node.type_id)
        self._lookup = lookup
        self._produced: dict[str, Any] = {}
        self.images = ImagesAPI(self, "img")
        self.tensors = TensorsAPI(self, "tensor")
        self.conditioning = ConditioningAPI(self, "cond")

    @property
    def graph_json(self) -> dict[str, Any] | None:
        """The running graph as JSON (for metadata), built on first use."""
        if callable(self._graph_json):
            self._graph_json = self._graph_json()
        return self._graph_json

    # -- values -----------------------------------------------------------------------
    def _put(self, prefix: str, value: Any) -> str:
        if self.node.deterministic:
            name = f"{prefix}-{self.key[:24]}-{len(self._produced)}"
        else:
            name = f"{prefix}-{uuid.uuid4().hex}"
        self._produced[name] = value
        return name

    def _get(self, name: str) -> Any:
        if name in self._produced:
            return self._produced[name]
        value = self._lookup(name)
        if value is not None:
            return value
        img = memory_image(name)
        if img is not None:
            return img
        sink = self.services.image_sink
        if sink is not None:
            img = sink.get(name)
            if img is not None:
                return img
        raise MissingValueError(
            f"node {self.node_id!r} ({self.node_type}): no value named {name!r} in this run, "
            "the output cache or the catalog"
        )

    @property
    def produced(self) -> dict[str, Any]:
        """Values this node stored, by name (the runner keeps them with the output)."""
        return self._produced

    def produced_size(self) -> int:
        """Approximate bytes of the stored values."""
        return sum(_value_size(v) for v in self._produced.values())

    # -- services ---------------------------------------------------------------------
    @property
    def models(self) -> Any:
        """The host's model service (``None`` outside a Studio unless the runner sets one)."""
        return self.services.models

    def emit(self, kind: str, **payload: Any) -> None:
        """Send an event to the host (widgets, callbacks). No-op without a host."""
        if self.services.emit is not None:
            self.services.emit(
                kind,
                {
                    "node_id": self.node_id,
                    "node_type": self.node_type,
                    "session_id": self.session_id,
                    **payload,
                },
            )

    def progress(
        self,
        fraction: float | None = None,
        message: str = "",
        *,
        step: int | None = None,
        total: int | None = None,
        image: Image.Image | None = None,
    ) -> None:
        """Report progress (0..1 or step/total), with an optional small preview image."""
        if fraction is None and step is not None and total:
            fraction = step / total
        self.emit(
            "progress", fraction=fraction, message=message, step=step, total=total, image=image
        )

    def is_cancelled(self) -> bool:
        """Whether the run was asked to stop."""
        return self.services.cancel.is_set()

    def check_cancelled(self) -> None:
        """Raise :class:`Cancelled` when the run was asked to stop; call between steps."""
        if self.services.cancel.is_set():
            raise Cancelled(f"cancelled in node {self.node_id!r} ({self.node_type})")
