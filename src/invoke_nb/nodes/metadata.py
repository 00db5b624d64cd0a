"""Metadata nodes: build InvokeAI's image metadata, and read values back out of it.

Metadata is the plain dict InvokeAI writes in a PNG's ``invokeai_metadata`` chunk
(``positive_prompt``, ``seed``, ``model`` as a model identifier, ``loras`` as
``[{"model": {...}, "weight": w}]``, ...). The "linked" readers (``metadata_to_*``) recall
one value by label, falling back to ``default_value`` when the label is absent, so a
workflow fed by ``metadata_from_image`` re-creates the settings of an existing image. Ids,
labels, fields and outputs are InvokeAI 6.11.1's.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from invoke_nb.nodes.base import Input, InputField, Node, Output, OutputField, UIHint, node, output
from invoke_nb.nodes.diffusion.fields import (
    CLIPField,
    LoRAField,
    LoRALoaderOutput,
    SDXLLoRALoaderOutput,
    UNetField,
    VAEField,
    VAEOutput,
)
from invoke_nb.nodes.diffusion.schedulers import SchedulerName
from invoke_nb.nodes.diffusion.sd.misc import MetadataOutput
from invoke_nb.nodes.primitives import (
    BooleanCollectionOutput,
    BooleanOutput,
    FloatCollectionOutput,
    FloatOutput,
    IntegerCollectionOutput,
    IntegerOutput,
    StringCollectionOutput,
    StringOutput,
)
from invoke_nb.nodes.types import ImageField, ModelIdentifierField
from invoke_nb.nodes.utilities import SchedulerOutput

if TYPE_CHECKING:
    from invoke_nb.nodes.context import Context

__all__ = ["CUSTOM_LABEL", "MetadataItemField", "image_metadata"]

CUSTOM_LABEL = "* CUSTOM LABEL *"
_VERSION_KEY = "app_version"


def _app_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"invoke-nb {version('invoke-nb')}"
    except PackageNotFoundError:
        return "invoke-nb"


def image_metadata(ctx: Context, image: ImageField) -> dict[str, Any] | None:
    """The ``invokeai_metadata`` of an image (its PNG chunk), or ``None`` when it has none."""
    pil = ctx.images.get_pil(image)
    raw = pil.info.get("invokeai_metadata")
    if raw is None:
        return None
    try:
        data = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
    except ValueError:
        raise ValueError(
            f"node {ctx.node_id!r}: image {image.image_name!r} has unreadable metadata"
        ) from None
    return data if isinstance(data, dict) else None


# ---------------------------------------------------------------------------------------
# Building metadata


class MetadataItemField(BaseModel):
    """One labelled metadata value."""

    label: str = Field(description="Label for this metadata item")
    value: Any = Field(description="The value for this metadata item (may be any type)")


@output("metadata_item_output")
class MetadataItemOutput(Output):
    """One metadata item."""

    item: MetadataItemField = OutputField(description="Metadata Item")


@node(
    "metadata_item", title="Metadata Item", category="metadata", tags=["metadata"], version="1.0.1"
)
class MetadataItemNode(Node):
    """A label and a value, for the ``metadata`` node."""

    label: str = InputField(description="Label for this metadata item")
    value: Any = InputField(description="The value for this metadata item (may be any type)")

    def invoke(self, ctx: Context) -> MetadataItemOutput:
        return MetadataItemOutput(item=MetadataItemField(label=self.label, value=self.value))


@node("metadata", title="Metadata", category="metadata", tags=["metadata"], version="1.0.1")
class MetadataNode(Node):
    """Metadata from one item or a list of items (later labels win), with the app version."""

    items: list[MetadataItemField] | MetadataItemField = InputField(
        description="A single metadata item or collection of metadata items"
    )

    def invoke(self, ctx: Context) -> MetadataOutput:
        items = self.items if isinstance(self.items, list) else [self.items]
        data = {item.label: item.value for item in items}
        data[_VERSION_KEY] = _app_version()
        return MetadataOutput(metadata=data)


@node(
    "merge_metadata",
    title="Metadata Merge",
    category="metadata",
    tags=["metadata"],
    version="1.0.1",
)
class MergeMetadataNode(Node):
    """One metadata dict from several (later dicts win on equal keys)."""

    collection: list[dict[str, Any]] = InputField(description="Collection of Metadata")

    def invoke(self, ctx: Context) -> MetadataOutput:
        merged: dict[str, Any] = {}
        for part in self.collection:
            merged.update(part)
        return MetadataOutput(metadata=merged)


@node(
    "metadata_field_extractor",
    title="Metadata Field Extractor",
    category="metadata",
    tags=["metadata"],
    version="1.0.0",
)
class MetadataFieldExtractorNode(Node):
    """One value of an image's metadata, as text."""

    image: ImageField = InputField(description="The image to extract metadata from")
    key: str = InputField(description="The key in the image's metadata to extract the value from")

    def invoke(self, ctx: Context) -> StringOutput:
        data = image_metadata(ctx, self.image)
        if not data:
            raise ValueError(f"node {self.id!r}: image {self.image.image_name!r} has no metadata")
        if self.key not in data:
            raise KeyError(
                f"node {self.id!r}: no {self.key!r} in the metadata of {self.image.image_name!r}"
            )
        value = data[self.key]
        return StringOutput(value=value if isinstance(value, str) else json.dumps(value))


