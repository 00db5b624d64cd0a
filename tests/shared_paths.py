"""Where the steering repo's shared/ folder is: beside the clone (CI lays a copy there), or
$INVOKE_NB_SHARED. The InvokeAI workflow fixtures live in it."""

from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    env = os.environ.get("INVOKE_NB_SHARED")
    candidates = [Path(env)] if env else []
    candidates += [_REPO.parent / "shared", Path("/work/shared")]
    for c in candidates:
        if (c / "fixtures").is_dir():
            return c
    return candidates[0]


INVOKEAI_WORKFLOWS = shared_dir() / "fixtures" / "invokeai-workflows"
