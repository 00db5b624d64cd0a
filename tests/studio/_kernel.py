"""A second kernel on a studio root, for the two-process queue tests.

python _kernel.py ROOT SECONDS   open a Studio on ROOT with its queue running; print one JSON
                                 line per item this process started; stop after SECONDS or
                                 when ROOT/stop appears.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import conftest  # noqa: F401  (registers the t_slow test node)
from invoke_nb.studio import Studio


def main(root: str, seconds: float) -> None:
    studio = Studio(root)
    studio.events.on(
        "queue_item_status_changed",
        lambda k, p: (
            p.get("status") == "in_progress"
            and print(json.dumps({"ran": p["item_id"]}), flush=True)
        ),
    )
    print("ready", flush=True)
    end = time.monotonic() + seconds
    stop = Path(root) / "stop"
    while time.monotonic() < end and not stop.exists():
        time.sleep(0.1)
    studio.close()
    print("closed", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
