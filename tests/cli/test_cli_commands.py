"""The ``invoke-nb`` command end to end on temp studio roots: every subcommand and its exit
codes (0 done, 1 the work failed, 2 bad usage or input, 130 interrupted by Ctrl-C)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import invoke_nb
from invoke_nb.cli import main
from invoke_nb.graph import standard


def cli(root: Path, *args: str) -> int:
    return main(["--root", str(root), *args])


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, tiny_sd1: Path) -> Path:
    """A studio root with the tiny SD1 model installed (in place) through the command."""
    r = tmp_path_factory.mktemp("cli") / "studio"
    assert cli(r, "models", "install", str(tiny_sd1), "--name", "tiny", "--in-place") == 0
    return r


def studio_of(root: Path) -> invoke_nb.Studio:
    return invoke_nb.Studio(root, start_queue=False)


def workflow(root: Path, dest: Path, **kw: object) -> Path:
    """A txt2img workflow file for the root's tiny model."""
    with studio_of(root) as st:
        rec = st.models.get("tiny")
    args = {"width": 64, "height": 64, "steps": 2, "seed": 1, **kw}
    g = standard.txt2img(rec, "a red fox", **args)
    dest.write_text(g.to_json())
    return dest


def test_models_install_list_scan_remove(tmp_path: Path, tiny_sd1: Path, tiny_lora_sd1, capsys):
    r = tmp_path / "studio"
    assert cli(r, "models", "list") == 0
    assert "no models installed" in capsys.readouterr().out
    assert cli(r, "models", "install", str(tiny_sd1), "--name", "mine", "--in-place") == 0
    key, name, base, type_, fmt = capsys.readouterr().out.split()
    assert (name, base, type_, fmt) == ("mine", "sd-1", "main", "diffusers")
    folder = tmp_path / "loras"
    folder.mkdir()
    shutil.copy(tiny_lora_sd1, folder / "my-lora.safetensors")
    assert cli(r, "models", "scan", str(folder)) == 0
    out = capsys.readouterr().out
    assert "1 paths" in out and "installed" in out and "my-lora.safetensors" in out
    assert cli(r, "models", "list", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted((m["name"], m["type"]) for m in rows) == [("mine", "main"), ("my-lora", "lora")]
    assert any(m["key"] == key for m in rows)
    assert cli(r, "models", "remove", "my-lora") == 0
    assert "removed my-lora" in capsys.readouterr().out
    # the work fails (1) and says which model
    assert cli(r, "models", "remove", "my-lora") == 1
    assert "my-lora" in capsys.readouterr().err
    assert cli(r, "models", "install", str(tmp_path / "nowhere.safetensors")) == 1
    assert "nowhere.safetensors" in capsys.readouterr().err
    assert cli(r, "models", "scan", str(tmp_path / "no-folder")) == 1
    assert "no-folder" in capsys.readouterr().err
    assert cli(r, "models", "list") == 0
    assert "mine" in capsys.readouterr().out and (folder / "my-lora.safetensors").exists()


def test_bad_usage_exits_2(tmp_path: Path, capsys) -> None:
    for argv in (["models"], ["frobnicate"], ["demo", "--steps", "many"], ["import"]):
        with pytest.raises(SystemExit) as info:
            cli(tmp_path / "studio", *argv)
        assert info.value.code == 2, argv
        assert "invoke-nb" in capsys.readouterr().err


def test_run_a_workflow_with_set(root: Path, tmp_path: Path, capsys) -> None:
    wf = workflow(root, tmp_path / "fox.json")
    argv = ["run", str(wf), "--set", "seed.value=7", "--set", "positive_prompt.value=a blue fox"]
    assert cli(root, *argv, "--quiet") == 0
    (path,) = capsys.readouterr().out.split()
    assert Path(path).is_file()
    with studio_of(root) as st:
        rec = st.catalog.images.get(Path(path).name)
    assert (rec.seed, rec.positive_prompt, rec.width) == (7, "a blue fox", 64)


def test_run_refuses_bad_input_with_2_and_failed_work_with_1(
    root: Path, tmp_path: Path, capsys
) -> None:
    wf = workflow(root, tmp_path / "fox.json")
    assert cli(root, "run", str(tmp_path / "missing.json")) == 2
    assert "missing.json" in capsys.readouterr().err
    assert cli(root, "run", str(wf), "--set", "seed=3") == 2
    assert "expected node_id.field=value" in capsys.readouterr().err
    assert cli(root, "run", str(wf), "--set", "nope.value=3") == 2
    assert "nope" in capsys.readouterr().err
    (tmp_path / "broken.json").write_text("{not json")
    assert cli(root, "run", str(tmp_path / "broken.json")) == 2
    assert "broken.json" in capsys.readouterr().err
    # the model is not installed in an empty studio: the node fails, the work failed
    assert cli(tmp_path / "empty", "run", str(wf), "--quiet") == 1
    assert "model_loader" in capsys.readouterr().err


def test_demo_makes_three_images(root: Path, capsys) -> None:
    with studio_of(root) as st:
        before = st.catalog.images.count()
    assert cli(root, "demo", "--steps", "2", "--size", "64", "--prompt", "a small boat") == 0
    out = capsys.readouterr().out
    paths = [line.split("-> ")[1] for line in out.splitlines() if " -> " in line]
    assert [line.split(" ->")[0] for line in out.splitlines() if " -> " in line] == [
        "txt2img",
        "img2img",
        "inpaint",
    ]
    assert all(Path(p).is_file() for p in paths)
    assert "model:  tiny (sd-1, main, diffusers)" in out
    with studio_of(root) as st:
        assert st.catalog.images.count() == before + 3


def test_import_a_folder_of_pngs(root: Path, tmp_path: Path, capsys) -> None:
    src = tmp_path / "outputs"
    src.mkdir()
    wf = workflow(root, tmp_path / "fox.json")
    for seed in (1, 2):
        assert cli(root, "run", str(wf), "--set", f"seed.value={seed}", "--quiet") == 0
        shutil.copy(capsys.readouterr().out.split()[0], src)
    (src / "notes.txt").write_text("not an image")
    other = tmp_path / "other"
    assert cli(other, "import", str(src)) == 0
    out = capsys.readouterr().out
    assert "2 imported" in out, out
    with studio_of(other) as st:
        seeds = sorted(r.seed for r in st.catalog.images.list().items)
    assert seeds == [1, 2]  # the metadata came along
    assert cli(other, "import", str(src)) == 0  # again: nothing new
    assert "imported" not in capsys.readouterr().out
    assert cli(other, "import", str(tmp_path / "nope")) == 2
    assert "not a folder" in capsys.readouterr().err


def test_lab_builds_the_command_line(tmp_path: Path, capsys) -> None:
    assert cli(tmp_path / "r", "lab", "--dry-run", "--port", "9999", "--no-browser") == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"INVOKE_NB_ROOT={tmp_path / 'r'} {sys.executable} -m jupyter lab")
    assert line.endswith("--port 9999 --no-browser")
    assert main(["lab", "--", "--port", "1", "--dry-run"]) == 0  # `--` is not passed on
    assert capsys.readouterr().out.strip().endswith("jupyter lab" + _nb() + " --port 1")


