"""The widgets follow anywidget's conventions: ``_esm``/``_css`` are files on the class.

Why it matters: anywidget reads a path attribute itself (and with ``ANYWIDGET_HMR=1`` watches
it, so `node build.mjs --watch` reloads open views), and it adds a class's ``_css`` to the page
once instead of each view injecting a ``<style>`` of its own.
"""

from __future__ import annotations

import pytest
from anywidget._file_contents import FileContents

import invoke_nb as inb
from invoke_nb.widgets import Canvas, Gallery, GraphEditor, ModelView, QueueView
from invoke_nb.widgets.messages import bundle_path

CLASSES = [Canvas, Gallery, GraphEditor, ModelView, QueueView]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_esm_and_css_are_the_built_files(cls: type) -> None:
    for key, suffix in (("_esm", ".js"), ("_css", ".css")):
        value = cls.__dict__[key]
        assert isinstance(value, FileContents), f"{cls.__name__}.{key} is {type(value)}"
        assert value._path == bundle_path(cls._bundle, suffix).resolve()
    js = bundle_path(cls._bundle).read_text()
    css = bundle_path(cls._bundle, ".css").read_text()
    assert ".inb-" in css
    # the stylesheet is not also compiled into the script (no per-view <style> copy)
    assert css[:80] not in js


def test_instance_traits_carry_the_files_and_follow_a_rebuild() -> None:
    ed = GraphEditor(inb.Graph())
    try:
        assert ed._esm == bundle_path("graph_editor").read_text()
        assert ".react-flow" in ed._css and ".inb-" in ed._css
        # what anywidget's file watcher does when the bundle is rewritten
        GraphEditor._esm.changed.emit("export default { render() {} }")
        assert ed._esm == "export default { render() {} }"
    finally:
        ed.close()
