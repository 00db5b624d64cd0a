"""Image names stay inside ``images/``: every catalog entry point refuses ``../`` and absolute
names before it opens a file, even when a readable PNG waits at the place they point to."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from invoke_nb.catalog import Catalog
from invoke_nb.catalog.errors import InvalidImageNameError
from invoke_nb.catalog.pngchunks import build_pnginfo


def outside_png(cat: Catalog) -> Path:
    """A PNG with a graph chunk beside the studio root: what a traversal would reach."""
    target = cat.root.parent / "outside.png"
    info = build_pnginfo({"seed": 1}, {"id": "g", "nodes": {}, "edges": []}, None)
    Image.new("RGB", (8, 8), (255, 0, 0)).save(target, pnginfo=info)
    return target


def bad_names(cat: Catalog) -> list[str]:
    target = outside_png(cat)
    return [
        "../../outside.png",
        "../thumbnails/../../outside.png",
        str(target),
        "/etc/passwd",
        "sub/dir.png",
        "..\\outside.png",
        ".pending.png",
        "image.jpg",
        "",
    ]


ENTRY_POINTS = {
    "get": lambda c, n: c.images.get(n),
    "path": lambda c, n: c.images.path(n),
    "get_pil": lambda c, n: c.images.get_pil(n),
    "get_thumbnail": lambda c, n: c.images.get_thumbnail(n),
    "get_graph": lambda c, n: c.images.get_graph(n),
    "get_workflow": lambda c, n: c.images.get_workflow(n),
    "get_metadata": lambda c, n: c.images.get_metadata(n),
    "star": lambda c, n: c.images.star([n]),
    "move_to_board": lambda c, n: c.images.move_to_board([n], None),
    "update": lambda c, n: c.images.update(n, starred=True),
    "delete": lambda c, n: c.images.delete([n]),
    "export_zip": lambda c, n: c.images.export_zip([n], c.root / "x.zip"),
    "files.path": lambda c, n: c.files.path(n),
    "files.thumbnail_path": lambda c, n: c.files.thumbnail_path(n),
    "insert_records": lambda c, n: c.images.insert_records(
        [{"image_name": n, "width": 1, "height": 1}]
    ),
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_entry_points_refuse_names_outside_images(cat: Catalog, entry: str) -> None:
    for name in bad_names(cat):
        with pytest.raises(InvalidImageNameError, match="invalid image name"):
            ENTRY_POINTS[entry](cat, name)
    assert cat.images.count() == 0
    assert (cat.root.parent / "outside.png").exists()


def test_insert_arrow_refuses_a_bad_name_among_good_ones(cat: Catalog) -> None:
    import pyarrow as pa

    from invoke_nb.catalog.records import utcnow

    now = utcnow()
    table = pa.table(
        {
            "image_name": ["ok.png", "../../outside.png"],
            "width": [1, 1],
            "height": [1, 1],
            "created_at": pa.array([now, now], pa.timestamp("us")),
            "updated_at": pa.array([now, now], pa.timestamp("us")),
        }
    )
    with pytest.raises(InvalidImageNameError, match=r"outside\.png"):
        cat.images.insert_arrow(table)
    assert cat.images.count() == 0


def test_good_names_still_work(cat: Catalog) -> None:
    rec = cat.images.save(Image.new("RGB", (4, 4), (1, 2, 3)))
    assert cat.images.get_pil(rec.image_name).getpixel((0, 0)) == (1, 2, 3)
    assert cat.images.path(rec.image_name).parent == cat.files.images_dir
