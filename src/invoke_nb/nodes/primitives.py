"""Primitive nodes: literal values and collections, with InvokeAI's ids and output types.

The output classes here are shared by the whole node library (math returns
``IntegerOutput``, image operations return ``ImageOutput``), so they live beside the
primitives just as in InvokeAI. :class:`ImageSavingNode` is the base of every node that
produces an image: it carries InvokeAI's ``board`` and ``metadata`` inputs, so InvokeAI
workflow files that set them load here unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PIL import Image

from invoke_nb.nodes.base import Input, InputField, Node, Output, OutputField, UIHint, node, output
from invoke_nb.nodes.types import BoardField, ColorField, ImageField, TensorField

if TYPE_CHECKING:
    from invoke_nb.nodes.context import Context

__all__ = [
    "BooleanCollectionOutput",
    "BooleanOutput",
    "ColorCollectionOutput",
    "ColorOutput",
    "FloatCollectionOutput",
    "FloatOutput",
    "ImageCollectionOutput",
    "ImageOutput",
    "ImageSavingNode",
    "IntegerCollectionOutput",
    "IntegerOutput",
    "MaskOutput",
    "StringCollectionOutput",
    "StringOutput",
]

# ---------------------------------------------------------------------------------------
# Outputs


@output("boolean_output")
class BooleanOutput(Output):
    """One boolean."""

    value: bool = OutputField(description="The output boolean")


@output("boolean_collection_output")
class BooleanCollectionOutput(Output):
    """A list of booleans."""

    collection: list[bool] = OutputField(description="The output boolean collection")


@output("integer_output")
class IntegerOutput(Output):
    """One integer."""

    value: int = OutputField(description="The output integer")


@output("integer_collection_output")
class IntegerCollectionOutput(Output):
    """A list of integers."""

    collection: list[int] = OutputField(description="The int collection")


@output("float_output")
class FloatOutput(Output):
    """One float."""

    value: float = OutputField(description="The output float")


@output("float_collection_output")
class FloatCollectionOutput(Output):
    """A list of floats."""

    collection: list[float] = OutputField(description="The float collection")


@output("string_output")
class StringOutput(Output):
    """One string."""

    value: str = OutputField(description="The output string")


@output("string_collection_output")
class StringCollectionOutput(Output):
    """A list of strings."""

    collection: list[str] = OutputField(description="The output strings")


@output("image_output")
class ImageOutput(Output):
    """One image reference with its size, so downstream nodes can size latents without it."""

    image: ImageField = OutputField(description="The output image")
    width: int = OutputField(description="The width of the image in pixels")
    height: int = OutputField(description="The height of the image in pixels")

    @classmethod
    def of(cls, ref: ImageField, image: Image.Image) -> ImageOutput:
        """The output for ``ref``, taking the size from the PIL image behind it."""
        return cls(image=ref, width=image.width, height=image.height)


@output("image_collection_output")
class ImageCollectionOutput(Output):
    """A list of image references."""

    collection: list[ImageField] = OutputField(description="The output images")


@output("color_output")
class ColorOutput(Output):
    """One RGBA colour."""

    color: ColorField = OutputField(description="The output color")


@output("color_collection_output")
class ColorCollectionOutput(Output):
    """A list of RGBA colours."""

    collection: list[ColorField] = OutputField(description="The output colors")


@output("mask_output")
class MaskOutput(Output):
    """A mask tensor (bool, shape [1, H, W], True = masked) with its size."""

    mask: TensorField = OutputField(description="The mask.")
    width: int = OutputField(description="The width of the mask in pixels.")
    height: int = OutputField(description="The height of the mask in pixels.")


# ---------------------------------------------------------------------------------------
# Base of image-producing nodes


class ImageSavingNode(Node):
    """A node that stores the image it makes; has InvokeAI's ``board`` and ``metadata`` inputs.

    Not registered itself: subclass it and decorate the subclass with ``@node``.
    """

    board: BoardField | None = InputField(
        default=None, description="The board to save the image to", input=Input.DIRECT
    )
    metadata: dict[str, Any] | None = InputField(
        default=None,
        description="Optional metadata to be saved with the image",
        input=Input.CONNECTION,
    )

    def save_image(self, ctx: Context, image: Image.Image) -> ImageOutput:
        """Store ``image`` through ``ctx`` (with this node's board and metadata) and describe it."""
        ref = ctx.images.save(
            image,
            metadata=self.metadata,
            board_id=self.board.board_id if self.board is not None else None,
        )
        return ImageOutput.of(ref, image)


# ---------------------------------------------------------------------------------------
# Scalar primitives


@node(
    "boolean",
    title="Boolean Primitive",
    category="primitives",
    tags=["primitives", "boolean"],
    version="1.0.1",
)
class BooleanNode(Node):
    """A boolean value."""

    value: bool = InputField(default=False, description="The boolean value")

    def invoke(self, ctx: Context) -> BooleanOutput:
        return BooleanOutput(value=self.value)


@node(
    "integer",
    title="Integer Primitive",
    category="primitives",
    tags=["primitives", "integer"],
    version="1.0.1",
)
class IntegerNode(Node):
    """An integer value."""

    value: int = InputField(default=0, description="The integer value")

    def invoke(self, ctx: Context) -> IntegerOutput:
        return IntegerOutput(value=self.value)


@node(
    "float",
    title="Float Primitive",
    category="primitives",
    tags=["primitives", "float"],
    version="1.0.1",
)
class FloatNode(Node):
    """A float value."""

    value: float = InputField(default=0.0, description="The float value")

    def invoke(self, ctx: Context) -> FloatOutput:
        return FloatOutput(value=self.value)


@node(
    "string",
    title="String Primitive",
    category="primitives",
    tags=["primitives", "string"],
    version="1.0.1",
)
class StringNode(Node):
    """A string value."""

    value: str = InputField(default="", description="The string value", ui_hint=UIHint.TEXTAREA)

    def invoke(self, ctx: Context) -> StringOutput:
        return StringOutput(value=self.value)


@node(
    "image",
    title="Image Primitive",
    category="primitives",
    tags=["primitives", "image"],
    version="1.0.2",
)
class ImageNode(Node):
    """An image: passes the reference on, with the image's width and height."""

    image: ImageField = InputField(description="The image to load", ui_hint=UIHint.IMAGE)

    def invoke(self, ctx: Context) -> ImageOutput:
        return ImageOutput.of(self.image, ctx.images.get_pil(self.image))


@node(
    "color",
    title="Color Primitive",
    category="primitives",
    tags=["primitives", "color"],
    version="1.0.1",
)
class ColorNode(Node):
    """An RGBA colour."""

    color: ColorField = InputField(
        default_factory=lambda: ColorField(r=0, g=0, b=0, a=255),
        description="The color value",
        ui_hint=UIHint.COLOR,
    )

    def invoke(self, ctx: Context) -> ColorOutput:
        return ColorOutput(color=self.color)


# ---------------------------------------------------------------------------------------
# Collection primitives

_COLLECTION_TAGS = ("primitives", "collection")


@node(
    "boolean_collection",
    title="Boolean Collection Primitive",
    category="primitives",
    tags=[*_COLLECTION_TAGS, "boolean"],
    version="1.0.2",
)
class BooleanCollectionNode(Node):
    """A list of booleans."""

    collection: list[bool] = InputField(
        default_factory=list, description="The collection of boolean values"
    )

    def invoke(self, ctx: Context) -> BooleanCollectionOutput:
        return BooleanCollectionOutput(collection=list(self.collection))


@node(
    "integer_collection",
    title="Integer Collection Primitive",
    category="primitives",
    tags=[*_COLLECTION_TAGS, "integer"],
    version="1.0.2",
)
class IntegerCollectionNode(Node):
    """A list of integers."""

    collection: list[int] = InputField(
        default_factory=list, description="The collection of integer values"
    )

    def invoke(self, ctx: Context) -> IntegerCollectionOutput:
        return IntegerCollectionOutput(collection=list(self.collection))


@node(
    "float_collection",
    title="Float Collection Primitive",
    category="primitives",
    tags=[*_COLLECTION_TAGS, "float"],
    version="1.0.2",
)
class FloatCollectionNode(Node):
    """A list of floats."""

    collection: list[float] = InputField(
        default_factory=list, description="The collection of float values"
    )

    def invoke(self, ctx: Context) -> FloatCollectionOutput:
        return FloatCollectionOutput(collection=list(self.collection))


@node(
    "string_collection",
    title="String Collection Primitive",
    category="primitives",
    tags=[*_COLLECTION_TAGS, "string"],
    version="1.0.2",
)
class StringCollectionNode(Node):
    """A list of strings."""

    collection: list[str] = InputField(
        default_factory=list, description="The collection of string values"
    )

    def invoke(self, ctx: Context) -> StringCollectionOutput:
        return StringCollectionOutput(collection=list(self.collection))


@node(
    "image_collection",
    title="Image Collection Primitive",
    category="primitives",
    tags=[*_COLLECTION_TAGS, "image"],
    version="1.0.2",
)
class ImageCollectionNode(Node):
    """A list of images: an upstream collection (if connected) followed by the given images."""

    collection: list[ImageField] | None = InputField(
        default=None,
        description="An optional image collection to append to",
        input=Input.ANY,
        title="Collection",
        ui_order=0,
    )
    images: list[ImageField] | None = InputField(
        default=None,
        description="The images to append to the collection",
        input=Input.DIRECT,
        title="Images",
        ui_order=1,
    )

    def invoke(self, ctx: Context) -> ImageCollectionOutput:
        return ImageCollectionOutput(collection=[*(self.collection or []), *(self.images or [])])
