"""Primitive nodes: values pass through, outputs carry InvokeAI's type ids and fields."""

from __future__ import annotations

import pytest
from PIL import Image
from pydantic import ValidationError

from invoke_nb.nodes.base import get_node_class, node_schema
from invoke_nb.nodes.primitives import ImageOutput, ImageSavingNode
from invoke_nb.nodes.types import BoardField, ColorField, ImageField


@pytest.mark.parametrize(
    ("type_id", "value", "output_type"),
    [
        ("integer", 7, "integer_output"),
        ("float", 2.5, "float_output"),
        ("string", "a cat", "string_output"),
        ("boolean", True, "boolean_output"),
    ],
)
def test_scalar_primitives_pass_their_value(run, type_id, value, output_type):
    out = run(type_id, value=value)
    assert out.value == value
    assert type(out).output_type == output_type


def test_scalar_defaults_match_invokeai(run):
    assert run("integer").value == 0
    assert run("float").value == 0.0
    assert run("string").value == ""
    assert run("boolean").value is False


def test_int_literal_feeds_float_primitive_as_float(run):
    out = run("float", value=3)
    assert out.value == 3.0 and isinstance(out.value, float)


@pytest.mark.parametrize(
    ("type_id", "bad"),
    [("integer", "seven"), ("integer", 1.5), ("float", "x"), ("boolean", "maybe")],
)
def test_bad_literal_is_rejected_naming_the_field(run, type_id, bad):
    with pytest.raises(ValidationError) as exc:
        run.build(type_id, value=bad)
    assert exc.value.errors()[0]["loc"] == ("value",)


def test_unknown_field_is_rejected(run):
    with pytest.raises(ValidationError, match="valuee"):
        run.build("integer", valuee=1)


@pytest.mark.parametrize(
    ("type_id", "items", "output_type"),
    [
        ("integer_collection", [1, 2, 3], "integer_collection_output"),
        ("float_collection", [0.5, 1.5], "float_collection_output"),
        ("string_collection", ["a", "b"], "string_collection_output"),
        ("boolean_collection", [True, False], "boolean_collection_output"),
    ],
)
def test_collection_primitives(run, type_id, items, output_type):
    out = run(type_id, collection=items)
    assert out.collection == items
    assert type(out).output_type == output_type
    assert run(type_id).collection == []


def test_collection_item_type_is_checked(run):
    with pytest.raises(ValidationError) as exc:
        run.build("integer_collection", collection=[1, "two"])
    assert exc.value.errors()[0]["loc"] == ("collection", 1)


def test_collection_default_is_not_shared_between_nodes(run):
    a = run.build("integer_collection")
    b = run.build("integer_collection")
    a.collection.append(1)
    assert b.collection == []


def test_image_primitive_reports_size_and_passes_reference(run):
    pil = Image.new("RGB", (12, 5), (1, 2, 3))
    out = run("image", image=pil)
    assert isinstance(out, ImageOutput) and ImageOutput.output_type == "image_output"
    assert (out.width, out.height) == (12, 5)
    assert run.pil(out).getpixel((0, 0)) == (1, 2, 3)
    # the same picture given twice is the same reference (content-named)
    assert run("image", image=pil.copy()).image == out.image


def test_image_primitive_requires_an_image(run):
    with pytest.raises(ValidationError) as exc:
        run.build("image")
    assert exc.value.errors()[0]["loc"] == ("image",)


def test_image_primitive_with_unknown_name_fails_naming_it(run):
    with pytest.raises(LookupError, match="no-such-image"):
        run("image", image="no-such-image")


def test_image_collection_appends_images_to_collection(run):
    a, b, c = (ImageField(image_name=n) for n in "abc")
    out = run("image_collection", collection=[a], images=[b, c])
    assert out.collection == [a, b, c]
    assert type(out).output_type == "image_collection_output"
    assert run("image_collection").collection == []


def test_color_primitive(run):
    assert run("color").color == ColorField(r=0, g=0, b=0, a=255)
    out = run("color", color={"r": 10, "g": 20, "b": 30, "a": 40})
    assert out.color.tuple() == (10, 20, 30, 40)
    assert type(out).output_type == "color_output"


def test_color_out_of_range_is_rejected(run):
    with pytest.raises(ValidationError) as exc:
        run.build("color", color={"r": 256, "g": 0, "b": 0, "a": 0})
    assert exc.value.errors()[0]["loc"] == ("color", "r")


def test_schema_has_invokeai_field_and_output_names():
    s = node_schema("image_collection")
    assert list(s["inputs"]) == ["collection", "images"]
    # "any": InvokeAI 6.11 graphs give the list directly, 6.14 graphs connect it
    assert s["inputs"]["collection"]["input"] == "any"
    assert s["inputs"]["images"]["input"] == "direct"
    assert node_schema("image")["outputs"].keys() == {"image", "width", "height"}
    assert node_schema("string")["inputs"]["value"]["ui_hint"] == "textarea"


def test_image_nodes_take_invokeai_board_and_metadata_inputs(run):
    cls = get_node_class("blank_image")
    assert issubclass(cls, ImageSavingNode)
    n = cls(board={"board_id": "b1"}, metadata={"k": 1}, width=2, height=2)
    assert n.board == BoardField(board_id="b1")
    schema = node_schema("img_blur")["inputs"]
    assert schema["board"]["input"] == "direct" and schema["metadata"]["input"] == "connection"


class _Sink:
    """An image sink that records what reaches it (what the catalog would receive)."""

    def __init__(self):
        self.saved = []

    def save(self, image, *, node_id, node_type, metadata, board_id, session_id, graph):
        self.saved.append((node_type, metadata, board_id, image.size))
        return f"sink-{len(self.saved)}"

    def get(self, name):
        return None


def test_board_and_metadata_reach_the_image_sink(run):
    sink = _Sink()
    run.services.image_sink = sink
    out = run("blank_image", width=3, height=2, board={"board_id": "b1"}, metadata={"k": 1})
    assert sink.saved == [("blank_image", {"k": 1}, "b1", (3, 2))]
    assert out.image.image_name == "sink-1"
    # intermediates stay in memory
    n = run.build("blank_image", width=3, height=2, is_intermediate=True)
    run.invoke(n)
    assert len(sink.saved) == 1


LIBRARY_MODULES = (
    "invoke_nb.nodes.primitives",
    "invoke_nb.nodes.math",
    "invoke_nb.nodes.strings",
    "invoke_nb.nodes.collections",
    "invoke_nb.nodes.image",
    "invoke_nb.nodes.mask",
)


def test_every_library_node_exports_a_schema():
    from invoke_nb.nodes.base import node_types

    mine = {t: c for t, c in node_types().items() if c.__module__ in LIBRARY_MODULES}
    assert len(mine) >= 65
    for type_id, cls in mine.items():
        schema = node_schema(type_id)
        assert schema["output_type"].endswith("_output"), type_id
        assert schema["outputs"], type_id
        assert cls.__doc__, type_id
        if issubclass(cls, ImageSavingNode):
            assert schema["output_type"] == "image_output", type_id
