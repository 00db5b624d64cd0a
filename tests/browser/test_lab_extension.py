"""The invoke-nb JupyterLab extension in a real JupyterLab: the palette command docks the
gallery of the notebook's kernel in the right panel, ``widget.show("main")`` docks the editor
in a main-area tab, and a kernel restart closes both panels, after which the command works
again in the new kernel (with the studio root from the extension's settings).

The prebuilt extension (``make -C extension``) is linked into the test server's data folder;
sidecar's extension comes from the venv.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .lab import ARTIFACTS, LabServer, Notebook
from .waits import wait_settled

pytestmark = pytest.mark.browser

LABEXT = Path(__file__).resolve().parents[2] / "src" / "invoke_nb" / "labextension"

SETUP = """\
import os
os.environ["TRANSFORMERS_VERBOSITY"] = "error"  # a clean notebook for the README picture
import torch
torch.set_num_threads(1)
import invoke_nb as inb
studio = inb.studio({root!r})  # the kernel's default studio: the commands open its views
studio.models.install({model!r}, name="tiny", in_place=True)
kw = dict(model="tiny", steps=4, width=64, height=64, progress=False)
for p, s in [("a red fox in the snow", 1), ("a blue castle", 2), ("green hills", 3),
             ("a lighthouse at dusk", 4), ("a purple moon", 5), ("autumn forest", 6)]:
    studio.txt2img(p, seed=s, **kw)
print("SETUP", studio.root)"""

EDITOR = """\
g = inb.Graph()
g.add("integer", id="n", value=2)
g.add("add", id="s", b=3)
g.connect("n", "value", "s", "a")
ed = studio.editor(g)
panel = ed.show("main")
print("DOCKED", panel.anchor, panel.title)"""

BAD_AREA = """\
try:
    ed.show("left-ish")