@node(
    "metadata_from_image",
    title="Metadata From Image",
    category="metadata",
    tags=["metadata"],
    version="1.0.1",
)
class MetadataFromImageNode(Node):
    """The whole metadata of an image (empty when it has none)."""

    image: ImageField = InputField(description="The image to process")

    def invoke(self, ctx: Context) -> MetadataOutput:
        return MetadataOutput(metadata=dict(image_metadata(ctx, self.image) or {}))


_CORE_LABELS = Literal[
    "* CUSTOM LABEL *",
    "positive_prompt",
    "positive_style_prompt",
    "negative_prompt",
    "negative_style_prompt",
    "width",
    "height",
    "seed",
    "cfg_scale",
    "cfg_rescale_multiplier",
    "steps",
    "scheduler",
    "clip_skip",
    "model",
    "vae",
    "seamless_x",
    "seamless_y",
    "guidance",
    "cfg_scale_start_step",
    "cfg_scale_end_step",
]
_STRING_LABELS = Literal[
    "* CUSTOM LABEL *",
    "positive_prompt",
    "positive_style_prompt",
    "negative_prompt",
    "negative_style_prompt",
]
_INTEGER_LABELS = Literal[
    "* CUSTOM LABEL *",
    "width",
    "height",
    "seed",
    "steps",
    "clip_skip",
    "cfg_scale_start_step",
    "cfg_scale_end_step",
]
_FLOAT_LABELS = Literal["* CUSTOM LABEL *", "cfg_scale", "cfg_rescale_multiplier", "guidance"]
_BOOL_LABELS = Literal["* CUSTOM LABEL *", "seamless_x", "seamless_y"]

_LABEL_DESC = "Label for this metadata item"


class _Linked(Node):
    """A node that reads (or adds to) a metadata dict arriving by connection."""

    metadata: dict[str, Any] | None = InputField(
        default=None,
        description="Optional metadata to be saved with the image",
        input=Input.CONNECTION,
    )

    def _data(self) -> dict[str, Any]:
        return dict(self.metadata or {})

    def _key(self) -> str:
        label = getattr(self, "label", CUSTOM_LABEL)
        if label != CUSTOM_LABEL:
            return label
        custom = getattr(self, "custom_label", None)
        if not custom:
            raise ValueError(f"node {self.id!r}: label is custom, so custom_label must be set")
        return custom


@node(
    "metadata_item_linked",
    title="Metadata Item Linked",
    category="metadata",
    tags=["metadata"],
    version="1.0.1",
)
class MetadataItemLinkedNode(_Linked):
    """Adds or replaces one value in the metadata passing through."""

    label: _CORE_LABELS = InputField(
        default=CUSTOM_LABEL, description=_LABEL_DESC, input=Input.DIRECT
    )
    custom_label: str | None = InputField(default=None, description=_LABEL_DESC, input=Input.DIRECT)
    value: Any = InputField(description="The value for this metadata item (may be any type)")

    def invoke(self, ctx: Context) -> MetadataOutput:
        data = self._data()
        value = self.value.vae if isinstance(self.value, VAEField) else self.value
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        data[self._key()] = value
        data[_VERSION_KEY] = _app_version()
        return MetadataOutput(metadata=data)


