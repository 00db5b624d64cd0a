"""Saves images into a catalog until killed (run as a script by :mod:`.kill9`).

python kill9_saver.py ROOT     prints "ready", then "saved N" after each committed save
                               (N = images in the catalog), forever.

The catalog is imported without running ``invoke_nb/__init__.py`` (which loads the node
API), so a trial starts in a fraction of a second."""

from __future__ import annotations

import importlib.util
import random
import sys
import types
from pathlib import Path


def _catalog_only() -> None:
    here = Path(__file__).resolve().parents[1]  # src/invoke_nb
    if importlib.util.find_spec("invoke_nb") is None:
        sys.path.insert(0, str(here.parent))
    for name, folder in (("invoke_nb", here), ("invoke_nb.models", here / "models")):
        pkg = types.ModuleType(name)
        pkg.__path__ = [str(folder)]
        sys.modules[name] = pkg


def main(root: str) -> None:
    _catalog_only()
    from PIL import Image

    from invoke_nb.catalog.catalog import Catalog

    cat = Catalog(root, busy_timeout=60)
    count = cat.images.count()
    rng = random.Random()
    print("ready", flush=True)
    while True:
        side = rng.choice((32, 64, 256))  # a wider window in the file writes now and then
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        cat.images.save(Image.new("RGB", (side, side), colour), metadata={"seed": count})
        count += 1
        sys.stdout.write(f"saved {count}\n")  # one write: a whole line or none
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1])
