"""Views docked at the sizes JupyterLab gives them, the gallery's keyboard and the editor's
layout, in a real JupyterLab.

Docked panels are what `widget.show(area)` and the Invoke commands make (sidecar panels): the
right sidebar is ~250 px wide, a split of the main area about half the window. In each, every
control of the view must lie inside the panel and be the element seen at its centre (not
clipped, not covered), the grid must keep several columns of visible tiles, and the view must
fill the panel's height. The catalog is synthetic (rows + WebP thumbnails, no model, no torch).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .lab import LabServer, Notebook

pytestmark = pytest.mark.browser

SRC = Path(__file__).resolve().parents[2] / "src"

SETUP = """\
import time
from PIL import Image
import invoke_nb as inb
from invoke_nb.graph import standard
studio = inb.Studio({root!r}, start_queue=False)
boards = [studio.catalog.boards.create(f"board {{b}}").board_id for b in range(4)]
for i in range(150):  # 150 images, every third on a board, distinct colours and times
    studio.catalog.images.save(
        Image.new("RGB", (64, 64), (i, 255 - i, (7 * i) % 256)),
        metadata={{"positive_prompt": f"picture {{i}}", "seed": i}},
        board_id=boards[i % 4] if i % 3 == 0 else None,
    )
    time.sleep(0.002)