except ValueError as e:
    print("REFUSED", e)"""

CELLS = [SETUP, EDITOR, BAD_AREA]

RIGHT = "#jp-right-stack"
MAIN = "#jp-main-dock-panel"


def put_settings(server: LabServer, values: dict[str, Any]) -> None:
    """Write the extension's user settings through the server's settings API."""
    body = json.dumps({"raw": json.dumps(values)}).encode()
    req = urllib.request.Request(
        f"{server.url}/lab/api/settings/invoke-nb:plugin?token={server.token}",
        data=body,
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 204, r.status


@pytest.fixture(scope="module")
def nb(
    chromium: Any, lab_server: LabServer, tiny_sd1: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Notebook, list[str]]]:
    if not (LABEXT / "package.json").exists():
        pytest.fail(f"the lab extension is not built in {LABEXT}: run `make -C extension`")
    exts = lab_server.root.parent / "data" / "labextensions"
    exts.mkdir(parents=True, exist_ok=True)
    if not (exts / "invoke-nb").exists():
        (exts / "invoke-nb").symlink_to(LABEXT, target_is_directory=True)
    root = tmp_path_factory.mktemp("lab-extension") / "studio"
    put_settings(lab_server, {"studioRoot": str(root), "defaultArea": "right"})
    cells = [SETUP.format(root=str(root), model=str(tiny_sd1)), *CELLS[1:]]
    context = chromium.new_context(viewport={"width": 1500, "height": 950})
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    notebook = Notebook.open(page, lab_server, "lab_extension.ipynb", cells)
    notebook.run_cell(0)
    notebook.output_text(0, "SETUP", timeout=120_000)
    yield notebook, errors
    if errors:
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "lab_extension-page-errors.log").write_text("\n".join(errors))
    context.close()


def palette(page: Any, label: str) -> None:
    """Run a command from the command palette by its label."""
    page.keyboard.press("Control+Shift+C")
    box = page.locator(".lm-CommandPalette-input")
    box.wait_for()
    box.fill(label)
    page.locator(".lm-CommandPalette-item", has_text=label).first.click()


def wait_gallery_tiles(page: Any, where: str, n: int) -> None:
    page.wait_for_function(
        """([where, n]) => { const imgs = [...document.querySelectorAll(
               `${where} .inb-panel[data-inb-view='gallery'] .inb-gallery .inb-tile img`)];
             return imgs.length === n && imgs.every(i => i.complete && i.naturalWidth > 0); }""",
        arg=[where, n],
        timeout=60_000,
    )


def test_palette_command_docks_the_gallery_in_the_right_panel(
    nb: tuple[Notebook, list[str]],
) -> None:
    notebook, errors = nb
    page = notebook.page
    palette(page, "Invoke: open gallery")
    wait_gallery_tiles(page, RIGHT, 6)
    # the right sidebar has our tab, with our icon, and the panel carries the view's class
    tab = page.locator(".jp-SideBar.jp-mod-right .lm-TabBar-tab", has_text="Invoke: Gallery")
    assert (
        tab.count() == 1
        or page.locator(
            ".jp-SideBar.jp-mod-right .lm-TabBar-tab [data-icon='invoke-nb:gallery']"
        ).count()
        == 1
    )
    assert page.locator(f"{RIGHT} .inb-panel[data-inb-view='gallery']").count() == 1
    # the README picture: file browser folded, the right panel dragged wider
    page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id='filebrowser']").click()
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle:visible").last
    box = handle.bounding_box()
    page.mouse.move(box["x"] + 1, box["y"] + 300)
    page.mouse.down()
    page.mouse.move(760, box["y"] + 300, steps=5)
    page.mouse.up()
    wait_gallery_tiles(page, RIGHT, 6)
    wait_settled(page, ".inb-tile")  # the grid has reflowed to the new width
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "readme-gallery.png"))
    assert not errors, errors


def test_show_main_docks_the_editor_in_a_main_tab(nb: tuple[Notebook, list[str]]) -> None:
    notebook, errors = nb
    page = notebook.page
    notebook.run_cell(1)
    panel = page.locator(f"{MAIN} .inb-panel[data-inb-view='editor']")
    panel.locator(".react-flow__node[data-id='s']").wait_for()  # docked, and the active tab
    assert panel.locator(".react-flow__node").count() == 2
    tab = page.locator(f"{MAIN} .lm-TabBar-tab", has_text="Invoke: Node editor")
    assert tab.locator("[data-icon='invoke-nb:editor']").count() == 1
    panel.locator(".inb-palette-item").first.wait_for()  # node types came from the kernel
    notebook.screenshot("lab_extension_editor_main")
    page.locator(f"{MAIN} .lm-TabBar-tab", has_text=notebook.name).click()
    assert "DOCKED tab-after Invoke: Node editor" in notebook.output_text(1, "DOCKED")
    notebook.run_cell(2)
    assert "unknown panel area 'left-ish' for GraphEditor" in notebook.output_text(2, "REFUSED")
    assert not errors, errors


def test_kernel_restart_closes_panels_and_commands_work_again(
    nb: tuple[Notebook, list[str]],
) -> None:
    notebook, errors = nb
    page = notebook.page
    assert page.locator(".inb-panel").count() == 2  # the gallery and the editor
    notebook.menu("Kernel", "Restart Kernel…")
    page.locator(".jp-Dialog .jp-mod-accept").click()
    page.wait_for_function("() => document.querySelectorAll('.inb-panel').length === 0")
    assert page.locator(".jupyterlab-sidecar").count() == 0  # nothing left behind, broken
    notebook.wait_kernel_idle()
    # the new kernel has no studio: the command opens one at the settings' studio root
    palette(page, "Invoke: open gallery")
    wait_gallery_tiles(page, RIGHT, 6)
    notebook.screenshot("lab_extension_after_restart")
    real = [e for e in errors if not re.search(r"Kernel|restart|Comm", e, re.I)]
    assert not real, real
