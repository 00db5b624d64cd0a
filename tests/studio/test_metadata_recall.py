"""Metadata nodes read a catalogued image's metadata (the PNG chunk the catalog wrote)."""

from __future__ import annotations

from PIL import Image

import invoke_nb as inb
from invoke_nb.studio import Studio


def test_metadata_from_a_catalogued_image(studio: Studio) -> None:
    rec = studio.catalog.images.save(
        Image.new("RGB", (8, 8)), metadata={"seed": 5, "positive_prompt": "a lighthouse"}
    )
    g = inb.Graph()
    g.add("metadata_from_image", id="m", image=rec.image_name)
    g.add("metadata_to_integer", id="i", label="seed", default_value=-1)
    g.add("metadata_to_string", id="p", label="positive_prompt", default_value="")
    for nid in ("i", "p"):
        g.connect("m", "metadata", nid, "metadata")
    out = studio.run(g, progress=False).outputs
    assert (out["i"].value, out["p"].value) == (5, "a lighthouse")
