"""CatalogImageSink: what the graph runner calls for non-intermediate images."""

from __future__ import annotations

from catalog_data import GRAPH, invokeai_metadata, pixel_image

from invoke_nb.catalog import Catalog, CatalogImageSink


def test_sink_saves_with_metadata_and_graph(cat: Catalog) -> None:
    board = cat.boards.create("runs")
    sink = CatalogImageSink(cat)
    name = sink.save(
        pixel_image((50, 60, 70)),
        node_id="l2i",
        node_type="l2i",
        metadata=invokeai_metadata("sink test"),
        board_id=board.board_id,
        session_id="s-1",
        graph=GRAPH,
    )
    rec = cat.images.get(name)
    assert (rec.node_id, rec.session_id, rec.board_id) == ("l2i", "s-1", board.board_id)
    assert rec.positive_prompt == "sink test" and not rec.is_intermediate
    assert cat.images.get_graph(name) == GRAPH
    got = sink.get(name)
    assert got is not None and got.getpixel((0, 0)) == (50, 60, 70)
    assert sink.get("not-there.png") is None


def test_sink_through_the_node_context(cat: Catalog) -> None:
    """The node API's ctx.images.save lands in the catalog through the sink."""
    from invoke_nb.nodes.context import Context, Services
    from invoke_nb.nodes.types import ImageField

    class FakeNode:  # the smallest thing Context needs: id, type id, flags
        id = "n1"
        type_id = "test_node"
        is_intermediate = False
        deterministic = True

    ctx = Context(
        node=FakeNode(),
        key="k" * 64,
        session_id="sess",
        services=Services(image_sink=CatalogImageSink(cat)),
        lookup=lambda name: None,
        graph_json=GRAPH,
    )
    ref = ctx.images.save(pixel_image((1, 2, 3)), metadata={"seed": 5})
    assert isinstance(ref, ImageField)
    rec = cat.images.get(ref.image_name)
    assert (rec.seed, rec.node_id, rec.session_id) == (5, "n1", "sess")
    assert cat.images.get_graph(ref.image_name) == GRAPH
    assert ctx.images.get_pil(ref.image_name).getpixel((0, 0)) == (1, 2, 3)
