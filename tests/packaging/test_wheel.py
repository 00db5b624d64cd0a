"""`pip wheel .` gives a wheel with the widget bundles and the prebuilt lab extension, and a
fresh venv that installs it lists the extension in `jupyter labextension list`.

The build runs without build isolation (no network: hatchling and the builders come from this
venv); the hatch-jupyter-builder hook runs npm only when extension/src is newer than the
build output. The fresh venv sees this venv's packages through a .pth file (jupyterlab is not reinstalled),
but the wheel is installed into it, so the extension found is the wheel's. A second venv
sees them minus the Jupyter server packages: the kernel package must work there.
"""

from __future__ import annotations

import json
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


# What a Jupyter server brings; the kernel package must work without any of it.
SERVER_PACKAGES = {
    "jupyterlab",
    "jupyterlab_server",
    "jupyter_server",
    "jupyter_server_terminals",
    "jupyter_lsp",
    "notebook",
    "notebook_shim",
}


def _dist_name(entry: str) -> str:
    return entry.split("-")[0].lower() if entry.endswith(".dist-info") else entry


def test_the_wheel_requires_no_jupyter_server(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        meta = z.read("invoke_nb-0.1.0.dist-info/METADATA").decode()
    required = [ln for ln in meta.splitlines() if ln.startswith("Requires-Dist:")]
    unconditional = [ln for ln in required if "extra ==" not in ln]
    assert not [ln for ln in unconditional if "jupyterlab" in ln or "notebook" in ln], required
    assert any("jupyterlab" in ln and "extra == 'lab'" in ln for ln in required), required
    assert any(ln.startswith("Requires-Dist: pandas") for ln in unconditional), required


def test_a_kernel_without_jupyterlab_runs_studio_and_widgets(
    wheel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wheel in a venv that sees this venv's packages minus the Jupyter server ones
    (a folder of links, so nothing is reinstalled), run as a real kernel through nbclient."""
    import nbformat
    from nbclient import NotebookClient

    host = Path(sysconfig.get_path("purelib"))
    farm = tmp_path / "host-without-server"
    farm.mkdir()
    for entry in host.iterdir():
        name = _dist_name(entry.name)
        if name in SERVER_PACKAGES or "invoke_nb" in name or entry.suffix == ".pth":
            continue
        (farm / entry.name).symlink_to(entry)
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    py = venv / "bin" / "python"
    site = Path(
        run(py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").stdout.strip()
    )
    (site / "host.pth").write_text(f"{farm}\n")
    run(sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--no-index", wheel)
    spec = tmp_path / "data" / "kernels" / "fresh"
    spec.mkdir(parents=True)
    argv = [str(py), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "fresh", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "data"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("PYTHONPATH", raising=False)  # the kernel must find the wheel's code
    code = f"""
import importlib.util, sys
from pathlib import Path
assert importlib.util.find_spec("jupyterlab") is None
assert importlib.util.find_spec("jupyter_server") is None
import invoke_nb as inb
assert Path(inb.__file__).is_relative_to(sys.prefix), inb.__file__
studio = inb.Studio({str(tmp_path / "studio")!r}, start_queue=False)
gallery, editor = studio.gallery(), studio.editor(inb.Graph())
assert "export" in gallery._esm and "export" in editor._esm
g = inb.Graph()
s = g.add("add", a=2, b=3)
print(type(gallery).__name__, type(editor).__name__, inb.run(g).outputs[s].value)
"""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    NotebookClient(nb, timeout=300, kernel_name="fresh").execute()
    out = nb.cells[0].outputs
    assert not [o for o in out if o.output_type == "error"], out
    text = "".join(o.get("text", "") for o in out)
    assert text.split()[-1] == "5" and "Gallery" in text, text
