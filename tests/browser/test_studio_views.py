"""Gallery, queue view and model view in a real JupyterLab, on the tiny SD1 model.

One notebook (one kernel) serves the three tests, in order: the gallery filters by board and
stars an image (checked in the catalog), shows a new image live and its details; the queue
view cancels a running item; the model view shows the installed model and cache stats.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .lab import ARTIFACTS, LabServer, Notebook

pytestmark = pytest.mark.browser

SETUP = """\
import json, time
import torch
from PIL import Image
torch.set_num_threads(1)  # the test machines are shared: one thread runs tiny models fastest
import invoke_nb as inb
from invoke_nb.nodes import InputField, Node, Output, OutputField, node, output

@output("nb_sleep_output")
class SleepOut(Output):
    value: int = OutputField()

@node("nb_sleep", category="test", deterministic=False)
class Sleep(Node):
    steps: int = InputField(default=600)
    def invoke(self, ctx) -> SleepOut:
        for i in range(self.steps):
            ctx.check_cancelled()
            time.sleep(0.05)
            preview = Image.new("RGB", (64, 64), (200, 40 + i % 200, 90))
            ctx.progress(step=i + 1, total=self.steps, message="sleeping", image=preview)
        return SleepOut(value=self.steps)

studio = inb.Studio({root!r})
studio.models.install({model!r}, name="tiny", in_place=True)
kw = dict(model="tiny", steps=4, width=64, height=64, progress=False)
fav = studio.txt2img("a red fox in the snow", seed=1, board="favourites", **kw)
others = [studio.txt2img(p, seed=s, **kw) for p, s in [("a blue castle", 2), ("green hills", 3)]]
print("SETUP", json.dumps({{"fav": fav.image_name, "others": [o.image_name for o in others]}}))"""

GALLERY = "gal = studio.gallery(); gal"
STARRED = """\
rows = studio.sql("select image_name from images where starred order by 1").fetchall()
print("STARRED", json.dumps([r[0] for r in rows]), "FILTER", gal.board, len(gal.selected))"""
MORE = """new = studio.txt2img("a purple moon", seed=4, **kw); print("NEW", new.image_name)"""
QUEUE = "qv = studio.queue_view(); qv"
SLOW = """\
g = inb.Graph(); g.add("nb_sleep", id="sleep", steps=600)
(slow_id,) = studio.enqueue(g); print("SLOW", slow_id)"""
STATUS = """print("STATUS", studio.catalog.queue.get(slow_id).status)"""
MODELS = "mv = studio.models_view(); mv"

CELLS = [SETUP, GALLERY, STARRED, MORE, QUEUE, SLOW, STATUS, MODELS]


@pytest.fixture(scope="module")
def nb(
    chromium: Any, lab_server: LabServer, tiny_sd1: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Notebook, dict[str, Any]]]:
    root = tmp_path_factory.mktemp("studio-views") / "studio"
    cells = [SETUP.format(root=str(root), model=str(tiny_sd1)), *CELLS[1:]]
    context = chromium.new_context(viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    notebook = Notebook.open(page, lab_server, "studio_views.ipynb", cells)
    notebook.run_cell(0)
    out = notebook.output_text(0, "SETUP", timeout=120_000)
    found = re.search(r"SETUP (\{.*\})", out)
    assert found, out
    info = json.loads(found.group(1))
    info["errors"] = errors
    yield notebook, info
    if errors:
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "studio_views-page-errors.log").write_text("\n".join(errors))
    context.close()


def tiles(gallery: Any) -> list[str]:
    return gallery.locator(".inb-tile[data-name]").evaluate_all("ts => ts.map(t => t.dataset.name)")


def wait_tiles(page: Any, n: int) -> None:
    page.wait_for_function(
        """n => { const imgs = [...document.querySelectorAll('.inb-gallery .inb-tile img')];
                  return imgs.length === n && imgs.every(i => i.complete && i.naturalWidth > 0); }""",
        arg=n,
        timeout=30_000,
    )


def test_gallery_filter_star_live_detail(nb: tuple[Notebook, dict[str, Any]]) -> None:
    notebook, info = nb
    page = notebook.page
    notebook.run_cell(1)
    gallery = page.locator(".inb-gallery")
    wait_tiles(page, 3)
    assert set(tiles(gallery)) == {info["fav"], *info["others"]}
    board = gallery.locator(".inb-board", has_text="favourites")
    assert board.locator(".inb-board-count").inner_text() == "1"
    assert gallery.locator(".inb-board[data-board='none'] .inb-board-count").inner_text() == "2"
    notebook.screenshot("gallery_01_all", gallery)

    # filter by board: only the board's image is left
    board.click()
    page.wait_for_function(
        "() => document.querySelectorAll('.inb-gallery .inb-tile[data-name]').length === 1"
    )
    assert tiles(gallery) == [info["fav"]]

    # star it with the tile's button; the catalog row changes
    tile = gallery.locator(f".inb-tile[data-name='{info['fav']}']")
    tile.hover()
    tile.locator(".inb-star").click()
    tile.locator(".inb-star.inb-starred").wait_for()
    tile.click()  # select it
    gallery.locator(".inb-selbar").wait_for()
    notebook.screenshot("gallery_02_board_starred", gallery)
    notebook.run_cell(2)
    printed = notebook.output_text(2, "STARRED")
    starred = re.search(r"STARRED (\[.*?\]) FILTER (\S+) (\d+)", printed)
    assert starred, printed
    assert json.loads(starred.group(1)) == [info["fav"]]
    assert starred.group(2) != "''" and starred.group(3) == "1"  # filter + selection in Python

    # back to every image; a new image made in Python appears without a reload
    gallery.locator(".inb-board", has_text="All images").click()
    wait_tiles(page, 3)
    notebook.run_cell(3)
    new = re.search(r"NEW (\S+)", notebook.output_text(3, "NEW", timeout=60_000)).group(1)
    wait_tiles(page, 4)
    assert tiles(gallery)[0] == new  # newest first

    # shift-click selects a range, which Python sees
    shown = tiles(gallery)
    gallery.locator(f".inb-tile[data-name='{shown[0]}']").click()
    gallery.locator(f".inb-tile[data-name='{shown[2]}']").click(modifiers=["Shift"])
    page.wait_for_function(
        "() => document.querySelectorAll('.inb-gallery .inb-tile-selected').length === 3"
    )
    notebook.run_cell(2)
    page.wait_for_function(
        "() => /FILTER \\S* 3/.test(document.querySelectorAll('.jp-Notebook .jp-Cell')[2].innerText)"
    )

    # detail view with the generation metadata
    gallery.locator(f".inb-tile[data-name='{new}']").dblclick()
    detail = gallery.locator(".inb-detail")
    detail.locator(".inb-detail-img").wait_for()
    page.wait_for_function(
        "() => document.querySelector('.inb-gallery .inb-detail-img').naturalWidth === 64"
    )
    assert detail.locator(".inb-meta-row[data-key='prompt'] dd").inner_text() == "a purple moon"
    assert detail.locator(".inb-meta-row[data-key='seed'] dd").inner_text() == "4"
    assert detail.locator(".inb-meta-row[data-key='steps'] dd").inner_text() == "4"
    assert "tiny" in detail.locator(".inb-meta-row[data-key='model'] dd").inner_text()
    notebook.screenshot("gallery_03_live_detail", gallery)
    assert not info["errors"], info["errors"]


@pytest.fixture
def gallery_shown(nb: tuple[Notebook, dict[str, Any]]) -> tuple[Notebook, dict[str, Any]]:
    """The notebook with the gallery cell's widget on screen (run here if no test showed it)."""
    notebook, _ = nb
    if notebook.page.locator(".inb-gallery").count() == 0:
        notebook.run_cell(1)
        notebook.page.locator(".inb-gallery").wait_for()
    return nb


