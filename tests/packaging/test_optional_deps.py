"""Optional parts say which extra installs them (issue 15): Ray for `use_executor("ray")`,
JupyterLab for `invoke-nb lab`. Each runs in a subprocess where the package cannot be
imported (``sys.modules[name] = None`` makes ``import name`` raise ImportError)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_without(module: str, code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    prelude = f"import sys\nsys.modules[{module!r}] = None\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT / "src"), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )


def test_ray_executor_without_ray_names_the_extra(tmp_path: Path) -> None:
    done = run_without(
        "ray",
        f"""
        import invoke_nb as inb
        studio = inb.Studio({str(tmp_path / "studio")!r}, start_queue=False)
        try:
            studio.use_executor("ray", workers=1)
        except ImportError as e:
            print("ERROR:", e)
        print("executor:", type(studio.executor).__name__)
        studio.close()
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "ERROR:" in done.stdout and "invoke-nb[ray]" in done.stdout, done.stdout
    assert "executor: LocalExecutor" in done.stdout  # the studio keeps working locally


def test_lab_command_without_jupyterlab_names_the_extra(tmp_path: Path) -> None:
    done = run_without(
        "jupyterlab",
        """
        from invoke_nb.cli import main
        raise SystemExit(main(["lab"]))
        """,
        tmp_path,
    )
    assert done.returncode == 2, (done.stdout, done.stderr)  # a usage error: exit 2
    assert "invoke-nb[lab]" in done.stderr