def _reader(
    type_id: str,
    title: str,
    labels: Any,
    value_type: Any,
    out_cls: type[Output],
    out_field: str,
    convert: Any,
    version: str = "1.0.0",
) -> type[Node]:
    """One ``metadata_to_<type>`` node: the value under a label, or ``default_value``."""

    def invoke(self: Any, ctx: Context) -> Any:
        raw = self._data().get(self._key(), self.default_value)
        try:
            value = convert(raw)
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"node {self.id!r}: metadata {self._key()!r} = {raw!r} is not a {title}: {e}"
            ) from None
        return out_cls(**{out_field: value})

    invoke.__annotations__ = {"ctx": "Context", "return": out_cls}
    ns = {
        "__annotations__": {
            "label": labels,
            "custom_label": str | None,
            "default_value": value_type,
        },
        "__doc__": f"The {title} under a metadata label (``default_value`` when absent).",
        "__module__": __name__,
        "label": InputField(default=CUSTOM_LABEL, description=_LABEL_DESC, input=Input.DIRECT),
        "custom_label": InputField(default=None, description=_LABEL_DESC, input=Input.DIRECT),
        "default_value": InputField(
            description=f"The default {title} to use if not found in the metadata"
        ),
        "invoke": invoke,
    }
    cls = type(f"MetadataTo{title.title().replace(' ', '')}Node", (_Linked,), ns)
    return node(
        type_id,
        title=f"Metadata To {title.title()}",
        category="metadata",
        tags=["metadata"],
        version=version,
    )(cls)


def _listed(convert: Any) -> Any:
    return lambda raw: [convert(v) for v in (raw if isinstance(raw, list) else [raw])]


_reader("metadata_to_string", "string", _STRING_LABELS, str, StringOutput, "value", str)
_reader("metadata_to_integer", "integer", _INTEGER_LABELS, int, IntegerOutput, "value", int)
_reader("metadata_to_float", "float", _FLOAT_LABELS, float, FloatOutput, "value", float, "1.1.0")
_reader("metadata_to_bool", "bool", _BOOL_LABELS, bool, BooleanOutput, "value", bool)
_reader(
    "metadata_to_string_collection",
    "string collection",
    _STRING_LABELS,
    list[str],
    StringCollectionOutput,
    "collection",
    _listed(str),
)
_reader(
    "metadata_to_integer_collection",
    "integer collection",
    _INTEGER_LABELS,
    list[int],
    IntegerCollectionOutput,
    "collection",
    _listed(int),
)
_reader(
    "metadata_to_float_collection",
    "float collection",
    _FLOAT_LABELS,
    list[float],
    FloatCollectionOutput,
    "collection",
    _listed(float),
)
_reader(
    "metadata_to_bool_collection",
    "bool collection",
    _BOOL_LABELS,
    list[bool],
    BooleanCollectionOutput,
    "collection",
    _listed(bool),
)


@node(
    "metadata_to_scheduler",
    title="Metadata To Scheduler",
    category="metadata",
    tags=["metadata"],
    version="1.0.1",
)
class MetadataToSchedulerNode(_Linked):
    """The scheduler of the metadata (``default_value`` when absent)."""

    label: Literal["* CUSTOM LABEL *", "scheduler"] = InputField(
        default="scheduler", description=_LABEL_DESC, input=Input.DIRECT
    )
    custom_label: str | None = InputField(default=None, description=_LABEL_DESC, input=Input.DIRECT)
    default_value: SchedulerName = InputField(
        default="euler",
        description="The default scheduler to use if not found in the metadata",
        ui_hint=UIHint.SCHEDULER,
    )

    def invoke(self, ctx: Context) -> SchedulerOutput:
        return SchedulerOutput(scheduler=self._data().get(self._key(), self.default_value))


# ---------------------------------------------------------------------------------------
# Models and LoRAs from metadata


def _identifier(raw: Any) -> ModelIdentifierField | None:
    """A model identifier from a metadata entry (a dict with key/hash/name/base/type)."""
    if isinstance(raw, ModelIdentifierField):
        return raw
    if not isinstance(raw, dict):
        return None
    known = {k: raw[k] for k in ModelIdentifierField.model_fields if raw.get(k) is not None}
    return ModelIdentifierField(**known) if known else None


def _resolve(ctx: Context, ident: ModelIdentifierField, what: str) -> ModelIdentifierField:
    """The installed model an identifier names (as is, without a model service)."""
    if ctx.models is None:
        return ident
    from invoke_nb.nodes.diffusion.sd.model_loaders import check_model

    return check_model(ctx, ident, what)


def _model_or_default(
    ctx: Context, raw: Any, default: ModelIdentifierField, what: str
) -> ModelIdentifierField:
    """The model named in the metadata when it is installed, else ``default`` (InvokeAI's
    fallback)."""
    ident = _identifier(raw)
    if ident is not None:
        try:
            return _resolve(ctx, ident, what)
        except LookupError:
            ctx.log.info(
                "%s %r from metadata is not installed; using the default", what, ident.name
            )
    return _resolve(ctx, default, what)


