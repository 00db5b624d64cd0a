"""Hatch build hook: build the front end (esbuild bundles) into the wheel.

Editable installs skip it: `make setup` builds the front end itself after installing.
A wheel or sdist build needs node and npm (from the npm registry; no CDN at run time).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class FrontendBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        root = Path(self.root)
        ext = root / "extension"
        if not (ext / "package.json").exists():
            return
        if shutil.which("npm") is None or shutil.which("make") is None:
            static = root / "src" / "invoke_nb" / "static"
            if any(static.glob("*.js")):
                return  # already built (e.g. by `make setup`)
            raise RuntimeError("building the invoke-nb wheel needs node, npm and make for the front end")
        subprocess.run(["make", "-C", str(ext), f"PY={sys.executable}"], check=True)
