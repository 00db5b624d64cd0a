"""The gallery as a hosted service shows it: in Notebook 7 and in JupyterLab 4.4, from the
environment `binder/check` builds (repo2docker's JupyterLab 4.4.9 and Notebook 7.4.7, the
wheel installed by binder/postBuild). In JupyterLab 4.4 the extension must be listed as
compatible, load without "Unsatisfied version" warnings, and its command must dock the
gallery in the right panel.

The venv is `.venv-binder` (or `$INVOKE_NB_BINDER_VENV`); without it these tests skip,
unless `$INVOKE_NB_REQUIRE_BINDER_VENV` is set, as `.ci/run` does after `binder/check`.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .lab import ARTIFACTS, LabServer, Notebook, _free_port

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("INVOKE_NB_BINDER_VENV", REPO / ".venv-binder"))

SETUP = """\
import invoke_nb as inb
studio = inb.studio({root!r})  # the kernel's default studio: the Invoke commands open it
studio.models.install({model!r}, name="tiny", in_place=True)
for seed in (1, 2, 3):
    studio.txt2img("a lighthouse", model="tiny", seed=seed, steps=2, width=64, height=64,
                   progress=False)
gallery = studio.gallery()
print("SETUP", len(studio.catalog.images.list(limit=10)))
gallery"""


def binder_venv() -> Path:
    marker = VENV / "binder-check.json"
    if not marker.exists():
        message = f"no Binder environment at {VENV}: run binder/check"
        if os.environ.get("INVOKE_NB_REQUIRE_BINDER_VENV"):
            pytest.fail(message)
        pytest.skip(message)
    return VENV


def start(venv: Path, app: str, base: Path) -> LabServer:
    """`python -m <app>` (jupyterlab or notebook) from the venv, everything under ``base``."""
    root = base / "notebooks"
    root.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    for var, sub in (
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_DATA_DIR", "data"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("IPYTHONDIR", "ipython"),
    ):
        env[var] = str(base / sub)
        (base / sub).mkdir()
    env.update(JUPYTER_PLATFORM_DIRS="1", HOME=str(base), PATH=f"{venv / 'bin'}:{env['PATH']}")
    labconfig = base / "config" / "labconfig"
    labconfig.mkdir()
    disabled = {"@jupyterlab/apputils-extension:announcements": True}
    (labconfig / "page_config.json").write_text(json.dumps({"disabledExtensions": disabled}))
    token, port = secrets.token_hex(16), _free_port()
    log = base / f"{app}.log"
    proc = subprocess.Popen(
        [str(venv / "bin" / "python"), "-m", app, "--no-browser", "--allow-root",
         "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}"],
        cwd=root, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    server = LabServer(f"http://127.0.0.1:{port}", token, root, proc, log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{app} exited: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}/api/status?token={token}", timeout=5):
                return server
        except OSError:
            time.sleep(0.3)
    server.stop()
    raise TimeoutError(f"{app} did not answer: {log.read_text()[-3000:]}")


@pytest.fixture
def served(
    request: pytest.FixtureRequest, tmp_path: Path, chromium: Any
) -> Iterator[tuple[LabServer, Any, list[str]]]:
    server = start(binder_venv(), request.param, tmp_path)
    context = chromium.new_context(viewport={"width": 1500, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    yield server, page, console
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"hosted-{request.param}-console.log").write_text("\n".join(console))
    context.close()
    server.stop()


def wait_tiles(page: Any, where: str, n: int) -> None:
    page.wait_for_function(
        """([where, n]) => { const imgs = [...document.querySelectorAll(
               `${where} .inb-gallery .inb-tile img`)];
             return imgs.length === n && imgs.every(i => i.complete && i.naturalWidth > 0); }""",
        arg=[where, n],
        timeout=120_000,
    )


def ours_unsatisfied(venv: Path, console: list[str]) -> list[str]:
    """Webpack's "Unsatisfied version" warnings for the ranges our installed extension requires.

    The ranges are read from the extension in the venv (its remoteEntry), so a build against
    a newer JupyterLab shows here. Other extensions may warn on 4.4 too: jupyterlab_widgets
    3.0.17 requires ^4.6.2; those are not ours."""
    (entry,) = (venv / "share/jupyter/labextensions/invoke-nb/static").glob("remoteEntry.*.js")
    ranges = set(re.findall(r'requiredVersion:"([^"]+)"', entry.read_text()))
    assert ranges and all(r.startswith(("^4.4.", "^4.5.")) for r in ranges), ranges
    return [
        m
        for m in console
        if "nsatisfied version" in m and any(f"(required {r})" in m for r in ranges)
    ]


@pytest.mark.parametrize("served", ["notebook"], indirect=True)
def test_gallery_in_notebook_7(served: tuple[LabServer, Any, list[str]], tiny_sd1: Path) -> None:
    server, page, console = served
    cells = [SETUP.format(root=str(server.root.parent / "studio"), model=str(tiny_sd1))]
    server.write_notebook("hosted.ipynb", cells)
    page.goto(f"{server.url}/notebooks/hosted.ipynb?token={server.token}")
    cell = page.locator(".jp-Notebook .jp-Cell").first
    cell.wait_for(timeout=60_000)
    out = cell.locator(".jp-OutputArea-output")
    prompt = cell.locator(".jp-InputArea-prompt")
    for _ in range(10):  # a kernel still starting drops the request: run again until it starts
        page.locator(".lm-MenuBar-itemLabel:text-is('Run')").click()
        page.locator(".lm-Menu-itemLabel:text-is('Run All Cells')").click()
        try:
            page.wait_for_function(
                "el => /\\[(\\*|\\d+)\\]/.test(el.textContent)",
                arg=prompt.element_handle(),
                timeout=10_000,
            )
            break
        except Exception:
            continue
    out.filter(has_text="SETUP").first.wait_for(timeout=180_000)
    assert "SETUP 3" in "\n".join(out.all_inner_texts())
    wait_tiles(page, ".jp-Notebook", 3)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "hosted-notebook7-gallery.png"))
    assert not [m for m in console if m.startswith("pageerror")], console


@pytest.mark.parametrize("served", ["jupyterlab"], indirect=True)
def test_gallery_and_docking_in_jupyterlab_4_4(
    served: tuple[LabServer, Any, list[str]], tiny_sd1: Path
) -> None:
    server, page, console = served
    venv = binder_venv()
    listed = subprocess.run(
        [str(venv / "bin" / "jupyter"), "labextension", "list"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "JUPYTER_CONFIG_DIR": str(server.root.parent / "config")},
    )  # fmt: skip
    text = listed.stdout + listed.stderr
    line = next((ln for ln in text.splitlines() if "invoke-nb" in ln), "")
    assert "enabled" in line and "OK" in line and "not compatible" not in text, text
    version = json.loads((venv / "binder-check.json").read_text())["jupyterlab"]
    assert version.startswith("4.4."), version
    cells = [SETUP.format(root=str(server.root.parent / "studio"), model=str(tiny_sd1))]
    nb = Notebook.open(page, server, "hosted.ipynb", cells)
    nb.run_cell(0)
    assert "SETUP 3" in nb.output_text(0, "SETUP", timeout=180_000)
    wait_tiles(page, ".jp-NotebookPanel", 3)
    # the extension's command docks the kernel's gallery in the right panel
    page.keyboard.press("Control+Shift+C")
    page.locator(".lm-CommandPalette-input").fill("Invoke: open gallery")
    page.locator(".lm-CommandPalette-item", has_text="Invoke: open gallery").first.click()
    wait_tiles(page, "#jp-right-stack", 3)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "hosted-lab44-gallery.png"))
    assert not ours_unsatisfied(venv, console), ours_unsatisfied(venv, console)
    assert not [m for m in console if m.startswith("pageerror")], console
