"""Field types: references to in-memory values, and connection type compatibility.

Big values (images, latents, conditioning) never travel through node fields. A node stores
them through ``ctx`` and passes a small reference (InvokeAI's ``ImageField``,
``LatentsField``, ...). The references are plain pydantic models so graphs and outputs stay
JSON-serialisable and content-hashable.

Compatibility is decided on *type descriptors*: small JSON trees made from annotations. The
editor receives the same descriptors in the node schemas, so Python and the browser apply
one rule set (InvokeAI's: Any, unions, int->float, int/float->str, subclasses, list items).
"""

from __future__ import annotations

import enum
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "BoardField",
    "ColorField",
    "ConditioningField",
    "DenoiseMaskField",
    "ImageField",
    "LatentsField",
    "TensorField",
    "compatible",
    "type_descriptor",
]


class _Ref(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ImageField(_Ref):
    """A reference to an image by name (in memory, or in the studio's catalog)."""

    image_name: str = Field(description="The name of the image")

    @model_validator(mode="before")
    @classmethod
    def _from_pil(cls, value: Any) -> Any:
        # A PIL image given as a literal is kept in kernel memory, named by its content.
        from PIL import Image

        if isinstance(value, Image.Image):
            from invoke_nb.nodes.context import register_image

            return {"image_name": register_image(value).image_name}
        if isinstance(value, str):
            return {"image_name": value}
        name = getattr(value, "image_name", None)  # catalog images (StudioImage, records)
        if isinstance(name, str) and not isinstance(value, (dict, BaseModel)):
            return {"image_name": name}
        return value


class BoardField(_Ref):
    """A reference to a gallery board."""

    board_id: str = Field(description="The id of the board")


class LatentsField(_Ref):
    """A reference to a latents tensor, with the seed that made its noise (if any)."""

    latents_name: str = Field(description="The name of the latents")
    seed: int | None = Field(default=None, description="Seed used to generate this latents")


class TensorField(_Ref):
    """A reference to a generic tensor (masks and the like)."""

    tensor_name: str = Field(description="The name of the tensor")


class DenoiseMaskField(_Ref):
    """A denoise mask (1 = keep, 0 = repaint, InvokeAI's convention) and masked latents."""

    mask_name: str = Field(description="The name of the mask")
    masked_latents_name: str | None = Field(default=None, description="Masked image latents")
    gradient: bool = Field(default=False, description="Whether the mask is a gradient")


class ConditioningField(_Ref):
    """A reference to prompt conditioning, optionally restricted to a region mask."""

    conditioning_name: str = Field(description="The name of conditioning tensor")
    mask: TensorField | None = Field(default=None, description="Regional mask")


class ColorField(BaseModel):
    """An RGBA colour, 0-255 per channel."""

    r: int = Field(ge=0, le=255, description="The red component")
    g: int = Field(ge=0, le=255, description="The green component")
    b: int = Field(ge=0, le=255, description="The blue component")
    a: int = Field(ge=0, le=255, description="The alpha component")

    def tuple(self) -> tuple[int, int, int, int]:
        return (self.r, self.g, self.b, self.a)


# ---------------------------------------------------------------------------------------
# Type descriptors


_SCALARS: dict[type, str] = {int: "int", float: "float", str: "str", bool: "bool"}


def type_descriptor(ann: Any) -> dict[str, Any]:
    """A JSON description of an annotation that both Python and the editor understand."""
    if ann is Any or ann is None or ann is typing.Any:
        return {"kind": "any"}
    if ann is type(None):
        return {"kind": "none"}
    origin = get_origin(ann)
    if origin is typing.Annotated:
        return type_descriptor(get_args(ann)[0])
    if origin in (Union, types.UnionType):
        opts = [type_descriptor(a) for a in get_args(ann)]
        non_none = [o for o in opts if o["kind"] != "none"]
        if len(non_none) == 1:
            return {**non_none[0], "optional": True} if len(opts) > 1 else non_none[0]
        d: dict[str, Any] = {"kind": "union", "options": non_none}
        if len(non_none) < len(opts):
            d["optional"] = True
        return d
    if origin is Literal:
        values = list(get_args(ann))
        base = _SCALARS.get(type(values[0]), "str") if values else "str"
        return {"kind": "enum", "base": base, "values": values}
    if origin in (list, tuple, set, frozenset, typing.Sequence) or ann in (list, tuple):
        args = get_args(ann)
        item = type_descriptor(args[0]) if args else {"kind": "any"}
        return {"kind": "list", "item": item}
    if origin is dict or ann is dict:
        return {"kind": "dict"}
    if isinstance(ann, type):
        if ann in _SCALARS:
            return {"kind": _SCALARS[ann]}
        if issubclass(ann, enum.Enum):
            return {
                "kind": "enum",
                "base": "str",
                "values": [m.value for m in ann],
                "name": ann.__name__,
            }
        bases = [
            c.__name__
            for c in ann.__mro__[1:]
            if c not in (object, BaseModel) and not c.__name__.startswith("_")
        ]
        return {"kind": "class", "name": ann.__name__, "bases": bases}
    return {"kind": "any"}


def compatible(src: dict[str, Any], dst: dict[str, Any]) -> bool:
    """Whether an output of type ``src`` may feed an input of type ``dst`` (descriptors)."""
    sk, dk = src["kind"], dst["kind"]
    if sk == "any" or dk == "any":
        return True
    if sk == "union":
        # every option the source may produce must be accepted
        return all(compatible(o, dst) for o in src["options"])
    if dk == "union":
        return any(compatible(src, o) for o in dst["options"])
    if dk == "list":
        if sk == "list":
            return compatible(src["item"], dst["item"])
        return False
    if sk == "list":
        return False
    if sk == dk and sk in ("int", "float", "str", "bool", "dict", "none"):
        return True
    if sk == "int" and dk == "float":
        return True
    if sk in ("int", "float") and dk == "str":
        return True
    if sk == "enum":
        if dk == "enum":
            return set(src["values"]) <= set(dst["values"])
        return src["base"] == dk or (src["base"] == "int" and dk == "float")
    if dk == "enum":
        # a plain value may feed a choice field; validated against the choices at run time
        return sk == dst["base"] or (sk == "str" and dst["base"] == "str")
    if sk == "class" and dk == "class":
        return src["name"] == dst["name"] or dst["name"] in src.get("bases", [])
    return False


def describe(desc: dict[str, Any]) -> str:
    """A short human-readable name of a descriptor, for error messages."""
    k = desc["kind"]
    if k == "list":
        s = f"list[{describe(desc['item'])}]"
    elif k == "union":
        s = " | ".join(describe(o) for o in desc["options"])
    elif k == "class":
        s = desc["name"]
    elif k == "enum":
        s = (
            "Literal["
            + ", ".join(repr(v) for v in desc["values"][:6])
            + (", ..." if len(desc["values"]) > 6 else "")
            + "]"
        )
    else:
        s = k
    return s + (" | None" if desc.get("optional") else "")


class ModelIdentifierField(BaseModel):
    """A model reference as InvokeAI writes it in graphs and metadata.

    ``key`` is this studio's record key; ``hash`` (``blake3:<hex>``) lets a graph made
    elsewhere find the same file; ``submodel_type`` selects a part of a main model.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    key: str = Field(default="", description="The model's unique key")
    hash: str = Field(default="", description="The model's content hash")
    name: str = Field(default="", description="The model's name")
    base: str = Field(default="any", description="The model's base model type")
    type: str = Field(default="main", description="The model's type")
    submodel_type: str | None = Field(default=None, description="The submodel to load, if any")

    @model_validator(mode="before")
    @classmethod
    def _from_record(cls, value: Any) -> Any:
        """Accept an installed model's record (anything with ``key``, ``base`` and ``type``
        attributes), so ``g.add("vae_loader", vae_model=studio.models.get(...))`` works."""
        if isinstance(value, (dict, ModelIdentifierField)) or not all(
            hasattr(value, a) for a in ("key", "base", "type")
        ):
            return value
        names = ("key", "hash", "name", "base", "type", "submodel_type")
        return {a: getattr(value, a) for a in names if getattr(value, a, None) is not None}

    def with_submodel(self, submodel: str | None) -> ModelIdentifierField:
        return self.model_copy(update={"submodel_type": submodel})