def _parts(model: ModelIdentifierField, clips: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    sub = model.with_submodel
    parts: dict[str, Any] = {
        "unet": UNetField(unet=sub("unet"), scheduler=sub("scheduler")),
        "vae": VAEField(vae=sub("vae")),
    }
    for name, suffix in clips:
        parts[name] = CLIPField(
            tokenizer=sub(f"tokenizer{suffix}"), text_encoder=sub(f"text_encoder{suffix}")
        )
    return parts


@output("metadata_to_model_output")
class MetadataToModelOutput(Output):
    """A main model and its parts."""

    model: ModelIdentifierField = OutputField(description="Main model", title="Model")
    name: str = OutputField(description="Model Name", title="Name")
    unet: UNetField = OutputField(description="UNet (scheduler, LoRAs)", title="UNet")
    vae: VAEField = OutputField(description="VAE", title="VAE")
    clip: CLIPField = OutputField(description="CLIP", title="CLIP")


@output("metadata_to_sdxl_model_output")
class MetadataToSDXLModelOutput(Output):
    """An SDXL main model and its parts."""

    model: ModelIdentifierField = OutputField(description="Main model", title="Model")
    name: str = OutputField(description="Model Name", title="Name")
    unet: UNetField = OutputField(description="UNet (scheduler, LoRAs)", title="UNet")
    clip: CLIPField = OutputField(description="CLIP 1", title="CLIP 1")
    clip2: CLIPField = OutputField(description="CLIP 2", title="CLIP 2")
    vae: VAEField = OutputField(description="VAE", title="VAE")


class _ModelReader(_Linked):
    label: Literal["* CUSTOM LABEL *", "model"] = InputField(
        default="model", description=_LABEL_DESC, input=Input.DIRECT
    )
    custom_label: str | None = InputField(default=None, description=_LABEL_DESC, input=Input.DIRECT)
    default_value: ModelIdentifierField = InputField(
        description="The default model to use if not found in the metadata",
        ui_hint=UIHint.MODEL,
        ui_model_type=["main"],
    )

    def _model(self, ctx: Context) -> ModelIdentifierField:
        return _model_or_default(ctx, self._data().get(self._key()), self.default_value, "model")


@node(
    "metadata_to_model",
    title="Metadata To Model",
    category="metadata",
    tags=["metadata"],
    version="1.3.0",
)
class MetadataToModelNode(_ModelReader):
    """The main model of the metadata, split into UNet, CLIP and VAE like a model loader."""

    def invoke(self, ctx: Context) -> MetadataToModelOutput:
        model = self._model(ctx)
        return MetadataToModelOutput(
            model=model, name=f"{model.base}: {model.name}", **_parts(model, (("clip", ""),))
        )


@node(
    "metadata_to_sdxl_model",
    title="Metadata To SDXL Model",
    category="metadata",
    tags=["metadata"],
    version="1.3.0",
)
class MetadataToSDXLModelNode(_ModelReader):
    """The SDXL model of the metadata, split into UNet, both CLIPs and VAE."""

    default_value: ModelIdentifierField = InputField(
        description="The default SDXL Model to use if not found in the metadata",
        ui_hint=UIHint.MODEL,
        ui_model_base=["sdxl"],
        ui_model_type=["main"],
    )

    def invoke(self, ctx: Context) -> MetadataToSDXLModelOutput:
        model = self._model(ctx)
        parts = _parts(model, (("clip", ""), ("clip2", "_2")))
        return MetadataToSDXLModelOutput(model=model, name=f"{model.base}: {model.name}", **parts)


@node(
    "metadata_to_vae",
    title="Metadata To VAE",
    category="metadata",
    tags=["metadata"],
    version="1.2.1",
)
class MetadataToVAENode(_Linked):
    """The VAE of the metadata (``default_value`` when absent)."""

    label: Literal["* CUSTOM LABEL *", "vae"] = InputField(
        default="vae", description=_LABEL_DESC, input=Input.DIRECT
    )
    custom_label: str | None = InputField(default=None, description=_LABEL_DESC, input=Input.DIRECT)
    default_value: VAEField = InputField(
        description="The default VAE to use if not found in the metadata"
    )

    def invoke(self, ctx: Context) -> VAEOutput:
        ident = _identifier(self._data().get(self._key()))
        if ident is None:
            return VAEOutput(vae=self.default_value)
        try:
            return VAEOutput(vae=VAEField(vae=_resolve(ctx, ident, "VAE")))
        except LookupError:
            return VAEOutput(vae=self.default_value)


def _metadata_loras(ctx: Context, data: dict[str, Any], key: str) -> list[LoRAField]:
    """The LoRAs listed in metadata (``[{"model": {...}, "weight": w}]``) that are installed."""
    out = []
    for entry in data.get(key) or []:
        if not isinstance(entry, dict):
            continue
        ident = _identifier(entry.get("model") or entry.get("lora"))
        if ident is None:
            continue
        try:
            model = _resolve(ctx, ident, "LoRA")
        except LookupError:
            ctx.log.info("LoRA %r from metadata is not installed; skipped", ident.name)
            continue
        out.append(LoRAField(lora=model, weight=float(entry.get("weight", 0.75))))
    return out


def _append_once(loras: list[LoRAField], more: list[LoRAField]) -> list[LoRAField]:
    seen = {x.lora.key for x in loras}
    out = list(loras)
    for lora in more:
        if lora.lora.key not in seen:
            seen.add(lora.lora.key)
            out.append(lora)
    return out


@output("metadata_to_lora_collection_output")
class MetadataToLorasCollectionOutput(Output):
    """LoRAs with their weights."""

    lora: list[LoRAField] = OutputField(
        description="Collection of LoRA model and weights", title="LoRAs"
    )


@node(
    "metadata_to_lora_collection",
    title="Metadata To LoRA Collection",
    category="metadata",
    tags=["metadata"],
    version="1.1.0",
)
class MetadataToLoRACollectionNode(_Linked):
    """The given LoRAs followed by those of the metadata (each LoRA once)."""

    custom_label: str = InputField(default="loras", description=_LABEL_DESC, input=Input.DIRECT)
    loras: LoRAField | list[LoRAField] | None = InputField(
        default_factory=list, description="LoRA models and weights", title="LoRAs"
    )

    def invoke(self, ctx: Context) -> MetadataToLorasCollectionOutput:
        given = self.loras if isinstance(self.loras, list) else [self.loras]
        key = self.custom_label.strip() or "loras"
        found = _metadata_loras(ctx, self._data(), key)
        return MetadataToLorasCollectionOutput(
            lora=_append_once([], [x for x in given if x is not None] + found)
        )


@node(
    "metadata_to_loras",
    title="Metadata To LoRAs",
    category="metadata",
    tags=["metadata"],
    version="1.1.1",
)
class MetadataToLorasNode(_Linked):
    """Applies the LoRAs of the metadata to a UNet and a CLIP."""

    unet: UNetField | None = InputField(
        default=None, description="UNet (scheduler, LoRAs)", input=Input.CONNECTION, title="UNet"
    )
    clip: CLIPField | None = InputField(
        default=None, description="CLIP", input=Input.CONNECTION, title="CLIP"
    )

    def invoke(self, ctx: Context) -> LoRALoaderOutput:
        found = _metadata_loras(ctx, self._data(), "loras")
        return LoRALoaderOutput(
            **{
                name: b.model_copy(update={"loras": _append_once(b.loras, found)}, deep=True)
                if b is not None
                else None
                for name, b in (("unet", self.unet), ("clip", self.clip))
            }
        )


@node(
    "metadata_to_sdlx_loras",
    title="Metadata To SDXL LoRAs",
    category="metadata",
    tags=["metadata"],
    version="1.1.1",
)
class MetadataToSDXLLorasNode(_Linked):
    """Applies the LoRAs of the metadata to an SDXL UNet and both CLIPs."""

    unet: UNetField | None = InputField(
        default=None, description="UNet (scheduler, LoRAs)", input=Input.CONNECTION, title="UNet"
    )
    clip: CLIPField | None = InputField(
        default=None, description="CLIP 1", input=Input.CONNECTION, title="CLIP 1"
    )
    clip2: CLIPField | None = InputField(
        default=None, description="CLIP 2", input=Input.CONNECTION, title="CLIP 2"
    )

    def invoke(self, ctx: Context) -> SDXLLoRALoaderOutput:
        found = _metadata_loras(ctx, self._data(), "loras")
        return SDXLLoRALoaderOutput(
            **{
                name: b.model_copy(update={"loras": _append_once(b.loras, found)}, deep=True)
                if b is not None
                else None
                for name, b in (("unet", self.unet), ("clip", self.clip), ("clip2", self.clip2))
            }
        )
