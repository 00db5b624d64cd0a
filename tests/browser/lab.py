"""A JupyterLab server of our own plus helpers to drive notebooks in it with Playwright.

Everything Jupyter writes (config, data, runtime, IPython profile, notebooks) goes under one
temp folder, the server listens on 127.0.0.1 with a random token, and the news pop-up is
disabled so it never covers what the tests click. Kernels use this Python (the repo venv).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabServer:
    """A running JupyterLab: its URL, token, notebook folder and process."""

    url: str
    token: str
    root: Path
    proc: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, base: Path, timeout: float = 60.0) -> LabServer:
        root = base / "notebooks"
        root.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        for var, sub in (
            ("JUPYTER_CONFIG_DIR", "config"),
            ("JUPYTER_DATA_DIR", "data"),
            ("JUPYTER_RUNTIME_DIR", "runtime"),
            ("IPYTHONDIR", "ipython"),
        ):
            env[var] = str(base / sub)
            (base / sub).mkdir(parents=True, exist_ok=True)
        env["JUPYTER_PLATFORM_DIRS"] = "1"
        labconfig = base / "config" / "labconfig"
        labconfig.mkdir(parents=True, exist_ok=True)
        (labconfig / "page_config.json").write_text(
            json.dumps(
                {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}
            )
        )
        # start the notebook's kernel without asking (the "Select Kernel" dialog)
        tracker = base / "config" / "lab" / "user-settings" / "@jupyterlab" / "notebook-extension"
        tracker.mkdir(parents=True, exist_ok=True)
        (tracker / "tracker.jupyterlab-settings").write_text(
            json.dumps({"autoStartDefaultKernel": True})
        )
        token = secrets.token_hex(16)
        port = _free_port()
        log = base / "jupyterlab.log"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--allow-root",
                "--ip=127.0.0.1",
                f"--port={port}",
                f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={root}",
                "--ServerApp.open_browser=False",
                "--LabApp.news_url=",
            ],
            cwd=root,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        server = cls(f"http://127.0.0.1:{port}", token, root, proc, log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"JupyterLab exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
                )
            # ready when the APIs the lab page lists at start answer, not just /api/status
            try:
                for path in ("api/status", "api/kernelspecs", "api/sessions", "lab/api/settings"):
                    with urllib.request.urlopen(
                        f"{server.url}/{path}?token={token}", timeout=5
                    ) as r:
                        if r.status != 200:
                            raise OSError(f"{path}: {r.status}")
                return server
            except OSError:
                time.sleep(0.2)
        server.stop()
        raise TimeoutError(
            f"JupyterLab did not answer within {timeout} s:\n{log.read_text()[-3000:]}"
        )

    def stop(self) -> None:
        """Stop the server and its kernels (the process group it leads)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)

    def write_notebook(self, name: str, cells: list[str]) -> Path:
        """A notebook of code cells in the server's folder."""
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        path = self.root / name
        nbformat.write(nb, path)
        return path

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}&reset"


class Notebook:
    """A notebook open in a Playwright page of a :class:`LabServer`."""

    def __init__(self, page: Any, server: LabServer, name: str) -> None:
        self.page = page
        self.server = server
        self.name = name

    @classmethod
    def open(cls, page: Any, server: LabServer, name: str, cells: list[str]) -> Notebook:
        server.write_notebook(name, cells)
        last_cell = page.locator(".jp-Notebook .jp-Cell").nth(len(cells) - 1)
        for attempt in range(2):
            page.goto(server.notebook_url(name))
            try:
                last_cell.wait_for(timeout=60_000 if attempt else 30_000)
                break
            except Exception:
                if attempt:
                    raise  # a second blank page is a real failure
                # a page loaded while the server was still starting stays blank: load again
        nb = cls(page, server, name)
        nb.wait_kernel_idle()
        return nb

    def wait_kernel_idle(self, timeout: float = 90_000) -> None:
        """Until the status bar shows a connected, idle kernel (commands sent earlier are lost)."""
        self.page.wait_for_function(
            r"""() => [...document.querySelectorAll('.jp-StatusBar-TextItem, .jp-StatusBar-Item')]
                   .some(e => /ipykernel\)\s*\|\s*Idle/.test(e.textContent))""",
            timeout=timeout,
        )

    def menu(self, top: str, item: str) -> None:
        self.page.locator(f".lm-MenuBar-itemLabel:text-is('{top}')").click()
        self.page.locator(f".lm-Menu-itemLabel:text-is('{item}')").click()

    def cell(self, index: int) -> Any:
        return self.page.locator(".jp-Notebook .jp-Cell").nth(index)

    def run_cell(self, index: int, attempts: int = 3) -> None:
        """Select a cell and run it from the Run menu; retried if the kernel dropped it."""
        prompt = self.cell(index).locator(".jp-InputArea-prompt")
        before = prompt.inner_text()
        for _ in range(attempts):
            self.cell(index).locator(".jp-InputArea-prompt").click()
            self.menu("Run", "Run Selected Cell and Do not Advance")
            try:
                self.page.wait_for_function(
                    "([el, before]) => el.textContent !== before && el.textContent.trim() !== '[ ]:'",
                    arg=[prompt.element_handle(), before],
                    timeout=5_000,
                )
                return
            except Exception:
                self.wait_kernel_idle()
        raise AssertionError(f"cell {index} did not start running after {attempts} attempts")

    def output_text(self, index: int, contains: str, timeout: float = 60_000) -> str:
        """The text of a cell's output once it contains ``contains``."""
        out = self.cell(index).locator(".jp-OutputArea-output")
        out.filter(has_text=contains).first.wait_for(timeout=timeout)
        return "\n".join(out.all_inner_texts())

    def screenshot(self, name: str, locator: Any = None) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        (locator or self.page).screenshot(path=str(path))
        return path