def test_queue_view_cancels_a_running_item(gallery_shown: tuple[Notebook, dict[str, Any]]) -> None:
    notebook, info = gallery_shown
    page = notebook.page
    notebook.run_cell(4)
    queue = page.locator(".inb-queue")
    queue.locator(".inb-item").first.wait_for()  # the generations made so far
    notebook.run_cell(5)
    slow = re.search(r"SLOW (\d+)", notebook.output_text(5, "SLOW")).group(1)
    item = queue.locator(f".inb-item[data-item='{slow}']")
    item.and_(page.locator("[data-status='in_progress']")).wait_for(timeout=30_000)
    page.wait_for_function(
        """id => { const el = document.querySelector(`.inb-queue .inb-item[data-item='${id}'] .inb-item-msg`);
                   return el && /step \\d+\\/600/.test(el.textContent); }""",
        arg=slow,
    )
    notebook.screenshot("queue_01_running", queue)
    # the gallery above shows the running item's preview images
    preview = page.locator(".inb-gallery .inb-preview img")
    preview.wait_for()
    page.wait_for_function(
        "() => document.querySelector('.inb-gallery .inb-preview img').naturalWidth === 64"
    )
    assert "step" in page.locator(".inb-gallery .inb-preview").inner_text()
    notebook.screenshot("gallery_04_preview", page.locator(".inb-gallery"))
    item.locator(".inb-cancel").click()
    item.and_(page.locator("[data-status='canceled']")).wait_for(timeout=15_000)
    item.locator(".inb-retry").wait_for()
    notebook.run_cell(6)
    assert "STATUS canceled" in notebook.output_text(6, "STATUS")
    notebook.screenshot("queue_02_canceled", queue)
    assert not info["errors"], info["errors"]


def test_model_view_shows_the_tiny_model_and_cache_stats(
    nb: tuple[Notebook, dict[str, Any]],
) -> None:
    notebook, info = nb
    page = notebook.page
    notebook.run_cell(7)
    models = page.locator(".inb-models")
    row = models.locator("tr[data-name='tiny']")
    row.wait_for()
    cells = row.locator("td").all_inner_texts()
    assert cells[1:4] == ["main", "sd-1", "diffusers"]
    cache = models.locator(".inb-cache")
    cache.wait_for()
    assert int(cache.get_attribute("data-entries") or 0) >= 1  # the generations loaded parts
    assert re.search(r"\d+ loads in", cache.locator("[data-stat='loads']").inner_text())
    assert "RAM" in cache.locator("[data-stat='ram']").inner_text()
    notebook.screenshot("models_01_list", models)
    assert not info["errors"], info["errors"]