def _nb() -> str:
    nb = Path(invoke_nb.__file__).resolve().parents[2] / "notebooks" / "01-quickstart.ipynb"
    return f" {nb}" if nb.exists() else ""


def test_lab_without_jupyterlab_says_how_to_get_it(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "jupyterlab", None)  # as if not installed
    assert cli(tmp_path / "r", "lab") == 2
    err = capsys.readouterr().err
    assert "JupyterLab is not installed" in err and "pip install 'invoke-nb[lab]'" in err


def test_ctrl_c_exits_130_and_cancels_the_run(root: Path, tmp_path: Path) -> None:
    wf = workflow(root, tmp_path / "long.json", steps=2000)
    env = {**os.environ, "PYTHONPATH": str(Path(invoke_nb.__file__).resolve().parents[1])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke_nb.cli", "--root", str(root), "run", str(wf)],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    seen = b""
    try:
        while b"step " not in seen:  # the progress bar shows denoising steps
            chunk = proc.stderr.read1(4096)
            assert chunk, f"ended before denoising: {seen[-2000:]!r}"
            seen += chunk
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (seen + err)[-2000:]
    found = re.search(rb"invoke-nb: run (\d+) interrupted", err.splitlines()[-1])
    assert found, err[-2000:]
    with studio_of(root) as st:
        assert st.catalog.queue.get(int(found.group(1))).status == "canceled"
