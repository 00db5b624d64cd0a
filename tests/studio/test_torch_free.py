"""Importing the package and browsing a studio load no torch, diffusers or transformers.

Each check runs in a fresh interpreter: the test process itself has torch loaded already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

HEAVY = ("torch", "diffusers", "transformers", "cv2", "accelerate", "compel")

# Modules that need torch when imported; nothing imports them at package import.
NEEDS_TORCH = (
    "invoke_nb.testing",
    "invoke_nb.nodes.diffusion.er_sde",
    "invoke_nb.models.annotators",  # preprocessor networks (torch modules), loaded on use
)


def _run(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON object last."""
    src = str(Path(__file__).resolve().parents[2] / "src")
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": src},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_browsing_a_studio_imports_no_torch(tmp_path: Path) -> None:
    out = _run(
        f"""
        import json, sys
        from PIL import Image
        import invoke_nb as inb

        studio = inb.Studio({str(tmp_path)!r})  # the queue thread starts (start_queue default)
        rec = studio.catalog.images.save(
            Image.new("RGB", (8, 8), "red"), metadata={{"positive_prompt": "a red square"}}
        )
        page = studio.images.list(limit=100, search="red")
        boards = studio.boards.list()
        rows = studio.sql("select image_name from images").fetchall()
        studio.close()
        print(json.dumps({{
            "page": page.names,
            "rows": [r[0] for r in rows],
            "saved": rec.image_name,
            "boards": len(boards),
            "nodes": len(inb.nodes.node_types()),
            "heavy": [m for m in {HEAVY!r} if m in sys.modules],
        }}))
        """
    )
    assert out["page"] == [out["saved"]]
    assert out["rows"] == [out["saved"]] and out["boards"] == 0
    assert out["nodes"] > 50  # the node library registered at import
    assert out["heavy"] == []


def test_every_module_imports_without_torch() -> None:
    """Holds the growing node library to the rule: heavy imports live inside functions."""
    out = _run(
        f"""
        import importlib, json, pkgutil, sys
        import invoke_nb

        skip = {NEEDS_TORCH!r}
        found = {{}}
        for info in pkgutil.walk_packages(invoke_nb.__path__, "invoke_nb."):
            if info.name.startswith(skip):
                continue
            before = {{m for m in {HEAVY!r} if m in sys.modules}}
            try:
                importlib.import_module(info.name)
            except ImportError as exc:  # an optional extra (ray) not installed
                if exc.name and exc.name.split(".")[0] in {HEAVY!r}:
                    raise
                continue
            loaded = [m for m in {HEAVY!r} if m in sys.modules and m not in before]
            if loaded:
                found[info.name] = loaded
                break
        print(json.dumps({{"found": found}}))
        """
    )
    assert out["found"] == {}, f"modules importing heavy libraries at top level: {out['found']}"
