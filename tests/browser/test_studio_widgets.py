"""The studio's editor and canvas in a real JupyterLab on the tiny SD1 model.

Editor: open the standard txt2img graph without a model, pick the model with the picker,
queue two runs with the batch count, see the image on the output node, save the workflow to
the library. Canvas: paint a mask over an image, generate (inpaint), accept the staged
result, and check ``canvas.layers`` / ``canvas.composite`` in Python.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from .lab import LabServer, Notebook
from .waits import wait_painted

pytestmark = pytest.mark.browser


def _setup(root: Path, tiny: Path) -> str:
    return f"""\
import json
import invoke_nb as inb
from invoke_nb.graph import standard
studio = inb.Studio({str(root)!r})
rec = studio.models.install({str(tiny)!r}, name="tiny", in_place=True)
"""


EDITOR = """\
g = standard.txt2img(rec, "a red cube", width=64, height=64, steps=2, seed=4)
g.unset("model_loader", "model")
editor = studio.editor(g)
editor"""

EDITOR_REPORT = """\
done = studio.catalog.queue.list(status=["completed"])
print("REPORT", json.dumps({
    "completed": len(done),
    "model": editor.graph.nodes["model_loader"].values["model"].name,
    "library": [w.name for w in studio.catalog.workflows.list()],
    "images": studio.catalog.images.count(),
}))"""


def editor_part(page: Any, nb: Notebook) -> None:
    nb.run_cell(1)
    editor = page.locator(".inb-graph-editor")
    loader = editor.locator(".react-flow__node[data-id='model_loader']")
    picker = loader.locator("select.inb-model-picker")
    picker.wait_for(timeout=90_000)
    page.wait_for_function(
        "el => [...el.options].some(o => o.textContent.includes('tiny'))",
        arg=picker.element_handle(),
    )
    options = picker.locator("option").all_inner_texts()
    assert any(o.startswith("tiny · sd-1") for o in options), options
    picker.select_option(label=next(o for o in options if o.startswith("tiny")))
    page.wait_for_function(
        "el => el.selectedOptions[0].textContent.startsWith('tiny')", arg=picker.element_handle()
    )

    editor.get_by_label("Runs").fill("2")
    editor.get_by_role("button", name="Invoke", exact=True).click()
    editor.locator(".inb-toast", has_text="queued 2 runs").wait_for(timeout=20_000)
    image = editor.locator(".react-flow__node[data-id='l2i'] .inb-node-image img")
    image.wait_for(timeout=90_000)
    page.wait_for_function(
        "el => el.complete && el.naturalWidth === 64", arg=image.element_handle()
    )
    page.wait_for_function(
        "() => !document.querySelector('.inb-graph-editor .inb-pending')", timeout=60_000
    )
    # each run got its own seed (InvokeAI's iterations), so both really ran
    badge = editor.locator(".react-flow__node[data-id='denoise_latents'] .inb-badge")
    assert badge.inner_text() in ("done", "cached")
    image.scroll_into_view_if_needed()
    nb.screenshot("studio_editor_01_image", editor)

    # save the workflow to the studio's library
    editor.get_by_role("button", name="Library…").click()
    dialog = editor.get_by_role("dialog", name="Workflow library")
    dialog.get_by_label("Workflow name").fill("tiny txt2img")
    dialog.get_by_role("button", name="Save new").click()
    dialog.locator(".inb-library-item", has_text="tiny txt2img").wait_for()
    nb.screenshot("studio_editor_02_library", editor)

    nb.run_cell(2)
    report = json.loads(re.search(r"REPORT (\{.*\})", nb.output_text(2, "REPORT")).group(1))
    assert report["completed"] == 2 and report["model"] == "tiny"
    # two runs, two seeds: two images
    assert report["library"] == ["tiny txt2img"] and report["images"] == 2


CANVAS = """\
from PIL import Image
base = Image.new("RGB", (64, 64), (30, 120, 200))
canvas = studio.canvas(base)
canvas"""

CANVAS_REPORT = """\
import numpy as np
comp = np.asarray(canvas.composite.convert("RGB")).astype(int)
top = np.asarray(canvas.layers[-1].image.convert("RGB")).astype(int)
mask = np.asarray(canvas.mask) > 0
print("REPORT", json.dumps({
    "layers": len(canvas.layers),
    "bbox": canvas.bbox,
    "mode": canvas.last_mode,
    "masked": int(mask.sum()),
    "composite_is_top": bool((comp == top).all()),
    "changed_inside": int((comp[mask] != [30, 120, 200]).any(axis=1).sum()),
}))"""


def canvas_part(page: Any, nb: Notebook) -> None:
    nb.run_cell(3)
    cv = page.locator(".inb-canvas")
    cv.locator(".inb-cv-layer").first.wait_for(timeout=90_000)
    page.wait_for_function(
        "() => document.querySelector('.inb-cv-generate')?.textContent.includes('img2img')"
    )

    def screen(x: float, y: float) -> tuple[float, float]:
        p = page.evaluate(
            "([x, y]) => document.querySelector('.inb-canvas').inbCanvas.engine.toScreen(x, y)",
            [x, y],
        )
        return p["x"], p["y"]

    # paint a horizontal stroke through the middle of the 64x64 box
    cv.locator("button[data-tool='brush']").click()
    cv.get_by_test_id("brush-size").fill("12")
    page.mouse.move(*screen(14, 32))
    page.mouse.down()
    for x in range(16, 52, 4):
        page.mouse.move(*screen(x, 32 + (x % 8) / 4))
    page.mouse.up()
    gen = cv.locator(".inb-cv-generate")
    page.wait_for_function("el => el.textContent.includes('inpaint')", arg=gen.element_handle())
    nb.screenshot("studio_canvas_01_mask", cv)

    cv.locator(".inb-cv-prompt").fill("a cat")
    cv.get_by_test_id("steps").fill("2")
    cv.get_by_test_id("seed").fill("7")
    gen.click()
    staging = cv.get_by_test_id("staging")
    staging.wait_for(timeout=90_000)
    assert "inpaint done" in cv.locator(".inb-cv-status").inner_text()
    wait_painted(page)
    nb.screenshot("studio_canvas_02_staged", cv)

    staging.get_by_role("button", name="Accept").click()
    page.wait_for_function("() => document.querySelectorAll('.inb-cv-layer').length === 2")
    staging.wait_for(state="detached")
    nb.run_cell(4)
    report = json.loads(re.search(r"REPORT (\{.*\})", nb.output_text(4, "REPORT")).group(1))
    assert report["layers"] == 2 and report["bbox"] == [0, 0, 64, 64]
    assert report["mode"] == "inpaint" and report["masked"] > 200
    assert report["composite_is_top"], "the accepted layer is what the box shows"
    assert report["changed_inside"] > 0
    # the mask stays on screen; clear it so the accepted picture shows plainly
    cv.locator("button[data-action='clear-mask']").click()
    # no painted mask: the generate button no longer offers inpaint
    page.wait_for_function("el => !el.textContent.includes('inpaint')", arg=gen.element_handle())
    wait_painted(page)
    nb.screenshot("studio_canvas_03_accepted", cv)

    # undo the clear and the accept: Python follows the browser
    cv.get_by_role("button", name="Undo").click()
    cv.get_by_role("button", name="Undo").click()
    page.wait_for_function("() => document.querySelectorAll('.inb-cv-layer').length === 1")
    # the canvas syncs to the kernel shortly after a change: ask Python until it agrees
    for _ in range(10):
        nb.run_cell(5)
        nb.wait_kernel_idle()
        if "LAYERS 1" in nb.output_text(5, "LAYERS"):
            break
    assert "LAYERS 1" in nb.output_text(5, "LAYERS")


def test_studio_editor_and_canvas(
    page: Any, lab_server: LabServer, tiny_sd1: Path, tmp_path: Path
) -> None:
    """One kernel (one studio, the tiny model loaded once) for both widgets: a lean test."""
    cells = [
        _setup(tmp_path / "studio", tiny_sd1),
        EDITOR,
        EDITOR_REPORT,
        CANVAS,
        CANVAS_REPORT,
        'print("LAYERS", len(canvas.layers))',
    ]
    nb = Notebook.open(page, lab_server, "studio_widgets.ipynb", cells)
    nb.run_cell(0)
    editor_part(page, nb)
    canvas_part(page, nb)
    assert not page.page_errors, page.page_errors
