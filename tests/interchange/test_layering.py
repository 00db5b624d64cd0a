"""The interchange package sits above the catalog and stays torch-free at import."""

from __future__ import annotations

import subprocess
import sys


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


def test_catalog_does_not_import_interchange():
    """No module of the catalog names the interchange package in an import (the package root
    imports the Studio, so a run-time check of sys.modules cannot tell)."""
    import ast
    from pathlib import Path

    import invoke_nb.catalog

    offenders = []
    for path in Path(invoke_nb.catalog.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.startswith("invoke_nb.interch")]
    assert offenders == []


def test_interchange_loads_no_torch():
    mods = _loaded_after(
        "import invoke_nb.interchange.invokeai, invoke_nb.interchange.importer, "
        "invoke_nb.interchange.othertools, invoke_nb.interchange.pngmeta"
    )
    assert "invoke_nb.interchange.invokeai.images" in mods
    assert "torch" not in mods
