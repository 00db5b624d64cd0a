"""`pip wheel .` gives a wheel with the widget bundles and the prebuilt lab extension, and a
fresh venv that installs it lists the extension in `jupyter labextension list`.

The build runs without build isolation (no network: hatchling and jupyterlab come from this
venv); the hatch hook runs `make -C extension`, which is a no-op when the front end is built.
The fresh venv sees this venv's packages through a .pth file (jupyterlab is not reinstalled),
but the wheel is installed into it, so the extension found is the wheel's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LABEXT = "invoke_nb-0.1.0.data/data/share/jupyter/labextensions/invoke-nb/"


def run(*args: str | Path, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], check=True, capture_output=True, text=True, timeout=300, **kw
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("hatchling", reason="building without isolation needs hatchling")
    out = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "pip", "wheel", ROOT, "--no-deps", "--no-build-isolation",
        "-w", out, cwd=ROOT)  # fmt: skip
    (whl,) = out.glob("invoke_nb-*.whl")
    return whl


def test_wheel_holds_the_bundles_and_the_lab_extension(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for widget in ("gallery", "graph_editor", "canvas", "queue_view", "model_view"):
        assert f"invoke_nb/static/{widget}.js" in names
    assert LABEXT + "package.json" in names
    assert LABEXT + "install.json" in names
    assert LABEXT + "schemas/invoke-nb/plugin.json" in names
    assert any(n.startswith(LABEXT + "static/remoteEntry.") for n in names)
    # the build output is shipped once: not also inside the Python package
    assert not any(n.startswith("invoke_nb/labextension/") for n in names)


def test_a_fresh_venv_with_the_wheel_lists_the_extension(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    py = venv / "bin" / "python"
    site = Path(
        run(py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").stdout.strip()
    )
    (site / "host.pth").write_text(sysconfig.get_path("purelib") + "\n")
    run(sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--no-index", wheel)
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    assert (venv / "share/jupyter/labextensions/invoke-nb/package.json").exists()
    listed = run(py, "-m", "jupyterlab.labextensions", "list", env=env)  # jupyter labextension list
    text = listed.stdout + listed.stderr
    line = next((ln for ln in text.splitlines() if "invoke-nb" in ln), "")
    assert str(venv / "share/jupyter/labextensions") in text, text
    assert "enabled" in line and "OK" in line and "(python, invoke-nb)" in line, text
