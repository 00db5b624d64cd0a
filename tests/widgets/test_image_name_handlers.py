"""Names from outside (widget messages, graphs, the Studio API) never reach a file outside
``images/``: each entry point answers ``../`` and absolute names with a named error, and the
PNG waiting at the place they point to is neither read nor copied into the catalog."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import invoke_nb as inb
from invoke_nb.catalog.errors import InvalidImageNameError
from invoke_nb.nodes.types import ImageField
from invoke_nb.studio import Studio, StudioImage
from invoke_nb.widgets import Canvas, Gallery, GraphEditor

from .test_graph_editor import err


@pytest.fixture
def studio(tmp_path: Path) -> Iterator[Studio]:
    s = Studio(tmp_path / "studio")
    s.catalog.images.save(Image.new("RGB", (8, 8), (0, 0, 255)), metadata={"seed": 3})
    Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / "outside.png")
    yield s
    s.close()


def bad_names(studio: Studio) -> list[str]:
    return ["../../outside.png", "../../../outside.png", str(studio.root.parent / "outside.png")]


def _catalog_unchanged(studio: Studio) -> None:
    # the outside (red) image was not copied in: the one blue image is all there is
    rows = studio.sql("SELECT image_name FROM images").fetchall()
    reds = [n for (n,) in rows if studio.catalog.images.get_pil(n).getpixel((0, 0)) == (255, 0, 0)]
    assert reds == []


class Quiet:
    """Widgets whose outgoing messages go nowhere (no front end in these tests)."""

    def send(self, content: Any, buffers: Any = None) -> None:
        pass


class QGallery(Quiet, Gallery):
    pass


class QEditor(Quiet, GraphEditor):
    pass


class QCanvas(Quiet, Canvas):
    pass


def test_studio_api(studio: Studio) -> None:
    for name in bad_names(studio):
        with pytest.raises(InvalidImageNameError):
            _ = StudioImage(studio, name).pil
        with pytest.raises(InvalidImageNameError):
            _ = StudioImage(studio, name).graph
        with pytest.raises(InvalidImageNameError):
            _ = StudioImage(studio, name).path
        with pytest.raises(InvalidImageNameError):
            studio.image(name)
        with pytest.raises(InvalidImageNameError):
            studio.recall(StudioImage(studio, name))
    _catalog_unchanged(studio)


def test_graph_image_node(studio: Studio) -> None:
    for name in bad_names(studio):
        g = inb.Graph()
        g.add("image", id="i", image=ImageField(image_name=name))
        g.add("img_scale", id="sc", scale_factor=2.0)
        g.connect("i", "image", "sc", "image")
        with pytest.raises(inb.GraphError, match="invalid image name") as e:
            studio.run(g, progress=False, timeout=60)
        assert e.value.node_id == "i" and e.value.field == "image"
        # a graph from a shared workflow file, loaded and run the same way
        g2 = inb.Graph.from_dict(g.to_dict())
        with pytest.raises(inb.GraphError, match="invalid image name"):
            studio.enqueue(g2)
    _catalog_unchanged(studio)


def test_gallery_handlers(studio: Studio) -> None:
    gal = QGallery(studio)
    for name in bad_names(studio):
        for method, params in [
            ("detail", {"name": name}),
            ("recall", {"name": name}),
            ("use", {"name": name, "purpose": "img2img"}),
            ("rerun", {"name": name}),
            ("star", {"names": [name]}),
            ("move", {"names": [name], "board_id": None}),
            ("delete", {"names": [name], "confirm": True}),
        ]:
            error = err(gal, method, **params)
            assert error["type"] == "InvalidImageNameError", (method, error)
            assert name in error["message"]
    assert (studio.root.parent / "outside.png").exists()
    _catalog_unchanged(studio)


def test_editor_handlers(studio: Studio) -> None:
    g = inb.Graph()
    g.add("image", id="i")
    ed = QEditor(g, studio=studio)
    for name in bad_names(studio):
        error = err(ed, "image_thumbnail", image_name=name)
        assert error["type"] == "InvalidImageNameError", error
        error = err(ed, "set_value", node_id="i", field="image", value={"image_name": name})
        assert error["type"] == "InvalidImageNameError", error
        assert "image" not in ed.graph.nodes["i"].values
        # a shared workflow carrying the name loads, but does not run
        wf = inb.Graph()
        wf.add("image", id="i", image=ImageField(image_name=name))
        loaded = QEditor(wf, studio=studio)
        error = err(loaded, "invoke", runs=1)
        assert error["type"] == "GraphError" and "invalid image name" in error["message"]
        assert error["node_id"] == "i"
    assert studio.catalog.queue.counts()["pending"] == 0
    _catalog_unchanged(studio)


def test_canvas_handlers(studio: Studio) -> None:
    cv = QCanvas(studio, width=16, height=16)
    for name in bad_names(studio):
        error = err(cv, "add_image", image_name=name)
        assert error["type"] == "InvalidImageNameError", error
        error = err(cv, "add_reference", image_name=name)
        assert error["type"] == "InvalidImageNameError", error
    assert len(cv.layers) == 0 and cv.references == []
