"""The Python half of the lab extension: docking a widget in a panel (sidecar), no browser.

The browser half (the panel really appears, closes on kernel restart) is
tests/browser/test_lab_extension.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anywidget
import pytest
import traitlets

import invoke_nb as inb
from invoke_nb import studio_views

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


class Dummy(anywidget.AnyWidget):
    _esm = "export default { render() {} }"
    value = traitlets.Int(1).tag(sync=True)


@pytest.mark.parametrize(
    ("area", "anchor"), [("right", "right"), ("main", "tab-after"), ("split-right", "split-right")]
)
def test_show_in_panel_docks_a_view_of_the_widget(area: str, anchor: str) -> None:
    w = Dummy()
    sc = inb.show_in_panel(w, area=area)
    assert sc.anchor == anchor
    assert sc.title == "Invoke: Dummy"
    (out,) = sc.outputs  # one display of the widget, by its model id
    assert out["output_type"] == "display_data"
    assert out["data"][WIDGET_MIME]["model_id"] == w.model_id
    sc.close()


def test_bad_area_and_non_widgets_are_refused_naming_them() -> None:
    with pytest.raises(ValueError, match=r"unknown panel area 'left-ish' for Dummy.*split-right"):
        inb.show_in_panel(Dummy(), area="left-ish")
    with pytest.raises(TypeError, match="int is not a widget"):
        inb.show_in_panel(3)  # type: ignore[arg-type]


def test_open_view_makes_the_studio_view_and_docks_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match=r"unknown view 'galery'; choose one of: gallery, editor"):
        studio_views.open_view("galery")
    with pytest.raises(ValueError, match="unknown panel area 'top'"):
        studio_views.open_view("gallery", area="top")
    monkeypatch.setattr(sys.modules["invoke_nb.studio"], "_default", None)  # a fresh default
    widget, sc = studio_views.open_view("queue", area="split-right", root=str(tmp_path / "studio"))
    try:
        assert type(widget).__name__ == "QueueView"
        assert sc.anchor == "split-right"
        assert sc.title == "Invoke: Queue"
        assert sc.outputs[0]["data"][WIDGET_MIME]["model_id"] == widget.model_id
        assert (tmp_path / "studio").is_dir()  # the root from the extension's setting
        # the widgets' own method does the same
        assert widget.show("main").title == "Invoke: Queue"
    finally:
        inb.studio().close()