g = standard.txt2img(dict(key="k", hash="h", name="sd15", base="sd-1", type="main"), "a red cube")
print("SRC", inb.__file__)"""

CELLS = {
    "setup": "",
    "gallery_right": 'panel = studio.gallery().show("right")',
    "gallery_split": 'panel = studio.gallery().show("split-right")',
    "editor_split": 'panel = studio.editor(g).show("split-right")',
    "editor_right": 'panel = studio.editor(g).show("right")',
    "canvas_right": 'panel = studio.canvas().show("right")',
    "canvas_split": 'panel = studio.canvas().show("split-bottom")',
    "close": "panel.close()",
    "gallery_cell": "gal = studio.gallery(); gal",
    "selection": 'print("SEL", gal.selection, "STARRED", [studio.catalog.images.get(n).starred for n in gal.selection])',
    "editor_cell": "ed = studio.editor(g); ed",
}
INDEX = {name: i for i, name in enumerate(CELLS)}

# Every control of `root` inside `panel` and seen at its centre; returns the ones that are not.
CLIPPED = """([panel, root, selector]) => {
  const p = panel.getBoundingClientRect();
  const bad = [];
  for (const el of root.querySelectorAll(selector)) {
    const r = el.getBoundingClientRect();
    const name = (el.className || el.tagName) + ':' + (el.textContent || el.placeholder || '').trim().slice(0, 20);
    if (!el.checkVisibility() || r.width < 4 || r.height < 4) { bad.push(['hidden', name]); continue; }
    if (r.left < p.left - 1 || r.right > p.right + 1 || r.top < p.top - 1 || r.bottom > p.bottom + 1) {
      bad.push(['outside', name, [r.left, r.top, r.right, r.bottom], [p.left, p.top, p.right, p.bottom]]);
      continue;
    }
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    if (!hit || !(el === hit || el.contains(hit) || hit.contains(el) || el.closest('label')?.contains(hit)))
      bad.push(['covered', name]);
  }
  return bad;
}"""

# Tiles wholly inside the grid's viewport and the panel; their distinct columns.
TILES = """([panel, root]) => {
  const p = panel.getBoundingClientRect();
  const g = root.querySelector('.inb-grid-scroll').getBoundingClientRect();
  const full = [...root.querySelectorAll('.inb-tile[data-name]')].map(t => t.getBoundingClientRect())
    .filter(r => r.top >= g.top - 1 && r.bottom <= Math.min(g.bottom, p.bottom) + 1
              && r.left >= Math.max(g.left, p.left) - 1 && r.right <= Math.min(g.right, p.right) + 1);
  return {visible: full.length, columns: new Set(full.map(r => Math.round(r.left))).size,
          width: full.length ? full[0].width : 0};
}"""

GALLERY_CONTROLS = ".inb-gbar input, .inb-gbar select, .inb-gbar label, .inb-board, .inb-gcount"
EDITOR_CONTROLS = ".inb-toolbar button, .inb-toolbar input:not([type=file]), .inb-search"
CANVAS_CONTROLS = ".inb-cv-tools button"


@pytest.fixture(scope="module")
def nb(
    chromium: Any, lab_server: LabServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Notebook]:
    root = tmp_path_factory.mktemp("docked") / "studio"
    cells = [SETUP.format(root=str(root)), *list(CELLS.values())[1:]]
    context = chromium.new_context(viewport={"width": 1500, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    notebook = Notebook.open(page, lab_server, "docked_views.ipynb", cells)
    notebook.run_cell(0)
    src = re.search(r"SRC (\S+)", notebook.output_text(0, "SRC", timeout=120_000)).group(1)
    assert Path(src).resolve().is_relative_to(SRC), f"the kernel imports {src}, not {SRC}"
    page.page_errors = errors  # type: ignore[attr-defined]
    yield notebook
    context.close()


def open_docked(nb: Notebook, cell: str, view: str) -> tuple[Any, Any]:
    """Run a cell that docks a view; returns (panel, view root) locators once it is drawn."""
    nb.run_cell(INDEX[cell])
    panel = nb.page.locator(".jupyterlab-sidecar").filter(has=nb.page.locator(view)).last
    panel.locator(view).wait_for()
    return panel, panel.locator(view)


def close_docked(nb: Notebook) -> None:
    nb.run_cell(INDEX["close"])
    nb.page.wait_for_function("() => !document.querySelector('.jupyterlab-sidecar')")


def check_fills(panel: Any, root: Any, tolerance: float = 24) -> None:
    p, r = panel.bounding_box(), root.bounding_box()
    assert r["height"] >= p["height"] - (r["y"] - p["y"]) - tolerance, (p, r)
    assert r["y"] + r["height"] <= p["y"] + p["height"] + 1, (p, r)


def check_gallery(nb: Notebook, panel: Any, gallery: Any, min_columns: int, shot: str) -> None:
    nb.page.wait_for_function(
        """el => [...el.querySelectorAll('.inb-tile img')].filter(i => i.complete && i.naturalWidth).length >= 12""",
        arg=gallery.element_handle(),
    )
    nb.page.wait_for_timeout(200)  # the grid settles to the panel's size
    nb.screenshot(shot)
    panel_el, root_el = panel.element_handle(), gallery.element_handle()
    assert nb.page.evaluate(CLIPPED, [panel_el, root_el, GALLERY_CONTROLS]) == []
    tiles = nb.page.evaluate(TILES, [panel_el, root_el])
    assert tiles["columns"] >= min_columns, tiles
    assert tiles["visible"] >= 3 * min_columns, tiles
    check_fills(panel, gallery.locator(".inb-gallery-root"))


def test_gallery_in_the_right_sidebar_keeps_every_control_and_three_columns(
    nb: Notebook,
) -> None:
    panel, gallery = open_docked(nb, "gallery_right", ".inb-gallery")
    width = panel.bounding_box()["width"]
    assert 200 <= width <= 400, width  # what JupyterLab gives a right-sidebar panel
    check_gallery(nb, panel, gallery, 3, "docked_gallery_right")
    # boards are a menu here; picking one filters the grid
    select = gallery.locator(".inb-board-select")
    value, label = select.evaluate(
        "s => [...s.options].filter(o => o.text.startsWith('board 3 ')).map(o => [o.value, o.text])[0]"
    )
    count = re.search(r"\((\d+)\)", label).group(1)
    select.select_option(value)
    nb.page.wait_for_function(
        "([el, n]) => el.querySelector('.inb-gcount').textContent.startsWith(n + ' image')",
        arg=[gallery.element_handle(), count],
    )
    close_docked(nb)
    assert nb.page.page_errors == []


def test_gallery_in_a_split_main_area(nb: Notebook) -> None:
    panel, gallery = open_docked(nb, "gallery_split", ".inb-gallery")
    check_gallery(nb, panel, gallery, 3, "docked_gallery_split")
    close_docked(nb)


def check_editor(nb: Notebook, panel: Any, editor: Any, shot: str) -> dict[str, float]:
    nb.page.wait_for_function(
        "el => el.querySelectorAll('.react-flow__node .inb-node').length === 10",
        arg=editor.element_handle(),
    )
    nb.page.wait_for_function(  # auto-laid out and fitted
        """el => [...el.querySelectorAll('.react-flow__node')].every(n => n.style.opacity !== '0')
                 && el.querySelector('.react-flow__viewport').style.transform.includes('scale')""",
        arg=editor.element_handle(),
    )
    nb.page.wait_for_timeout(400)
    nb.screenshot(shot)
    assert (
        nb.page.evaluate(
            CLIPPED, [panel.element_handle(), editor.element_handle(), EDITOR_CONTROLS]
        )
        == []
    )
    return editor.evaluate(
        """el => {
      const z = +el.querySelector('.react-flow__viewport').style.transform.match(/scale\\(([\\d.]+)\\)/)[1];
      const nodes = [...el.querySelectorAll('.react-flow__node')].map(n => n.getBoundingClientRect());
      const titles = [...el.querySelectorAll('.inb-node-title')].map(t => t.getBoundingClientRect().height);
      return {zoom: z, title: Math.min(...titles),
              width: (Math.max(...nodes.map(r => r.right)) - Math.min(...nodes.map(r => r.left))) / z,
              height: (Math.max(...nodes.map(r => r.bottom)) - Math.min(...nodes.map(r => r.top))) / z};
    }"""
    )


def test_editor_lays_txt2img_out_left_to_right_at_a_readable_zoom(nb: Notebook) -> None:
    nb.run_cell(INDEX["editor_cell"])
    editor = nb.cell(INDEX["editor_cell"]).locator(".inb-graph-editor")
    editor.wait_for()
    m = check_editor(nb, editor, editor, "editor_txt2img_cell")
    assert m["width"] > m["height"], m  # layers left to right, not one tall column
    assert m["zoom"] >= 0.5, m
    assert m["title"] >= 8, m  # node titles on screen, px


def test_editor_docked_split_and_right(nb: Notebook) -> None:
    panel, editor = open_docked(nb, "editor_split", ".inb-graph-editor")
    m = check_editor(nb, panel, editor, "docked_editor_split")
    assert m["zoom"] >= 0.5 and m["title"] >= 7, m
    check_fills(panel, editor.locator(".inb-editor-root"))
    close_docked(nb)
    panel, editor = open_docked(nb, "editor_right", ".inb-graph-editor")
    m = check_editor(nb, panel, editor, "docked_editor_right")
    assert m["zoom"] >= 0.5, m  # larger than the pane: panned, not shrunk to nothing
    pane = editor.locator(".react-flow__pane").bounding_box()
    assert pane["height"] >= 150 and pane["width"] >= 150, pane
    check_fills(panel, editor.locator(".inb-editor-root"))
    close_docked(nb)


@pytest.mark.parametrize("where", ["right", "split"])
def test_canvas_docked(nb: Notebook, where: str) -> None:
    panel, canvas = open_docked(nb, f"canvas_{where}", ".inb-canvas")
    canvas.locator(".inb-cv-stage canvas").first.wait_for()
    nb.page.wait_for_timeout(300)
    nb.screenshot(f"docked_canvas_{where}")
    assert (
        nb.page.evaluate(
            CLIPPED, [panel.element_handle(), canvas.element_handle(), CANVAS_CONTROLS]
        )
        == []
    )
    stage = canvas.locator(".inb-cv-stage").bounding_box()
    box = panel.bounding_box()
    assert stage["height"] >= 150 and stage["width"] >= 150, stage
    assert stage["x"] + stage["width"] <= box["x"] + box["width"] + 1, (stage, box)
    check_fills(panel, canvas)
    close_docked(nb)


def test_gallery_keyboard(nb: Notebook) -> None:
    page = nb.page
    nb.run_cell(INDEX["gallery_cell"])
    gallery = nb.cell(INDEX["gallery_cell"]).locator(".inb-gallery")
    gallery.locator(".inb-tile[data-index='0'] img").wait_for()
    columns = gallery.evaluate(
        """el => new Set([...el.querySelectorAll('.inb-tile[data-name]')]
                 .map(t => t.getBoundingClientRect().left)).size"""
    )
    assert columns >= 4
    selected = ".inb-tile.inb-tile-selected"

    def current() -> list[int]:
        return gallery.locator(selected).evaluate_all("ts => ts.map(t => +t.dataset.index)")

    gallery.locator(".inb-tile[data-index='0']").click()
    assert current() == [0]
    page.keyboard.press("ArrowRight")
    assert current() == [1]
    page.keyboard.press("ArrowDown")
    assert current() == [1 + columns]
    page.keyboard.press("Shift+ArrowLeft")
    assert current() == [columns, 1 + columns]
    page.keyboard.press("Home")
    assert current() == [0]
    name = gallery.locator(".inb-tile[data-index='0']").get_attribute("data-name")
    page.keyboard.press("Enter")
    detail = gallery.locator(".inb-detail")
    detail.locator(".inb-meta-row[data-key='name'] dd", has_text=name).wait_for()
    page.keyboard.press("Escape")
    detail.wait_for(state="detached")
    star = gallery.locator(".inb-tile[data-index='0'] .inb-star")
    was = "inb-starred" in (star.get_attribute("class") or "")
    page.keyboard.press(" ")  # star the selected image (unstar, if it was starred)
    # the grid reloads its page: the tile's star is drawn anew, toggled
    toggled = ":not(.inb-starred)" if was else ".inb-starred"
    gallery.locator(f".inb-tile[data-index='0'] .inb-star{toggled}").wait_for()
    nb.run_cell(INDEX["selection"])
    out = nb.output_text(INDEX["selection"], "SEL")
    assert f"SEL ['{name}'] STARRED [{not was}]" in out, out
    assert page.page_errors == []


def test_gallery_in_a_cell_shows_42_tiles_on_a_1600x1200_screen(nb: Notebook) -> None:
    page = nb.page
    before = page.viewport_size
    page.set_viewport_size({"width": 1600, "height": 1200})
    try:
        nb.run_cell(INDEX["gallery_cell"])
        gallery = nb.cell(INDEX["gallery_cell"]).locator(".inb-gallery")
        page.wait_for_function(
            """el => [...el.querySelectorAll('.inb-tile img')]
                       .filter(i => i.complete && i.naturalWidth).length >= 42""",
            arg=gallery.element_handle(),
        )
        root = gallery.element_handle()
        tiles = page.evaluate(TILES, [root, root])
        assert tiles["visible"] >= 42, tiles
        nb.screenshot("gallery_cell_1600x1200", gallery)
    finally:
        page.set_viewport_size(before)
