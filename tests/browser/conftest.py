"""Browser test fixtures: one JupyterLab server and one Chromium for the whole session.

Every browser test is marked ``@pytest.mark.browser``. The fixtures skip (with the reason)
when Debian's Chromium is not installed: CI installs it with ``apt-get install chromium``.
Playwright never downloads browsers here: it drives ``/usr/bin/chromium``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .lab import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, LabServer

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")


def _need_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """A JupyterLab of our own on 127.0.0.1, everything under a temp folder."""
    _need_chromium()
    from invoke_nb.widgets.messages import bundle

    bundle("graph_editor")  # fail early, naming `make frontend`, if the bundles are not built
    server = LabServer.start(tmp_path_factory.mktemp("jupyterlab"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    _need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    rep = yield
    if rep.when == "call":
        item.stash[_FAILED] = rep.failed
    return rep


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def page(request: pytest.FixtureRequest, chromium: Any, lab_server: LabServer) -> Iterator[Any]:
    """A fresh browser page (own context: no state shared between tests).

    On failure the page is saved to ``test-artifacts/failed-<test>.png`` with its console log.
    """
    context = chromium.new_context(viewport={"width": 1500, "height": 1200})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    errors: list[str] = []
    console: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    pg.page_errors = errors  # type: ignore[attr-defined]
    yield pg
    if request.node.stash.get(_FAILED, False):
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        pg.screenshot(path=str(ARTIFACTS / f"failed-{name}.png"))
        (ARTIFACTS / f"failed-{name}.log").write_text(
            "\n".join([*console, "page errors:", *errors])
        )
    context.close()
