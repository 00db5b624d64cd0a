"""Without the ``upscale`` extra's packages, the nodes say which extra installs them."""

from __future__ import annotations

import sys

import pytest
from PIL import Image

import invoke_nb as inb
from invoke_nb.models.errors import ModelLoadError
from invoke_nb.models.load_spandrel import import_spandrel


def test_missing_spandrel_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "spandrel", None)
    with pytest.raises(ModelLoadError, match=r"invoke-nb\[upscale\]"):
        import_spandrel()


def test_missing_patchmatch_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "patchmatch", None)
    img = Image.new("RGBA", (16, 16), (10, 20, 30, 255))
    img.putpixel((4, 4), (0, 0, 0, 0))
    g = inb.Graph()
    g.add("infill_patchmatch", id="p", image=img)
    with pytest.raises(Exception, match=r"pypatchmatch.*invoke-nb\[upscale\]"):
        inb.run(g)
